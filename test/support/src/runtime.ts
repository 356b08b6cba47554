import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { BerthError } from '@berth/errors';
import { makeTempDir, repoRoot } from './paths.js';

export type RuntimeName = 'berth' | 'runc' | 'crun';

export const ALL_RUNTIMES: readonly RuntimeName[] = ['berth', 'runc', 'crun'];

/** The env var that lists the runtimes a conformance run covers (comma separated). */
export const RUNTIMES_ENV = 'BERTH_CONFORMANCE_RUNTIMES';
export const DEFAULT_RUNTIMES = 'berth,runc,crun';

/** Parses BERTH_CONFORMANCE_RUNTIMES (default "berth,runc,crun"); unknown names are an error. */
export function selectedRuntimes(env: NodeJS.ProcessEnv = process.env): RuntimeName[] {
  const raw = env[RUNTIMES_ENV]?.trim() || DEFAULT_RUNTIMES;
  const out: RuntimeName[] = [];
  for (const part of raw.split(',')) {
    const name = part.trim();
    if (name === '') continue;
    if (!(ALL_RUNTIMES as readonly string[]).includes(name)) {
      throw new BerthError('BERTH_INVALID_ARGUMENT', `${RUNTIMES_ENV}: unknown runtime "${name}" (known: ${ALL_RUNTIMES.join(', ')})`, {
        details: { field: RUNTIMES_ENV },
      });
    }
    if (!out.includes(name as RuntimeName)) out.push(name as RuntimeName);
  }
  return out;
}

export interface RuntimeInfo {
  name: RuntimeName;
  /** The runtime's binary, when found. */
  binary: string | null;
  /** argv prefix that runs the runtime (a wrapper for crun on hybrid hosts); empty if unavailable. */
  command: string[];
  available: boolean;
  /** Why the runtime is unavailable, e.g. "berth-runtime not built (...)". */
  reason: string | null;
  /** Facts a test run should print, e.g. that crun runs through a wrapper. */
  notes: string[];
}

export interface Runtime extends RuntimeInfo {
  /** This runtime's private `--root` state dir, so runs never collide with each other or the host's. */
  stateRoot: string;
  /** Removes the state root. */
  dispose(): Promise<void>;
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Finds an executable on PATH (or the given extra dirs). */
export async function which(name: string, extraDirs: string[] = [], pathVar: string | undefined = process.env.PATH): Promise<string | null> {
  const dirs = [...(pathVar ?? '').split(':').filter(Boolean), ...extraDirs];
  for (const d of dirs) {
    const p = path.join(d, name);
    if (await isExecutable(p)) return p;
  }
  return null;
}

/** The in-tree berth-runtime launcher (apps/berth-runtime/bin/berth-runtime). */
export function berthRuntimeInTree(): string {
  return path.join(repoRoot(), 'apps/berth-runtime/bin/berth-runtime');
}

/**
 * True on a cgroup v1 host that also mounts a cgroup2 hierarchy (systemd's "hybrid" layout),
 * which crun refuses to run on.
 */
export async function isCgroupHybrid(): Promise<boolean> {
  const mi = await readFile('/proc/self/mountinfo', 'utf8');
  let v1 = false;
  let v2 = false;
  for (const line of mi.split('\n')) {
    const post = line.split(' - ')[1];
    if (!post) continue;
    const fstype = post.split(' ')[0];
    if (fstype === 'cgroup') v1 = true;
    if (fstype === 'cgroup2') v2 = true;
  }
  return v1 && v2;
}

/** The cgroup2 mount point of a hybrid host (/sys/fs/cgroup/unified on systemd hosts). */
async function hybridUnifiedMount(): Promise<string | null> {
  const mi = await readFile('/proc/self/mountinfo', 'utf8');
  for (const line of mi.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    if (post.split(' ')[0] === 'cgroup2') return pre.split(' ')[4] ?? null;
  }
  return null;
}

/**
 * The wrapper that makes crun usable on a hybrid host: a private mount namespace in which the
 * cgroup2 mount is unmounted, so crun sees a pure v1 layout. Only crun's own view changes;
 * the host's mounts are untouched (propagation private) and cgroups it creates are the host's.
 */
export function crunHybridWrapper(crun: string, unified: string): string[] {
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `umount ${unified} || exit 125; exec "$0" "$@"`, crun];
}

/**
 * Locates a runtime and the argv that runs it; never throws for a missing one. berth-runtime
 * is BERTH_RUNTIME when set, else found on PATH, else apps/berth-runtime/bin/berth-runtime.
 */
export async function resolveRuntime(name: RuntimeName, env: NodeJS.ProcessEnv = process.env): Promise<RuntimeInfo> {
  switch (name) {
    case 'runc': {
      const bin = (await which('runc', ['/usr/sbin', '/usr/bin'])) ?? null;
      return bin
        ? { name, binary: bin, command: [bin], available: true, reason: null, notes: [] }
        : { name, binary: null, command: [], available: false, reason: 'runc not installed (apt-get install runc)', notes: [] };
    }
    case 'crun': {
      const bin = (await which('crun', ['/usr/bin', '/usr/sbin'])) ?? null;
      if (!bin) return { name, binary: null, command: [], available: false, reason: 'crun not installed (apt-get install crun)', notes: [] };
      const unified = (await isCgroupHybrid()) ? await hybridUnifiedMount() : null;
      if (unified === null) return { name, binary: bin, command: [bin], available: true, reason: null, notes: [] };
      const command = crunHybridWrapper(bin, unified);
      return {
        name,
        binary: bin,
        command,
        available: true,
        reason: null,
        notes: [
          `crun refuses this cgroup v1+v2 hybrid host ("cgroups in hybrid mode not supported"); it runs in a private mount namespace with ${unified} unmounted: ${command.join(' ')} ARGS`,
        ],
      };
    }
    case 'berth': {
      // BERTH_RUNTIME pins the binary (e.g. a build elsewhere); otherwise PATH, then the tree.
      const pinned = env.BERTH_RUNTIME?.trim();
      const inTree = berthRuntimeInTree();
      const bin = pinned ? ((await isExecutable(pinned)) ? pinned : null) : ((await which('berth-runtime', [], env.PATH)) ?? ((await isExecutable(inTree)) ? inTree : null));
      return bin
        ? { name, binary: bin, command: [bin], available: true, reason: null, notes: [] }
        : {
            name,
            binary: null,
            command: [],
            available: false,
            reason: pinned
              ? `berth-runtime not built (BERTH_RUNTIME=${pinned} is not an executable)`
              : `berth-runtime not built (looked on PATH and at ${inTree})`,
            notes: [],
          };
    }
  }
}

/** Resolves a runtime and gives it a private state dir under /tmp. */
export async function createRuntime(name: RuntimeName): Promise<Runtime> {
  const info = await resolveRuntime(name);
  const dir = await makeTempDir(`berth-rt-${name}`);
  return { ...info, stateRoot: dir.path, dispose: dir.remove };
}

/** Throws (loudly: the test fails, it does not skip) when the runtime is missing. */
export function requireAvailable(rt: RuntimeInfo): void {
  if (!rt.available) {
    throw new BerthError('BERTH_FIXTURE_UNAVAILABLE', rt.reason ?? `${rt.name} unavailable`, { details: { runtime: rt.name } });
  }
}

export interface RunOptions {
  /** Kill the runtime after this long (default 20 s); the result then has `timedOut`. */
  timeoutMs?: number;
  /** Written to the runtime's stdin, which is then closed (default: stdin is /dev/null-like, closed at once). */
  input?: string;
  /** Extra fds handed to the runtime as fd 3, 4, ... (to check that none reaches the container). */
  extraFds?: number[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * When the run counts as finished: 'close' (default) also waits for every holder of the
   * runtime's stdout/stderr to close them: the container too, for `run`. 'exit' returns when the
   * runtime exits and stops reading: for `create`, whose container keeps the pipes open.
   */
  until?: 'close' | 'exit';
}

export interface RunResult {
  argv: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

export interface RunningRuntime {
  child: ChildProcess;
  argv: string[];
  /** Resolves when stderr so far matches `re` (rejects if the runtime exits first). */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<void>;
  result: Promise<RunResult>;
}

/** Starts `<runtime> --root <stateRoot> ARGS...` without waiting for it. */
export function startRuntime(rt: Runtime, args: string[], opts: RunOptions = {}): RunningRuntime {
  requireAvailable(rt);
  const argv = [...rt.command, '--root', rt.stateRoot, ...args];
  const started = Date.now();
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe', ...(opts.extraFds ?? [])],
  });
  let stdout = '';
  let stderr = '';
  const stderrWaiters: { re: RegExp; resolve: () => void }[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    for (const w of [...stderrWaiters]) {
      if (w.re.test(stderr)) {
        stderrWaiters.splice(stderrWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  child.stdin!.on('error', () => undefined);
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  else child.stdin!.end();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 20_000);
  const result = new Promise<RunResult>((resolve, reject) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`spawn ${argv.join(' ')}: ${err.message}`, { cause: err }));
    });
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      resolve({ argv, code, signal, stdout, stderr, timedOut, durationMs: Date.now() - started });
    };
    if (opts.until === 'exit') {
      child.on('exit', (code, signal) => {
        // Let already-written output arrive, then let go of the pipes the container still holds.
        setImmediate(() => {
          child.stdout!.destroy();
          child.stderr!.destroy();
          done(code, signal);
        });
      });
    } else {
      child.on('close', done);
    }
  });
  return {
    child,
    argv,
    result,
    waitForStderr(re: RegExp, timeoutMs = 10_000) {
      if (re.test(stderr)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${argv.join(' ')}: stderr did not match ${re} within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        stderrWaiters.push({
          re,
          resolve: () => {
            clearTimeout(t);
            resolve();
          },
        });
        void result.then((r) => {
          clearTimeout(t);
          reject(new Error(`${argv.join(' ')} exited (code ${r.code}) before stderr matched ${re}; stderr: ${r.stderr}`));
        });
      });
    },
  };
}

/** Runs `<runtime> --root <stateRoot> ARGS...` to completion. */
export function runRuntime(rt: Runtime, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return startRuntime(rt, args, opts).result;
}

/** Forced delete that never throws: for cleanup after a test, whatever state it left. */
export async function forceDelete(rt: Runtime, id: string): Promise<RunResult | null> {
  // No state root, no container; and running the runtime would recreate the directory.
  if (!rt.available || !(await isExecutable(rt.stateRoot).catch(() => false))) return null;
  try {
    return await runRuntime(rt, ['delete', '--force', id], { timeoutMs: 10_000 });
  } catch {
    return null;
  }
}

/** One line describing a finished run, for assertion messages. */
export function describeRun(r: RunResult): string {
  return `${r.argv.join(' ')} -> code ${r.code}${r.signal ? ` signal ${r.signal}` : ''}${r.timedOut ? ' (timed out)' : ''}\nstderr: ${r.stderr.trim()}\nstdout: ${r.stdout.slice(0, 2000).trim()}`;
}
