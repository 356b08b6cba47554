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

/**
 * `host` is read at each call, so a test that restarts its daemon keeps the same helpers.
 * `defaults` apply to every call (a call's own options win).
 */
export function berthCli(host: () => string, defaults: Omit<CliOptions, 'input'> = {}): BerthCli {
  const run = (args: string[], opts: CliOptions = {}): Promise<CliResult> =>
    new Promise((resolve) => {
      const env = { ...process.env, BERTH_HOST: host(), ...defaults.env, ...opts.env };
      const child = execFile(berthCliPath(), args, { env, timeout: opts.timeoutMs ?? defaults.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
      if (opts.input !== undefined) child.stdin!.end(opts.input);
    });
  return {
    run,
    async ok(args, opts) {
      const r = await run(args, opts);
      assert.equal(r.code, 0, `berth ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
      return r.stdout;
    },
  };
}
