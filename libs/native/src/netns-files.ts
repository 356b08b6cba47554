/** Network namespace files: a namespace that outlives its processes as a bind mount (sandboxes, tests). */
import { closeSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { BerthError, SystemError } from '@berth/errors';
import { CLONE_NEWNET, FsMagic, MNT_DETACH, MS_BIND } from './constants.js';
import { realSyscalls, type Syscalls } from './syscalls.js';

function fsError(err: unknown, syscall: string, path: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (typeof e.errno === 'number' && typeof e.code === 'string') return new SystemError({ errno: Math.abs(e.errno), code: e.code, syscall, path }, { cause: err });
  return err;
}

/**
 * Makes a new network namespace that outlives every process: the main thread unshares into a
 * fresh one, the namespace file is bind-mounted at `path` (parent directories made), and the
 * thread goes back to where it was. Synchronous: no other JavaScript runs while the thread is
 * elsewhere. A file or mount already at `path` is an error (EEXIST); on failure nothing is left.
 */
export function createNetns(path: string, sys: Syscalls = realSyscalls()): void {
  mkdirSync(dirname(path), { recursive: true });
  try {
    closeSync(openSync(path, 'wx', 0o444));
  } catch (err) {
    throw fsError(err, 'create netns', path);
  }
  let mounted = false;
  try {
    const self = openSync('/proc/thread-self/ns/net', 'r');
    try {
      sys.unshare(CLONE_NEWNET);
      try {
        sys.mount('/proc/thread-self/ns/net', path, null, MS_BIND, null);
        mounted = true;
      } finally {
        try {
          sys.setns(self, CLONE_NEWNET);
        } catch (err) {
          // eslint-disable-next-line no-unsafe-finally
          throw new BerthError('BERTH_INTERNAL', `create netns ${path}: could not return the main thread to its own network namespace`, { cause: err });
        }
      }
    } finally {
      closeSync(self);
    }
  } finally {
    if (!mounted) {
      try {
        unlinkSync(path);
      } catch {
        // best effort: the error that got us here matters more
      }
    }
  }
}

/** Unmounts (MNT_DETACH) and removes a namespace made by createNetns; absent: no error. */
export function deleteNetns(path: string, sys: Syscalls = realSyscalls()): void {
  try {
    sys.umount2(path, MNT_DETACH);
  } catch (err) {
    // EINVAL: not a mount point (a leftover file); ENOENT: nothing there.
    if (!(err instanceof SystemError && (err.code === 'EINVAL' || err.code === 'ENOENT'))) throw err;
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, 'delete netns', path);
  }
}

/** True when a live namespace (an nsfs bind mount) is at path. */
export function netnsExists(path: string, sys: Syscalls = realSyscalls()): boolean {
  try {
    return sys.statfs(path).type === FsMagic.NSFS;
  } catch (err) {
    if (err instanceof SystemError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return false;
    throw err;
  }
}
