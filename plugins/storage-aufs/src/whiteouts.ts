import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ChangeKind, type Change } from '@berth/plugin-api';
import type { AufsSyscalls } from './union.js';

/** aufs's whiteout prefix: `.wh.x` hides `x` of the branches below. */
export const WH_PREFIX = '.wh.';
/** aufs's internal names (`.wh..wh.plnk`, `.wh..wh.aufs`, `.wh..wh.orph`); never layer content. */
export const WH_META_PREFIX = '.wh..wh.';
/** aufs's opaque marker: the directory hides everything of the branches below. */
export const WH_OPAQUE = '.wh..wh..opq';
/** fuse-overlayfs's own opaque marker in an upper dir (a character device). */
const FUSE_OPAQUE = '.wh..opq';
const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.fuseoverlayfs.opaque', 'user.overlay.opaque'];

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

const isDeviceWhiteout = (st: Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

function hasOpaqueXattr(dir: string, sys: AufsSyscalls): boolean {
  for (const x of OPAQUE_XATTRS) {
    try {
      if (sys.lgetxattr(dir, x)?.toString() === 'y') return true;
    } catch {
      // no such xattr namespace here
    }
  }
  return false;
}

async function touchWhiteout(p: string): Promise<void> {
  const fh = await fs.open(p, 'wx', 0o444).catch(async (err: unknown) => {
    if ((err as { code?: string }).code === 'EEXIST') return null;
    throw err;
  });
  await fh?.close();
}

/**
 * Rewrites what fuse-overlayfs left in a top branch into aufs's form, in place (the branch must
 * not be mounted): a 0/0 character device `x` becomes the file `.wh.x`; an opaque directory
 * (fuse-overlayfs's `.wh..opq` device, or an opaque xattr) gets `.wh..wh..opq`. `.wh.` files an
 * unprivileged fuse-overlayfs writes are aufs's form already. Answers how many entries changed.
 */
export async function normalizeBranch(dir: string, sys: AufsSyscalls): Promise<number> {
  let changed = 0;
  const walk = async (abs: string): Promise<void> => {
    const names = await fs.readdir(abs);
    let opaque = false;
    for (const n of names) {
      const p = path.join(abs, n);
      const st = await lstatOrNull(p);
      if (st === null) continue;
      if (n === FUSE_OPAQUE) {
        await fs.rm(p, { force: true });
        opaque = true;
        changed++;
        continue;
      }
      if (isDeviceWhiteout(st) && !n.startsWith(WH_PREFIX)) {
        await fs.rm(p, { force: true });
        await touchWhiteout(path.join(abs, WH_PREFIX + n));
        changed++;
        continue;
      }
      if (st.isDirectory() && !n.startsWith(WH_META_PREFIX)) await walk(p);
    }
    if ((opaque || hasOpaqueXattr(abs, sys)) && !names.includes(WH_OPAQUE)) {
      await touchWhiteout(path.join(abs, WH_OPAQUE));
      changed++;
    }
  };
  await walk(dir);
  return changed;
}

/** Whether `rel` is visible in the stack of aufs branches `lowers` (nearest first). */
async function visibleIn(lowers: readonly string[], rel: string): Promise<boolean> {
  const parts = rel.split('/');
  for (const l of lowers) {
    let hiddenBelow = false;
    for (let i = 0; i < parts.length; i++) {
      const parent = path.join(l, ...parts.slice(0, i));
      if ((await lstatOrNull(path.join(parent, WH_PREFIX + parts[i]))) !== null) return false;
      const st = await lstatOrNull(path.join(parent, parts[i]!));
      if (st === null) {
        if (hiddenBelow) return false;
        break; // not in this branch: look further down
      }
      if (i === parts.length - 1) return true;
      if (!st.isDirectory()) return false;
      if ((await lstatOrNull(path.join(parent, parts[i]!, WH_OPAQUE))) !== null) hiddenBelow = true;
    }
    if (hiddenBelow) return false;
  }
  return false;
}

/**
 * The changes a branch in aufs's form holds against the branches below it: `.wh.x` deletes
 * `x`, anything else is a modification when the lower branches show the path (a directory
 * holding changes included, as Docker reports it) and an addition otherwise; below an opaque
 * directory everything is new, and what it hid is deleted.
 */
export async function branchChanges(upper: string, lowers: readonly string[]): Promise<Change[]> {
  const out: Change[] = [];
  const walk = async (rel: string, lowerVisible: boolean): Promise<void> => {
    const abs = rel === '' ? upper : path.join(upper, rel);
    for (const n of (await fs.readdir(abs)).sort()) {
      if (n.startsWith(WH_META_PREFIX)) continue;
      const childRel = rel === '' ? n : `${rel}/${n}`;
      if (n.startsWith(WH_PREFIX)) {
        const victim = rel === '' ? n.slice(WH_PREFIX.length) : `${rel}/${n.slice(WH_PREFIX.length)}`;
        if (lowerVisible && (await visibleIn(lowers, victim))) out.push({ path: `/${victim}`, kind: ChangeKind.Delete });
        continue;
      }
      const st = await fs.lstat(path.join(abs, n));
      const existed = lowerVisible && (await visibleIn(lowers, childRel));
      out.push({ path: `/${childRel}`, kind: existed ? ChangeKind.Modify : ChangeKind.Add });
      if (st.isDirectory()) {
        const opaque = (await lstatOrNull(path.join(abs, n, WH_OPAQUE))) !== null;
        await walk(childRel, existed && !opaque);
      }
    }
  };
  await walk('', lowers.length > 0);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
