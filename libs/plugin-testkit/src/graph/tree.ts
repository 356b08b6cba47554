import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { ArchiveFs } from '@berth/archive';

/** The xattrs the suite looks at (there is no llistxattr in the syscall surface). */
export const WATCHED_XATTRS = ['security.capability', 'user.berth.suite'] as const;

export interface TreeOptions {
  /** Include the mtime of directories (false when a union changes them as it works). */
  dirTimes?: boolean;
  /** Which xattrs to record; default all WATCHED_XATTRS. */
  xattrs?: readonly string[];
  /** Record owners (false when the suite cannot chown). */
  owners?: boolean;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex').slice(0, 16);
}

const kind = (st: import('node:fs').Stats): string =>
  st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other';

/**
 * Everything the contract compares about a tree, one line per path (relative, sorted):
 * type, mode, owner, size, mtime (seconds), content hash, link target, device number, watched
 * xattrs, and hard-link groups (by the first path of each inode).
 */
export async function snapshotTree(dir: string, afs: ArchiveFs, opts: TreeOptions = {}): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const firstOfInode = new Map<string, string>();
  const xattrs = opts.xattrs ?? WATCHED_XATTRS;
  const walk = async (rel: string): Promise<void> => {
    for (const n of (await fs.readdir(rel === '' ? dir : path.join(dir, rel))).sort()) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const p = path.join(dir, r);
      const st = await fs.lstat(p);
      const f: string[] = [kind(st), (st.mode & 0o7777).toString(8)];
      if (opts.owners !== false) f.push(`${st.uid}:${st.gid}`);
      if (!st.isDirectory() || opts.dirTimes !== false) f.push(`t=${Math.floor(st.mtimeMs / 1000)}`);
      if (st.isFile()) {
        f.push(`size=${st.size}`, `sha=${await sha256(p)}`);
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          const first = firstOfInode.get(key);
          if (first === undefined) firstOfInode.set(key, r);
          else f.push(`link=${first}`);
        }
      }
      if (st.isSymbolicLink()) f.push(`-> ${await fs.readlink(p)}`);
      if (st.isCharacterDevice() || st.isBlockDevice()) f.push(`rdev=${st.rdev}`);
      if (!st.isSymbolicLink()) {
        for (const x of xattrs) {
          let v: Buffer | null = null;
          try {
            v = afs.lgetxattr(p, x);
          } catch {
            // no xattr support: nothing recorded
          }
          if (v !== null) f.push(`${x}=${v.toString('hex')}`);
        }
      }
      out.set(r, f.join(' '));
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

/** The paths of a tree, sorted (a quick view for assertions). */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const ent of (await fs.readdir(rel === '' ? dir : path.join(dir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel === '' ? ent.name : `${rel}/${ent.name}`;
      out.push(r);
      if (ent.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

/** Lines that differ between two snapshots ("path: a != b"), for readable failures. */
export function snapshotDiff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k);
    const y = b.get(k);
    if (x !== y) out.push(`${k}: ${x ?? '<absent>'} != ${y ?? '<absent>'}`);
  }
  return out.sort();
}
