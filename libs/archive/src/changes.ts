import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ChangeKind, type Change } from '@berth/plugin-api';

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Whether a file differs from its lower copy, by Docker's rule (directories ignore their times). */
async function differs(lower: Stats, upper: Stats, lowerPath: string, upperPath: string): Promise<boolean> {
  if ((lower.mode & 0o170000) !== (upper.mode & 0o170000)) return true;
  if (lower.mode !== upper.mode || lower.uid !== upper.uid || lower.gid !== upper.gid || lower.rdev !== upper.rdev) return true;
  if (upper.isDirectory()) return false;
  if (lower.size !== upper.size || Math.floor(lower.mtimeMs) !== Math.floor(upper.mtimeMs)) return true;
  if (upper.isSymbolicLink()) return (await fs.readlink(lowerPath)) !== (await fs.readlink(upperPath));
  return false;
}

/**
 * Changes of `upper` against `lower` (null: everything is added), paths absolute ("/etc/x"),
 * sorted. A deleted directory is reported once, not per child.
 */
export async function changesBetween(lower: string | null, upper: string): Promise<Change[]> {
  const out: Change[] = [];
  async function walk(rel: string): Promise<void> {
    const up = path.join(upper, rel);
    const lo = lower === null ? null : path.join(lower, rel);
    const upNames = new Set(await fs.readdir(up));
    const loNames = lo === null ? new Set<string>() : new Set(await fs.readdir(lo).catch(() => [] as string[]));
    const names = [...new Set([...upNames, ...loNames])].sort();
    for (const n of names) {
      const childRel = rel === '' ? n : `${rel}/${n}`;
      const upPath = path.join(up, n);
      const loPath = lo === null ? null : path.join(lo, n);
      const ust = upNames.has(n) ? await lstatOrNull(upPath) : null;
      const lst = loPath !== null && loNames.has(n) ? await lstatOrNull(loPath) : null;
      if (ust === null) {
        if (lst !== null) out.push({ path: `/${childRel}`, kind: ChangeKind.Delete });
        continue;
      }
      const at = out.length;
      let reported = true;
      if (lst === null) out.push({ path: `/${childRel}`, kind: ChangeKind.Add });
      else if (await differs(lst, ust, loPath!, upPath)) out.push({ path: `/${childRel}`, kind: ChangeKind.Modify });
      else reported = false;
      if (ust.isDirectory()) {
        // Docker's rule: a directory with changes inside is itself modified (so a diff carries
        // its mode, owner and times), listed before its children.
        if (!reported) {
          await walk(childRel);
          if (out.length > at) out.splice(at, 0, { path: `/${childRel}`, kind: ChangeKind.Modify });
          continue;
        }
        if (lst !== null && !lst.isDirectory()) {
          // was a file, now a directory: everything inside is new
          const before = out.length;
          await walkAdded(childRel);
          void before;
        } else await walk(childRel);
      }
    }
  }
  async function walkAdded(rel: string): Promise<void> {
    for (const n of (await fs.readdir(path.join(upper, rel))).sort()) {
      const childRel = `${rel}/${n}`;
      out.push({ path: `/${childRel}`, kind: ChangeKind.Add });
      if ((await fs.lstat(path.join(upper, childRel))).isDirectory()) await walkAdded(childRel);
    }
  }
  await walk('');
  return out;
}

/** Bytes of regular files under `dir`, each inode once. */
export async function diskUsage(dir: string): Promise<number> {
  const seen = new Set<number>();
  let total = 0;
  async function walk(d: string): Promise<void> {
    for (const ent of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) {
        const st = await fs.lstat(p);
        if (st.nlink > 1) {
          if (seen.has(st.ino)) continue;
          seen.add(st.ino);
        }
        total += st.size;
      }
    }
  }
  await walk(dir);
  return total;
}
