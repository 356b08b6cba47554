/** pull and push: the daemon's JSON-message streams, printed per layer. */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { bool, str, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { ProgressPrinter, printProgress } from '../output/progress.js';

const HUB = 'docker.io';

/** distribution/reference's normalisation, enough for what the CLI prints and looks up. */
export function normalizeName(name: string): { domain: string; path: string } {
  const i = name.indexOf('/');
  const first = i === -1 ? '' : name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first === first.toLowerCase()))
    return { domain: HUB, path: i === -1 ? `library/${name}` : name };
  const domain = first === 'index.docker.io' ? HUB : first;
  const path = name.slice(i + 1);
  return { domain, path: domain === HUB && !path.includes('/') ? `library/${path}` : path };
}

/** `name[:tag][@digest]` split where docker's CLI splits it. */
export function splitRef(ref: string): { name: string; tag?: string; digest?: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { name: ref.slice(0, at), digest: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { name: ref };
}

/** The config.json files the credentials come from, in order: berth's (`berth login`), then the docker CLI's. */
function configFiles(env: NodeJS.ProcessEnv): string[] {
  return [join(env.BERTH_CONFIG || join(homedir(), '.berth'), 'config.json'), join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json')];
}

/** A config.json entry as an AuthConfig for the daemon (its `auth` blob split), or undefined when it has none. */
function authOf(key: string, e: { auth?: string; identitytoken?: string } | undefined): Record<string, string> | undefined {
  if (e?.auth === undefined) return undefined;
  const text = Buffer.from(e.auth, 'base64').toString('utf8');
  const c = text.indexOf(':');
  if (c <= 0) return undefined;
  const username = text.slice(0, c);
  return e.identitytoken ? { username, identitytoken: e.identitytoken, serveraddress: key } : { username, password: text.slice(c + 1), serveraddress: key };
}

/** Each file's `auths` (an unreadable config is no credentials, as for docker). */
function authsOf(env: NodeJS.ProcessEnv): Array<Record<string, { auth?: string; identitytoken?: string }>> {
  const out: Array<Record<string, { auth?: string; identitytoken?: string }>> = [];
  for (const file of configFiles(env)) {
    if (!existsSync(file)) continue;
    try {
      const cfg = JSON.parse(readFileSync(file, 'utf8')) as { auths?: Record<string, { auth?: string; identitytoken?: string }> };
      if (cfg.auths) out.push(cfg.auths);
    } catch {
      /* unreadable: none */
    }
  }
  return out;
}

/**
 * The X-Registry-Auth value for a registry: its entry in berth's config.json (`berth login`:
 * `$BERTH_CONFIG/config.json`, else ~/.berth/config.json), else in the docker CLI's
 * (`$DOCKER_CONFIG/config.json`, else ~/.docker/config.json), else `{}`.
 */
export function registryAuthHeader(domain: string, env: NodeJS.ProcessEnv = process.env): string {
  const keys = domain === HUB ? ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io'] : [domain, `https://${domain}`, `http://${domain}`];
  for (const auths of authsOf(env)) {
    for (const k of keys) {
      const auth = authOf(k, auths[k]);
      if (auth) return Buffer.from(JSON.stringify(auth)).toString('base64url');
    }
  }
  return Buffer.from('{}').toString('base64url');
}

/** The X-Registry-Config value of a build: every registry's credentials from those files (berth's win), keyed as there. */
export function registryConfigHeader(env: NodeJS.ProcessEnv = process.env): string {
  const all: Record<string, Record<string, string>> = {};
  for (const auths of authsOf(env).reverse())
    for (const [k, e] of Object.entries(auths)) {
      const auth = authOf(k, e);
      if (auth) all[k] = auth;
    }
  return Buffer.from(JSON.stringify(all)).toString('base64url');
}

async function pull(ctx: Context, p: ParsedArgs): Promise<number> {
  const ref = p.args[0]!;
  const quiet = bool(p, 'quiet');
  const s = splitRef(ref);
  if (s.tag === undefined && s.digest === undefined && !quiet) ctx.out('Using default tag: latest\n');
  const tag = s.digest ?? s.tag ?? 'latest';
  const { domain, path } = normalizeName(s.name);
  const res = await ctx.client.stream('POST', '/images/create', {
    query: { fromImage: s.name, tag, platform: str(p, 'platform') || undefined },
    headers: { 'X-Registry-Auth': registryAuthHeader(domain) },
  });
  const printer = new ProgressPrinter(quiet ? () => {} : ctx.out, !quiet && process.stdout.isTTY === true);
  const error = await printProgress(res, printer);
  if (error !== undefined) throw new CliError(error);
  ctx.out(`${domain}/${path}${s.digest !== undefined ? `@${s.digest}` : `:${tag}`}\n`);
  return 0;
}

async function push(ctx: Context, p: ParsedArgs): Promise<number> {
  const ref = p.args[0]!;
  const quiet = bool(p, 'quiet');
  const s = splitRef(ref);
  if (s.digest !== undefined) throw new CliError(`invalid reference format: push by digest is not supported: ${ref}`);
  if (s.tag === undefined && !bool(p, 'all-tags') && !quiet) ctx.out('Using default tag: latest\n');
  const tag = s.tag ?? (bool(p, 'all-tags') ? '' : 'latest');
  const { domain } = normalizeName(s.name);
  const res = await ctx.client.stream('POST', `/images/${s.name}/push`, {
    query: { tag },
    headers: { 'X-Registry-Auth': registryAuthHeader(domain) },
  });
  const printer = new ProgressPrinter(quiet ? () => {} : ctx.out, !quiet && process.stdout.isTTY === true);
  const error = await printProgress(res, printer);
  if (error !== undefined) throw new CliError(error);
  if (quiet) ctx.out(`${ref}\n`);
  return 0;
}

export const commands: Record<string, Command> = {
  pull: {
    spec: {
      usage: 'pull [OPTIONS] NAME[:TAG|@DIGEST]',
      description: 'Download an image from a registry',
      minArgs: 1,
      maxArgs: 1,
      flags: [
        { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress verbose output' },
        { name: 'platform', type: 'string', valueName: 'string', description: 'Set platform if server is multi-platform capable' },
      ],
    },
    run: pull,
  },
  push: {
    spec: {
      usage: 'push [OPTIONS] NAME[:TAG]',
      description: 'Upload an image to a registry',
      minArgs: 1,
      maxArgs: 1,
      flags: [
        { name: 'all-tags', short: 'a', type: 'bool', description: 'Push all tags of an image to the repository' },
        { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress verbose output' },
      ],
    },
    run: push,
  },
};
