/**
 * Starting berth-shim + berth-init with a plan, and reading the init's report.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import { BerthError } from '@berth/errors';
import type { NativePaths } from '@berth/native';

export interface InitFailure {
  errno: number;
  code: string;
  syscall: string;
  path: string;
  detail: string;
}

/**
 * How the shim owns a container's stdio (docs/shim-protocol.md). With it the shim is
 * detached, makes pipes (or takes the pty with tty), logs and serves attach on `socket`.
 */
export interface ContainerIo {
  /** The shim's control socket (unix stream, 0600). */
  socket: string;
  /** Docker json-file log to append to. */
  logFile?: string;
  /**
   * Rotation of logFile (Docker's json-file max-size / max-file): before a record would take a
   * non-empty file past logMaxSize bytes the shim rotates it (`<log>.1` newest, at most
   * logMaxFiles files in all; with 1 the file is truncated). Absent or 0: no limit.
   */
  logMaxSize?: number;
  /** How many files in all, the active one included (>= 1; default 1). */
  logMaxFiles?: number;
  tty: boolean;
  /** Keep a writable stdin (Docker's OpenStdin). */
  stdin: boolean;
  /** Close the container's stdin when the first stdin client detaches. */
  stdinOnce: boolean;
  /** Read no output until the first attach (exec). */
  hold?: boolean;
}

export interface LaunchOptions {
  paths: NativePaths;
  /** A sealed copy of berth-init to exec (sealed-init.ts); null: the shim makes one. */
  initFd?: number | null;
  plan: Buffer;
  pidFile: string;
  exitFile: string;
  /** The shim forks away and the container outlives the caller. */
  detach: boolean;
  /** fds 0-2 of the container. */
  stdio: ['inherit' | 'ignore' | number, 'inherit' | 'ignore' | number, 'inherit' | 'ignore' | number];
  /** The shim owns stdio (stdio is then ignored); consoleSocket is required with io.tty. */
  io?: ContainerIo & { consoleSocket?: string };
  /** Resolve once the init reported "ready" (it then waits on the start fifo) instead of at exec. */
  untilReady: boolean;
}

export interface Launched {
  pid: number;
  shim: ChildProcess;
}

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v as number, k]));

export function parseFailure(line: string): InitFailure {
  const [, errno, syscall, path, detail] = line.split('\t');
  const n = Number(errno);
  return { errno: n, code: errnoNames.get(n) ?? `errno ${n}`, syscall: syscall ?? '', path: path ?? '', detail: detail ?? '' };
}

/** The user-facing message for an init failure, naming the spec field where one is at fault. */
export function describeFailure(f: InitFailure): { message: string; exitCode: number } {
  if (f.syscall === 'exec' || f.syscall === 'execve' || f.syscall === 'stat' || f.syscall === 'access') {
    if (f.code === 'ENOENT')
      return { message: `exec: "${f.path}": executable file not found in $PATH`, exitCode: 127 };
    return { message: `exec: "${f.path}": permission denied`, exitCode: 126 };
  }
  const what = `${f.syscall}${f.path ? ` ${f.path}` : ''}: ${f.code}${f.detail ? ` (${f.detail})` : ''}`;
  if (f.syscall === 'chdir' || f.syscall === 'getcwd') return { message: `process.cwd: ${what}`, exitCode: 1 };
  return { message: what, exitCode: 1 };
}

export function launch(opts: LaunchOptions): Promise<Launched> {
  const args = ['--init', opts.paths.init, '--pid-file', opts.pidFile, '--exit-file', opts.exitFile];
  if (opts.detach) args.push('--detach');
  if (opts.initFd != null) args.push('--init-fd', '5');
  const io = opts.io;
  if (io) {
    args.push('--socket', io.socket);
    if (io.logFile) {
      args.push('--log', io.logFile);
      if (io.logMaxSize && io.logMaxSize > 0) args.push('--log-max-size', String(Math.floor(io.logMaxSize)), '--log-max-files', String(Math.max(1, Math.floor(io.logMaxFiles ?? 1))));
    }
    if (io.tty) {
      if (!io.consoleSocket) throw new BerthError('BERTH_INTERNAL', 'launch: a tty needs a console socket');
      args.push('--tty', '--console-socket', io.consoleSocket);
    }
    if (io.stdin) args.push('--stdin');
    if (io.stdinOnce) args.push('--stdin-once');
    if (io.hold) args.push('--hold');
  }
  const stdio: StdioOptions = [...(io ? (['ignore', 'ignore', 'ignore'] as const) : opts.stdio), 'pipe', 'pipe', ...(opts.initFd != null ? [opts.initFd] : [])];
  const shim = spawn(opts.paths.shim, args, { stdio, detached: opts.detach });
  const planPipe = shim.stdio[3] as NodeJS.WritableStream;
  const report = shim.stdio[4] as NodeJS.ReadableStream;
  planPipe.on('error', () => {
    // The shim died before reading the plan; the report says why.
  });
  planPipe.end(opts.plan);
  return new Promise((resolve, reject) => {
    let buf = '';
    let pid = 0;
    let settled = false;
    const done = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      report.removeAllListeners('data');
      (report as unknown as { destroy(): void }).destroy();
      if (err) reject(err);
      else resolve({ pid, shim });
    };
    report.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('pid ')) pid = Number(line.slice(4));
        else if (line === 'ready') {
          if (opts.untilReady) done(null);
        } else if (line.startsWith('error\t')) {
          const failure = parseFailure(line);
          const { message, exitCode } = describeFailure(failure);
          done(new BerthError('BERTH_CONTAINER_START_FAILED', message, { details: { ...failure, exitCode, pid } }));
        }
      }
    });
    report.on('end', () => {
      if (pid > 0) done(null);
      else done(new BerthError('BERTH_CONTAINER_START_FAILED', 'berth-init exited without reporting a container process'));
    });
    shim.on('error', (err) => done(new BerthError('BERTH_NATIVE_UNAVAILABLE', `cannot run ${opts.paths.shim}: ${err.message}`, { cause: err })));
  });
}
