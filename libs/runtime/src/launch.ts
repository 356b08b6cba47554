/**
 * Starting berth-shim + berth-init with a plan, and reading the init's report.
 */
import { closeSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { BerthError } from '@berth/errors';
import { makePipe, spawnProcess, type NativePaths } from '@berth/native';

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

/** A shim that stays our child (not detached): berth-runtime's foreground run and exec. */
export interface ShimProcess {
  readonly pid: number;
  /** Signals the shim; nothing once it has exited (its pid is not reused before that is known). */
  kill(signal: NodeJS.Signals | number): void;
  /** The shim's exit status: the container's exit code, or 128+N when a signal N killed the shim. */
  readonly exited: Promise<number>;
}

export interface Launched {
  /** The container (or exec) process. */
  pid: number;
  /** The shim, when not detached; a detached shim is not our child. */
  shim: ShimProcess | null;
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
  const args = [opts.paths.shim, '--init', opts.paths.init, '--pid-file', opts.pidFile, '--exit-file', opts.exitFile];
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
  // The shim is started by @berth/native's spawnProcess (posix_spawn on a thread of the addon),
  // not node:child_process, which forks the whole daemon on its main thread (~4 ms for berthd
  // per start). fd 3 is a pipe already holding the whole plan (made large enough for it), fd 4
  // the report pipe; our ends are close-on-exec and the shim gets no other fd.
  const stdio = (io ? (['ignore', 'ignore', 'ignore'] as const) : opts.stdio).map((s, i) => (s === 'ignore' ? null : s === 'inherit' ? i : s));
  let plan: [number, number] | undefined;
  let report: [number, number] | undefined;
  let started: Promise<number>;
  let exited: Promise<number> | null = null;
  let gone = false;
  try {
    plan = makePipe(opts.plan.length);
    report = makePipe();
    for (let off = 0; off < opts.plan.length; ) off += writeSync(plan[1], opts.plan, off);
    const fds = [...stdio, plan[0], report[1], ...(opts.initFd != null ? [opts.initFd] : [])];
    if (opts.detach) {
      // The first shim process exits as soon as it has forked the real one; the addon reaps it.
      started = spawnProcess({ path: opts.paths.shim, argv: args, fds, setsid: true });
    } else {
      let onExit!: (code: number | null, signal: number | null) => void;
      exited = new Promise<number>((resolve) => {
        onExit = (code, signal) => {
          gone = true;
          resolve(code ?? 128 + (signal ?? 0));
        };
      });
      started = spawnProcess({ path: opts.paths.shim, argv: args, fds, setsid: false, onExit });
    }
  } catch (err) {
    if (report) closeSync(report[0]);
    return Promise.reject(err instanceof BerthError ? err : spawnFailure(opts.paths.shim, err));
  } finally {
    // The spawn took copies of the child's ends (and the plan is written).
    for (const fd of [plan?.[0], plan?.[1], report?.[1]]) if (fd !== undefined) closeSync(fd);
  }
  let shimPid = 0;
  const shim: ShimProcess | null = exited === null ? null : {
    get pid() {
      return shimPid;
    },
    exited,
    kill(signal) {
      if (gone || shimPid === 0) return;
      try {
        process.kill(shimPid, signal);
      } catch {
        // already exiting
      }
    },
  };
  const reportPipe = new Socket({ fd: report[0], readable: true, writable: false });
  return new Promise((resolve, reject) => {
    let buf = '';
    let pid = 0;
    let settled = false;
    let spawned = false;
    let reported = false;
    const done = (err: Error | null): void => {
      if (settled) return;
      if (!err && !(spawned && reported)) return;
      settled = true;
      reportPipe.removeAllListeners('data');
      reportPipe.destroy();
      if (err) reject(err);
      else resolve({ pid, shim });
    };
    // Both needed to resolve: the shim's pid (kill) and the init's report.
    started.then(
      (p) => {
        shimPid = p;
        spawned = true;
        done(null);
      },
      (err: unknown) => done(spawnFailure(opts.paths.shim, err)),
    );
    const ok = (): void => {
      reported = true;
      done(null);
    };
    reportPipe.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('pid ')) pid = Number(line.slice(4));
        else if (line === 'ready') {
          if (opts.untilReady) ok();
        } else if (line.startsWith('error\t')) {
          const failure = parseFailure(line);
          const { message, exitCode } = describeFailure(failure);
          done(new BerthError('BERTH_CONTAINER_START_FAILED', message, { details: { ...failure, exitCode, pid } }));
        }
      }
    });
    reportPipe.on('end', () => {
      if (pid > 0) ok();
      // No report at all: the shim never ran (the spawn's error says why) or died early.
      else void started.then(() => done(new BerthError('BERTH_CONTAINER_START_FAILED', 'berth-init exited without reporting a container process')), () => undefined);
    });
    reportPipe.on('error', (err) => done(new BerthError('BERTH_CONTAINER_START_FAILED', `reading berth-init's report: ${err.message}`, { cause: err })));
  });
}

function spawnFailure(shim: string, err: unknown): BerthError {
  return new BerthError('BERTH_NATIVE_UNAVAILABLE', `cannot run ${shim}: ${(err as Error).message}`, { cause: err });
}
