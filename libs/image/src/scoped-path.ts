import { constants as fsc, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BerthError } from '@berth/errors';

/** Symlinks followed in one resolution before it is refused (Linux's own limit is 40; Docker's 255). */
const MAX_LINKS = 255;

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/**
 * Resolves a path of a container (`/etc/../tmp/x`) to a host path under `root`, as if `root`
 * were `/`: every component is looked at with lstat, `..` stops at the root, a symlink's target
 * is resolved again inside the root (an absolute target starts over at the root, a relative one
 * from the link's directory). Nothing it answers lies outside `root` at the time of the walk.
 * The last component is followed only when `followFinal` is set or the path ends in `/` or `/.`
 * (Docker's rule for cp). Missing components are kept as named.
 */
export async function resolveInRoot(root: string, containerPath: string, opts: { followFinal?: boolean } = {}): Promise<string> {
  const base = path.resolve(root);
  const resolved: string[] = [];
  const queue = containerPath.split('/');
  let links = 0;
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      resolved.pop();
      continue;
    }
    const last = queue.length === 0;
    const candidate = path.join(base, ...resolved, c);
    const st = await lstatOrNull(candidate);
    if (st !== null && st.isSymbolicLink() && (!last || opts.followFinal === true)) {
      if (++links > MAX_LINKS)
        throw new BerthError('BERTH_INVALID_ARGUMENT', `too many levels of symbolic links resolving ${containerPath}`, { details: { field: 'path' } });
      const target = await fs.readlink(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      queue.unshift(...target.split('/'));
      continue;
    }
    resolved.push(c);
  }
  return path.join(base, ...resolved);
}

/** The container path of a host path under `root` (`<root>/etc/x` -> `/etc/x`). */
export function containerPathOf(root: string, hostPath: string): string {
  const rel = path.relative(path.resolve(root), hostPath);
  return rel === '' ? '/' : `/${rel}`;
}

/** Whether `p` is `root` or lies below it (both already real paths). */
export function isWithin(root: string, p: string): boolean {
  return p === root || p.startsWith(root === '/' ? '/' : `${root}/`);
}

/** A directory held open: `path` (`/proc/self/fd/N`) keeps naming it whatever is renamed meanwhile. */
export interface PinnedDir {
  path: string;
  close(): Promise<void>;
}

/**
 * Opens the directory `hostDir` (resolved by resolveInRoot) without following a symlink in its
 * place and checks, through `/proc/self/fd`, that what was opened really lies under `root`: a
 * component swapped for a symlink after the resolution is caught here. Work below the answer's
 * `path` starts from the opened directory itself.
 */
export async function pinDir(root: string, hostDir: string): Promise<PinnedDir> {
  const realRoot = await fs.realpath(root);
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(hostDir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR')
      throw new BerthError('BERTH_INVALID_ARGUMENT', `${containerPathOf(root, hostDir)} is not a directory`, { cause: err, details: { field: 'path' } });
    throw err;
  }
  const fdPath = `/proc/self/fd/${fh.fd}`;
  const real = await fs.readlink(fdPath);
  if (!isWithin(realRoot, real)) {
    await fh.close();
    throw new BerthError('BERTH_PATH_ESCAPES_ROOT', `path ${containerPathOf(root, hostDir)} escaped the container's root (changed while in use)`, {
      details: { field: 'path' },
    });
  }
  return { path: fdPath, close: () => fh.close() };
}
