import { constants as fsc, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';

function devNumbers(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}

/**
 * A tar of a mounted filesystem tree (docker export): sorted members, numeric owners, hard
 * links kept, sockets left out. `done` runs once the stream ended or failed (to release the mount).
 */
export function tarTree(root: string, done: () => Promise<void>): Readable {
  const pack = tarStream.pack();
  const out = new PassThrough();
  const inodes = new Map<string, string>();

  async function add(rel: string, st: Stats): Promise<void> {
    const abs = path.join(root, rel);
    const base = { name: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: new Date(Math.floor(st.mtimeMs / 1000) * 1000) };
    if (st.isDirectory()) pack.entry({ ...base, name: `${rel}/`, type: 'directory' });
    else if (st.isSymbolicLink()) pack.entry({ ...base, type: 'symlink', linkname: await fs.readlink(abs) });
    else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? inodes.get(key) : undefined;
      if (first !== undefined) {
        pack.entry({ ...base, type: 'link', linkname: first });
        return;
      }
      if (st.nlink > 1) inodes.set(key, rel);
      const entry = pack.entry({ ...base, type: 'file', size: st.size });
      const fh = await fs.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      await pipeline(fh.createReadStream(), entry);
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const { major, minor } = devNumbers(st.rdev);
      pack.entry({ ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor });
    } else if (st.isFIFO()) pack.entry({ ...base, type: 'fifo' });
  }

  async function walk(rel: string): Promise<void> {
    const abs = rel === '' ? root : path.join(root, rel);
    for (const name of (await fs.readdir(abs)).sort()) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = await fs.lstat(path.join(abs, name));
      await add(childRel, st);
      if (st.isDirectory()) await walk(childRel);
    }
  }

  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    void done().catch(() => undefined);
  };
  pack.pipe(out);
  out.on('close', release);
  out.on('end', release);
  void walk('')
    .then(() => pack.finalize())
    .catch((err: unknown) => {
      out.destroy(err as Error);
      pack.destroy();
      release();
    });
  return out;
}
