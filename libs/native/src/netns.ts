import { closeSync, openSync } from 'node:fs';
import { BerthError, SystemError } from '@berth/errors';
import { CLONE_NEWNET } from './constants.js';
import { realSyscalls, type Syscalls } from './syscalls.js';

function openNs(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (typeof e.errno === 'number' && typeof e.code === 'string') {
      throw new SystemError({ errno: Math.abs(e.errno), code: e.code, syscall: 'open', path }, { cause: err });
    }
    throw err;
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * Runs `fn` with the calling thread in the network namespace at `nsPath`, then moves the
 * thread back, also when `fn` throws.
 *
 * Only work `fn` does synchronously happens inside: a socket created during the call stays
 * in that namespace for its whole life (netlink and raw sockets, `dgram` sockets, a
 * `net.Server` listening on a port without a host name). Anything deferred to a later tick
 * or to the libuv pool (a host name lookup before bind, `net.connect`, fs.promises) runs in
 * the daemon's namespace. So `fn` must not return a promise; one that does is an error.
 */
export function inNetns<T>(nsPath: string, fn: () => T, sys: Pick<Syscalls, 'setns'> = realSyscalls()): T {
  const self = openNs('/proc/thread-self/ns/net');
  let target: number | undefined;
  try {
    target = openNs(nsPath);
    try {
      sys.setns(target, CLONE_NEWNET);
    } catch (err) {
      if (err instanceof SystemError) {
        throw new SystemError({ errno: err.errno, code: err.code, syscall: err.syscall, path: nsPath }, { cause: err });
      }
      throw err;
    }
    let result: T;
    try {
      result = fn();
    } finally {
      try {
        sys.setns(self, CLONE_NEWNET);
      } catch (err) {
        // The thread that runs all JavaScript is now stuck in the container's network; no
        // later socket of the daemon would be where it belongs.
        throw new BerthError('BERTH_INTERNAL', `inNetns: could not return the main thread from ${nsPath} to its own network namespace`, {
          cause: err,
        });
      }
    }
    if (isThenable(result)) {
      // Keep the rejection from going unhandled; the caller gets the error below instead.
      Promise.resolve(result).catch(() => undefined);
      throw new BerthError('BERTH_INVALID_ARGUMENT', `inNetns ${nsPath}: fn returned a promise; only synchronous work runs inside the namespace`);
    }
    return result;
  } finally {
    if (target !== undefined) closeSync(target);
    closeSync(self);
  }
}
