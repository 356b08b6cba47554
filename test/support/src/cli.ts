/** The berth CLI run as a user runs it, against a test daemon; what every e2e file needs. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { berthCliPath } from './daemon.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Written to stdin, then closed; without it stdin stays an open pipe. */
  input?: string;
}

export interface BerthCli {
  run(args: string[], opts?: CliOptions): Promise<CliResult>;
  /** Like run, and the exit status must be 0; answers stdout. */
  ok(args: string[], opts?: CliOptions): Promise<string>;
}

/** Where the docker CLI is (BERTH_DOCKER_CLI overrides it). */
export const DOCKER_CLI = process.env.BERTH_DOCKER_CLI ?? '/usr/local/bin/docker';

/**
 * A CLI binary run against a daemon: `hostEnv(host)` names the daemon in the environment;
 * `host` and `defaults.env` (an object, or a function read at each call) are read at each call,
 * so a test that restarts its daemon or sets up its config in `before` keeps the same helpers.
 * A call's own options win.
 */
function cliRunner(
  name: string,
  bin: () => string,
  hostEnv: (host: string) => NodeJS.ProcessEnv,
  host: () => string,
  defaults: Omit<CliOptions, 'input' | 'env'> & { env?: NodeJS.ProcessEnv | (() => NodeJS.ProcessEnv); maxBuffer?: number },
): BerthCli {
  const run = (args: string[], opts: CliOptions = {}): Promise<CliResult> =>
    new Promise((resolve) => {
      const base = typeof defaults.env === 'function' ? defaults.env() : defaults.env;
      const env = { ...process.env, ...hostEnv(host()), ...base, ...opts.env };
      const child = execFile(bin(), args, { env, timeout: opts.timeoutMs ?? defaults.timeoutMs ?? 60_000, maxBuffer: defaults.maxBuffer ?? 1 << 20 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
      if (opts.input !== undefined) child.stdin!.end(opts.input);
    });
  return {
    run,
    async ok(args, opts) {
      const r = await run(args, opts);
      assert.equal(r.code, 0, `${name} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
      return r.stdout;
    },
  };
}

/**
 * The berth CLI of this tree. `host` is read at each call, so a test that restarts its daemon
 * keeps the same helpers. `defaults` apply to every call (a call's own options win).
 */
export function berthCli(host: () => string, defaults: Omit<CliOptions, 'input'> = {}): BerthCli {
  return cliRunner('berth', berthCliPath, (h) => ({ BERTH_HOST: h }), host, defaults);
}

/** The real docker CLI (interop tests) with DOCKER_HOST set to the daemon's socket. */
export function dockerCli(host: () => string, defaults: Omit<CliOptions, 'input' | 'env'> & { env?: NodeJS.ProcessEnv | (() => NodeJS.ProcessEnv); maxBuffer?: number } = {}): BerthCli {
  return cliRunner('docker', () => DOCKER_CLI, (h) => ({ DOCKER_HOST: h }), host, defaults);
}
