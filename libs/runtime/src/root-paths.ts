import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';

const MAX_SYMLINKS = 40;

/**
 * Walks `dest` inside `rootfs` as the container will see it, following symlinks, and refuses a
 * path that leaves the root: through `..`, or through a symlink whose relative target climbs
 * out. (An absolute symlink target is read inside the root, as it will be after pivot_root.)
 * The init resolves the same path again with openat2(RESOLVE_IN_ROOT), which is what keeps the
 * host safe; this check is there to give the user a clear error naming the field. Returns the
 * path as resolved today (what later checks about /proc and /sys look at).
 */
export function checkInRoot(rootfs: string, dest: string, field: string): string {
  const escapes = (how: string): BerthError =>
    new BerthError('BERTH_PATH_ESCAPES_ROOT', `${field}: "${dest}" resolves outside the container root${how}`, {
      details: { field, path: dest },
    });
  let pending = dest.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const comp = pending.shift() as string;
    if (comp === '..') {
      if (done.length === 0) throw escapes(' through ".."');
      done.pop();
      continue;
    }
    const here = join(rootfs, ...done, comp);
    let isLink = false;
    try {
      isLink = lstatSync(here).isSymbolicLink();
    } catch {
      // Missing: the init creates it; what is left is checked lexically.
    }
    if (!isLink) {
      done.push(comp);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw new BerthError('BERTH_SPEC_INVALID', `${field}: "${dest}": too many levels of symbolic links`);
    const target = readlinkSync(here);
    const parts = target.split('/').filter((c) => c !== '' && c !== '.');
    if (target.startsWith('/')) {
      done.length = 0;
    } else {
      // A relative target is read from the link's directory: count how far up it climbs.
      let depth = done.length;
      for (const p of parts) {
        if (p === '..') {
          if (depth === 0) throw escapes(` through the symlink /${[...done, comp].join('/')} -> ${target}`);
          depth--;
        } else depth++;
      }
    }
    pending = [...parts, ...pending];
  }
  return `/${done.join('/')}`;
}

/** True when the path inside the rootfs is a symlink (procfs and sysfs refuse those). */
export function isSymlinkInRoot(rootfs: string, dest: string): boolean {
  try {
    return lstatSync(join(rootfs, dest)).isSymbolicLink();
  } catch {
    return false;
  }
}
