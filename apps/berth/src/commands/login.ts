/**
 * login and logout (docker login / docker logout). berthd checks the credentials against the
 * registry (`POST /auth`); the CLI keeps them in its own config, `$BERTH_CONFIG/config.json`
 * (default ~/.berth/config.json), in docker's `auths` shape, mode 0600. pull and push read them
 * from there (registry.ts).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { isatty } from 'node:tty';
import { bool, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';

/** Docker Hub as the docker CLI names it in config.json and `/auth`. */
export const DEFAULT_SERVER = 'https://index.docker.io/v1/';

export interface AuthEntry {
  auth?: string;
  identitytoken?: string;
  email?: string;
}

interface ConfigFile {
  auths?: Record<string, AuthEntry>;
  [key: string]: unknown;
}

/** The CLI's config file: `$BERTH_CONFIG/config.json`, else ~/.berth/config.json. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.BERTH_CONFIG || join(homedir(), '.berth'), 'config.json');
}

export function readConfig(file: string): ConfigFile {
  if (!existsSync(file)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliError(`Error loading config file ${file}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CliError(`Error loading config file ${file}: not a JSON object`);
  return parsed as ConfigFile;
}

/** Written beside the target and renamed over it, 0600 from the start (credentials never world-readable). */
async function writeConfig(file: string, cfg: ConfigFile): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(cfg, null, '\t')}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new CliError(`Error saving credentials: ${(err as Error).message}`);
  }
}

/** The key a server is stored under: docker's ConvertToHostname for anything but Docker Hub's default. */
export function serverKey(server: string | undefined): string {
  if (server === undefined || server === '' || server === DEFAULT_SERVER) return DEFAULT_SERVER;
  let s = server.replace(/^https?:\/\//, '');
  const slash = s.indexOf('/');
  if (slash !== -1) s = s.slice(0, slash);
  if (s === 'index.docker.io' || s === 'docker.io' || s === 'registry-1.docker.io') return DEFAULT_SERVER;
  return s;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** One line from the terminal; `hidden` turns echo off (the password). */
async function prompt(question: string, hidden: boolean): Promise<string> {
  process.stdout.write(question);
  const stdin = process.stdin;
  if (hidden && stdin.isTTY) stdin.setRawMode(true);
  try {
    return await new Promise<string>((resolve, reject) => {
      let line = '';
      const onData = (b: Buffer): void => {
        for (const ch of b.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            stdin.pause();
            if (hidden) process.stdout.write('\n');
            resolve(line);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            reject(new CliError('', 130));
            return;
          }
          if (ch === '\u007f') line = line.slice(0, -1);
          else line += ch;
        }
      };
      stdin.on('data', onData);
      stdin.resume();
    });
  } finally {
    if (hidden && stdin.isTTY) stdin.setRawMode(false);
  }
}

async function login(ctx: Context, p: ParsedArgs): Promise<number> {
  const server = p.args[0];
  let username = str(p, 'username') ?? '';
  let password = str(p, 'password') ?? '';
  const fromStdin = bool(p, 'password-stdin');
  if (password !== '') {
    ctx.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    if (fromStdin) throw new CliError('--password and --password-stdin are mutually exclusive');
  }
  if (fromStdin) {
    if (username === '') throw new CliError('Must provide --username with --password-stdin');
    password = (await readStdin()).replace(/\r?\n$/, '').replace(/\r$/, '');
  }
  const key = serverKey(server);
  const file = configPath();
  const cfg = readConfig(file);
  if (username === '' || password === '') {
    if (!isatty(0)) throw new CliError('Error: Cannot perform an interactive login from a non TTY device');
    if (username === '') {
      const stored = cfg.auths?.[key]?.auth;
      const old = stored === undefined ? '' : Buffer.from(stored, 'base64').toString('utf8').split(':')[0]!;
      username = (await prompt(old !== '' ? `Username (${old}): ` : 'Username: ', false)).trim() || old;
      if (username === '') throw new CliError('Error: Non-null Username Required');
    }
    if (password === '') {
      password = await prompt('Password: ', true);
      if (password === '') throw new CliError('Error: Password Required');
    }
  }
  const res = await ctx.client.call<{ Status?: string; IdentityToken?: string }>('POST', '/auth', {
    body: { username, password, serveraddress: key },
  });
  const entry: AuthEntry = res.IdentityToken
    ? { auth: Buffer.from(`${username}:`).toString('base64'), identitytoken: res.IdentityToken }
    : { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  cfg.auths = { ...(cfg.auths ?? {}), [key]: entry };
  await writeConfig(file, cfg);
  ctx.err(`WARNING! Your credentials are stored unencrypted in '${file}'.\n\n`);
  ctx.out(`${res.Status ?? 'Login Succeeded'}\n`);
  return 0;
}

async function logout(ctx: Context, p: ParsedArgs): Promise<number> {
  const key = serverKey(p.args[0]);
  const file = configPath();
  const cfg = readConfig(file);
  // As docker: the message comes whether or not there was an entry; the older spellings of a
  // non-default server's key go too.
  ctx.out(`Removing login credentials for ${key}\n`);
  const keys = key === DEFAULT_SERVER ? [key] : [key, p.args[0] ?? key, `http://${key}`, `https://${key}`];
  if (cfg.auths === undefined || !keys.some((k) => k in cfg.auths!)) return 0;
  for (const k of keys) delete cfg.auths[k];
  await writeConfig(file, cfg);
  return 0;
}

const loginSpec: CommandSpec = {
  usage: 'login [OPTIONS] [SERVER]',
  description: 'Log in to a registry.\nIf no server is specified, the default is defined by the daemon.',
  maxArgs: 1,
  flags: [
    { name: 'password', short: 'p', type: 'string', valueName: 'string', description: 'Password' },
    { name: 'password-stdin', type: 'bool', description: 'Take the password from stdin' },
    { name: 'username', short: 'u', type: 'string', valueName: 'string', description: 'Username' },
  ],
};

const logoutSpec: CommandSpec = {
  usage: 'logout [SERVER]',
  description: 'Log out from a registry.\nIf no server is specified, the default is defined by the daemon.',
  maxArgs: 1,
  flags: [],
};

export const commands: Record<string, Command> = {
  login: { spec: loginSpec, run: login },
  logout: { spec: logoutSpec, run: logout },
};
