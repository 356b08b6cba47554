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
 * links kept, sockets left out. `done` runs once the walk of the tree is over: every member
 * handed to the packer, the reader gone, or a failure (to release the mount).
 */
export function tarTree(root: string, done: () => Promise<void>, opts: { name?: string } = {}): Readable {
  const pack = tarStream.pack();
  const out = new PassThrough();
  const inodes = new Map<string, string>();

  // Set when the reader went away (a client that disconnected early): the walk stops.
  let stopped = false;

  /**
   * A member. Destroying the packer (the reader went away) errors every member stream not yet
   * written, whatever the walk is doing at that moment: each gets a listener, so no error goes
   * unhandled (the walk learns of the end from `stopped` or a rejected pipeline).
   */
  const entry = (header: Parameters<typeof pack.entry>[0]): ReturnType<typeof pack.entry> => {
    const sink = pack.entry(header);
    sink.on('error', () => undefined);
    return sink;
  };

  async function add(abs: string, rel: string, st: Stats): Promise<void> {
    const base = { name: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: new Date(Math.floor(st.mtimeMs / 1000) * 1000) };
    if (st.isDirectory()) entry({ ...base, name: `${rel}/`, type: 'directory' });
    else if (st.isSymbolicLink()) {
      const linkname = await fs.readlink(abs);
      if (!stopped) entry({ ...base, type: 'symlink', linkname });
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? inodes.get(key) : undefined;
      if (first !== undefined) {
        entry({ ...base, type: 'link', linkname: first });
        return;
      }
      if (st.nlink > 1) inodes.set(key, rel);
      const fh = await fs.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      try {
        if (stopped) return;
        await pipeline(fh.createReadStream({ autoClose: false }), entry({ ...base, type: 'file', size: st.size }));
      } finally {
        await fh.close();
      }
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const { major, minor } = devNumbers(st.rdev);
      entry({ ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor });
    } else if (st.isFIFO()) entry({ ...base, type: 'fifo' });
  }

  async function walk(abs: string, rel: string): Promise<void> {
    for (const name of (await fs.readdir(abs)).sort()) {
      if (stopped) return;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const childAbs = path.join(abs, name);
      const st = await fs.lstat(childAbs);
      await add(childAbs, childRel, st);
      if (st.isDirectory()) await walk(childAbs, childRel);
    }
  }

  /** The tree's members; with `opts.name`, `root` itself is the first member, named so (docker cp). */
  async function all(): Promise<void> {
    if (opts.name === undefined) return walk(root, '');
    const st = await fs.lstat(root);
    await add(root, opts.name, st);
    if (st.isDirectory()) await walk(root, opts.name);
  }

  // A reader that stops early (`docker export c | head -c 100`) closes `out`; the packer's pipe
  // then destroys the packer with PREMATURE_CLOSE, and an 'error' nobody listens to would take
  // the daemon down. The packer's errors are ours to swallow: `out` is what the caller watches.
  pack.on('error', () => undefined);
  pack.pipe(out);
  out.on('close', () => {
    stopped = true;
    if (!pack.destroyed) pack.destroy();
  });
  // The mount is released once the walk is over (no file of it is open any more): after the
  // last member was handed to the packer, when the reader went away, or on a failure.
  void all()
    .then(() => {
      if (!stopped) pack.finalize();
    })
    .catch((err: unknown) => {
      if (!stopped) out.destroy(err as Error);
      pack.destroy();
    })
    .finally(() => void done().catch(() => undefined));
  return out;
}
