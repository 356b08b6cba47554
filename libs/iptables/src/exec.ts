import { spawn } from 'node:child_process';
import { BerthError } from '@berth/errors';
import type { Logger } from '@berth/log';
import { applyOps } from './payload.js';
import type { Iptables, Op } from './types.js';

export interface IptablesOptions {
  /** Run every command inside this network namespace (`nsenter --net=<path>`). */
  netnsPath?: string;
  /** Binary names or paths (default `iptables`, `iptables-restore`). */
  iptables?: string;
  iptablesRestore?: string;
  /** Payloads are logged at trace level. */
  logger?: Pick<Logger, 'trace' | 'debug'>;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(argv: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new BerthError('BERTH_IPTABLES', `run ${argv.join(' ')}: ${e.message}`, { cause: e })));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString().trim() }));
    child.stdin.on('error', () => undefined); // a binary that exits early (EPIPE) reports through its exit code
    child.stdin.end(input ?? '');
  });
}

/** The failed line of a payload, for the error message ("line 3 failed"). */
function failedLine(stderr: string, payload: string): string {
  // legacy: "line 3 failed"; nf_tables: "Error occurred at line: 4" (sometimes the line after)
  const m = /line:? (\d+)/.exec(stderr);
  if (!m) return '';
  const lines = payload.split('\n');
  let n = Number(m[1]);
  if ((lines[n - 1] === 'COMMIT' || lines[n - 1] === '') && n > 1) n--;
  const line = lines[n - 1];
  return line === undefined ? '' : ` (payload line ${n}: ${line})`;
}

/** The iptables adapter over the binaries (nf_tables or legacy, whichever `iptables` is). */
export function createIptables(opts: IptablesOptions = {}): Iptables {
  const prefix = opts.netnsPath ? ['nsenter', `--net=${opts.netnsPath}`] : [];
  const ipt = opts.iptables ?? 'iptables';
  const restoreBin = opts.iptablesRestore ?? 'iptables-restore';
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => undefined);
    return p;
  };

  const self: Iptables = {
    async restore(payload) {
      if (payload === '') return;
      opts.logger?.trace({ payload }, 'iptables-restore');
      const r = await run([...prefix, restoreBin, '--noflush', '-w'], payload);
      if (r.code !== 0) {
        throw new BerthError('BERTH_IPTABLES', `iptables-restore: ${(r.stderr.split('\n')[0] ?? '') || `exit ${r.code}`}${failedLine(r.stderr, payload)}`, { details: { payload } });
      }
    },
    async list(table, chain) {
      const r = await run([...prefix, ipt, '-w', '-t', table, '-S', ...(chain === undefined ? [] : [chain])]);
      if (r.code !== 0) throw new BerthError('BERTH_IPTABLES', `iptables -t ${table} -S${chain === undefined ? '' : ` ${chain}`}: ${r.stderr || `exit ${r.code}`}`);
      return r.stdout.split('\n').filter((l) => l !== '');
    },
    async exists(table, chain, args) {
      const r = await run([...prefix, ipt, '-w', '-t', table, '-C', chain, ...args]);
      if (r.code === 0) return true;
      if (r.code === 1) return false; // no such rule, or no such chain
      if (/does not exist|No chain\/target\/match/.test(r.stderr)) return false; // a jump to a chain not made yet
      throw new BerthError('BERTH_IPTABLES', `iptables -t ${table} -C ${chain} ${args.join(' ')}: ${r.stderr || `exit ${r.code}`}`);
    },
    apply(ops, applyOpts) {
      return serial(() => applyOps(self, ops, applyOpts));
    },
    async ensureChain(table, chain) {
      await self.apply([{ op: 'ensureChain', table, chain }]);
    },
    async flushChain(table, chain) {
      await self.apply([{ op: 'flushChain', table, chain }]);
    },
    async deleteChain(table, chain) {
      await self.apply([{ op: 'deleteChain', table, chain }]);
    },
  };
  return self;
}

export type { Op };
