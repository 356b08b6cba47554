// Child processes without fork(), started off the JS thread: see src/addon/spawn.cc.
import { loadAddon } from './addon.js';
import { toSystemError } from './syscalls.js';

export interface SpawnOptions {
  /** The executable, run as is (no PATH search). */
  path: string;
  /** The child's argv, argv[0] included. */
  argv: string[];
  /**
   * The child's fds 0..n-1: for each, an fd of this process to dup there, or null for /dev/null
   * (read-write). Every other fd is closed in the child, whatever its close-on-exec flag. The fds
   * are copied before spawnProcess returns: the caller may close its own right away.
   */
  fds: (number | null)[];
  /** The child leads a new session (setsid). */
  setsid: boolean;
  /**
   * Called on the JS thread once the child has exited (its code, or the number of the signal
   * that killed it), after it was reaped: until then its pid is not reused, so signalling it is
   * safe. While it is pending the event loop stays alive. Without it the child is reaped when it
   * exits, and nobody is told (nor is the event loop held).
   */
  onExit?: (code: number | null, signal: number | null) => void;
}

/**
 * Starts a child process without copying this process: one thread of the addon runs
 * posix_spawn (clone with CLONE_VM and CLONE_VFORK), so the JS thread only queues the request
 * (tens of µs, where node:child_process forks the whole process on the JS thread). The child
 * starts with every signal unblocked and at its default disposition, as a child of
 * node:child_process does, and this process's environment as it is now. It is always reaped,
 * so it never stays a zombie.
 *
 * Resolves with the pid once the child exists (it may have exited already). A failure to start
 * it (ENOENT, EACCES) rejects with a SystemError, syscall "spawn", path the executable; an fd
 * that is not open throws (EBADF) at once.
 */
export function spawnProcess(opts: SpawnOptions): Promise<number> {
  const addon = loadAddon();
  const onExit = opts.onExit;
  let resolve!: (pid: number) => void;
  let reject!: (err: unknown) => void;
  const started = new Promise<number>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  try {
    addon.spawn(opts.path, opts.argv, opts.fds, opts.setsid, onExit !== undefined, (what, a, b) => {
      if (what === 'spawned') resolve(a as number);
      else if (what === 'error') reject(toSystemError(a));
      else onExit?.(a as number | null, b ?? null);
    });
  } catch (err) {
    throw toSystemError(err);
  }
  return started;
}

/**
 * pipe2(O_CLOEXEC): [read end, write end]. The pipe holds at least `minCapacity` bytes (raised
 * with F_SETPIPE_SZ when needed), so that much written into it while empty never blocks.
 */
export function makePipe(minCapacity = 0): [read: number, write: number] {
  const addon = loadAddon();
  try {
    return addon.pipe(minCapacity);
  } catch (err) {
    throw toSystemError(err);
  }
}
