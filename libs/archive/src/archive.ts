import * as fsSync from 'node:fs';
import { constants as fsc, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { BerthError } from '@berth/errors';
import { encodeHeader, END_OF_ARCHIVE, paddingFor, readTar, TarFormatError, type TarHeader } from './tar.js';

/** The kernel calls extraction needs beyond node:fs (mknod, xattrs); @berth/native's Syscalls fits. */
export interface ArchiveFs {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): void;
  lgetxattr(path: string, name: string): Buffer | null;
}

/**
 * What extraction does with `.wh.` whiteout entries:
 * - `apply`: delete what they hide from the directory (a layer that is a full copy, vfs);
 * - `overlay`: record them as overlayfs does in an upper dir: `.wh.x` becomes a 0/0 character
 *   device `x`, `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its directory;
 * - `keep`: extract them as the plain files they are (aufs).
 */
export type WhiteoutFormat = 'apply' | 'overlay' | 'keep';

export interface ApplyTarOptions {
  fs: ArchiveFs;
  /** Honour `.wh.` whiteouts (delete lower content); default true. Same as `whiteoutFormat` `apply` / `keep`. */
  whiteouts?: boolean;
  /** Overrides `whiteouts`; default `apply`. */
  whiteoutFormat?: WhiteoutFormat;
  /**
   * Character and block device members: `create` them (mknod), `skip` them (Docker's rule in a
   * user namespace, where mknod cannot work), or `refuse` the layer. Default: `create` as root,
   * `skip` otherwise (rootless). Fifos are always made; overlay whiteouts are not devices here.
   */
  devices?: 'create' | 'skip' | 'refuse';
}

const WH_PREFIX = '.wh.';

/**
 * The name a `.wh.<name>` member hides, which must be one entry of its own directory:
 * `.wh..` and `.wh...` would name the directory itself or its parent, and deleting that
 * reaches outside what the whiteout may touch (a layer's root, or every layer beside it).
 */
function whiteoutVictim(member: string, base: string): string {
  const victim = base.slice(WH_PREFIX.length);
  if (victim === '' || victim === '.' || victim === '..' || victim.includes('/'))
    throw archiveError(member, 'invalid whiteout: it names no entry of its directory');
  return victim;
}
const WH_META_PREFIX = '.wh..wh.';
const WH_OPAQUE = '.wh..wh..opq';
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
/** overlayfs marks an upper directory that hides its lower ones with this xattr = "y". */
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

function archiveError(entry: string, why: string): BerthError {
  return new BerthError('BERTH_ARCHIVE_INVALID', `layer archive: entry ${JSON.stringify(entry)}: ${why}`, { details: { entry } });
}

/**
 * Splits a member name into layer-relative components. A leading `/` or `./` is dropped (the
 * entry lands inside the layer, as Docker does); any `..` component is refused outright.
 */
export function entryComponents(name: string): string[] {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw archiveError(name, 'path contains ".."');
  return parts;
}

function lstatOrNull(p: string): Stats | null {
  return fsSync.lstatSync(p, { throwIfNoEntry: false }) ?? null;
}

/**
 * Extracts a layer tar into `dir`, confined to it: no `..`, no write through a symlink (every
 * parent component must be a real directory, checked with lstat as we go; we are the only
 * writer of the layer while it is applied), hard links only to members already inside the
 * layer, absolute symlink targets kept verbatim. Answers the bytes of file content written.
 *
 * The filesystem calls are synchronous: each takes microseconds, and a thread-pool round trip
 * per call (7 or so per member) made small files cost several times their syscalls.
 */
export async function applyTar(dir: string, tar: Readable | AsyncIterable<Buffer>, opts: ApplyTarOptions): Promise<number> {
  const format: WhiteoutFormat = opts.whiteoutFormat ?? (opts.whiteouts === false ? 'keep' : 'apply');
  const root = path.resolve(dir);
  // Components are clean (entryComponents: no '', '.', '..' or '/'; readTar: no NUL), so a
  // concatenation is the join: path.join's normalising was a tenth of an import (bench/storage).
  const under = (rel: string): string => (rel === '' ? root : `${root}/${rel}`);
  const devices = opts.devices ?? (process.getuid?.() === 0 ? 'create' : 'skip');
  /** Directories (layer-relative) known to be real directories: skips repeated lstat walks. */
  const knownDirs = new Set<string>(['']);
  /** Paths written by this layer: whiteouts and opaque markers never hide them. */
  const written = new Set<string>();
  /**
   * Directories this apply made (empty when made, and only we write into the layer while it is
   * applied): an entry below one whose path was not written before needs no lstat to know it
   * is new. In a layer applied from scratch that is every entry (bench/storage).
   */
  const madeDirs = new Set<string>();
  /** Overlay whiteout devices made for names of this layer's directories. */
  const whiteouts = new Set<string>();
  const dirTimes: { p: string; mtime: number }[] = [];
  let size = 0;

  /** Ensures every component of `parts` below the root is a real directory; creates missing ones. */
  const ensureParents = (entry: string, parts: string[], create: boolean): string => {
    // Known directories are added parent first and forgotten with their subtrees: a known
    // directory's ancestors are known too.
    const full = parts.join('/');
    if (knownDirs.has(full)) return under(full);
    let rel = '';
    for (const part of parts) {
      rel = rel === '' ? part : `${rel}/${part}`;
      if (knownDirs.has(rel)) continue;
      const abs = under(rel);
      const st = lstatOrNull(abs);
      if (st === null) {
        if (!create) throw archiveError(entry, `${rel} does not exist in the layer`);
        fsSync.mkdirSync(abs, { mode: 0o755 });
        fsSync.chmodSync(abs, 0o755);
        madeDirs.add(rel);
      } else if (st.isSymbolicLink()) {
        throw archiveError(entry, `refusing to write through symlink ${rel}`);
      } else if (!st.isDirectory()) {
        throw archiveError(entry, `${rel} is not a directory`);
      }
      knownDirs.add(rel);
    }
    return under(rel);
  };
  const forget = (rel: string): void => {
    // A replaced or deleted directory takes everything below it out of the cache.
    for (const d of knownDirs) if (d === rel || d.startsWith(`${rel}/`)) knownDirs.delete(d);
    for (const d of madeDirs) if (d === rel || d.startsWith(`${rel}/`)) madeDirs.delete(d);
  };

  const removeLower = (rel: string, abs: string): void => {
    forget(rel);
    fsSync.rmSync(abs, { recursive: true, force: true });
  };

  try {
    for await (const { header: h, body } of readTar(tar)) {
      const parts = entryComponents(h.name);
      const base = parts.length === 0 ? '' : parts[parts.length - 1]!;
      const parentParts = parts.slice(0, -1);
      const rel = parts.join('/');

      if (format === 'overlay' && base.startsWith(WH_PREFIX)) {
        // The lower layers are not here: record the whiteout for overlayfs to apply.
        const parentAbs = ensureParents(h.name, parentParts, true);
        const parentRel = parentParts.join('/');
        if (base === WH_OPAQUE) {
          opts.fs.lsetxattr(parentAbs, OVERLAY_OPAQUE_XATTR, Buffer.from('y'), 0);
        } else if (!base.startsWith(WH_META_PREFIX)) {
          const victim = whiteoutVictim(h.name, base);
          const victimRel = parentRel === '' ? victim : `${parentRel}/${victim}`;
          if (!written.has(victimRel)) {
            const victimAbs = path.join(parentAbs, victim);
            if ((lstatOrNull(victimAbs)) !== null) removeLower(victimRel, victimAbs);
            opts.fs.mknod(victimAbs, S_IFCHR, 0, 0);
            whiteouts.add(victimRel);
            fsSync.lchownSync(victimAbs, h.uid, h.gid);
          }
        }
        continue;
      }
      if (format === 'apply' && base.startsWith(WH_PREFIX)) {
        const parentAbs = under(parentParts.join('/'));
        // Nothing to hide below a directory the lower layers do not have.
        if ((lstatOrNull(parentAbs)) === null) continue;
        ensureParents(h.name, parentParts, false);
        const parentRel = parentParts.join('/');
        if (base === WH_OPAQUE) {
          // Opaque directory: hide everything of the lower layers in it, keep this layer's own.
          for (const child of fsSync.readdirSync(parentAbs)) {
            const childRel = parentRel === '' ? child : `${parentRel}/${child}`;
            if (!written.has(childRel)) removeLower(childRel, path.join(parentAbs, child));
          }
        } else if (!base.startsWith(WH_META_PREFIX)) {
          const victim = whiteoutVictim(h.name, base);
          const victimRel = parentRel === '' ? victim : `${parentRel}/${victim}`;
          if (!written.has(victimRel)) removeLower(victimRel, path.join(parentAbs, victim));
        }
        continue;
      }

      if (h.type === 'other') continue; // sockets, GNU volume labels...: nothing to make
      if ((h.type === 'char' || h.type === 'block') && devices !== 'create') {
        if (devices === 'refuse') throw archiveError(h.name, `${h.type} device nodes are not allowed here`);
        continue;
      }
      if (parts.length > 0) ensureParents(h.name, parentParts, true);
      const abs = under(rel);
      const isNew = !written.has(rel) && !whiteouts.has(rel) && !knownDirs.has(rel) && madeDirs.has(parentParts.join('/'));
      written.add(rel);

      if (parts.length === 0) {
        // The layer root itself ("./"): metadata only.
        if (h.type !== 'dir') throw archiveError(h.name, 'the layer root must be a directory');
      } else {
        const existing = isNew ? null : lstatOrNull(abs);
        if (existing !== null && !(existing.isDirectory() && h.type === 'dir')) removeLower(rel, abs);
        switch (h.type) {
          case 'dir':
            if (existing === null || !existing.isDirectory()) {
              fsSync.mkdirSync(abs, { mode: 0o700 });
              madeDirs.add(rel);
            }
            knownDirs.add(rel);
            break;
          case 'file': {
            // O_EXCL: never follows anything left at the path.
            const fd = fsSync.openSync(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
            try {
              for await (const chunk of body) {
                let off = 0;
                while (off < chunk.length) off += fsSync.writeSync(fd, chunk, off, chunk.length - off);
              }
            } finally {
              fsSync.closeSync(fd);
            }
            size += h.size;
            break;
          }
          case 'symlink':
            fsSync.symlinkSync(h.linkname, abs);
            break;
          case 'link': {
            const targetParts = entryComponents(h.linkname);
            if (targetParts.length === 0) throw archiveError(h.name, 'hard link to the layer root');
            const target = path.join(ensureParents(h.name, targetParts.slice(0, -1), false), targetParts[targetParts.length - 1]!);
            const tst = lstatOrNull(target);
            if (tst === null) throw archiveError(h.name, `hard link target ${h.linkname} is not in the layer`);
            if (tst.isDirectory()) throw archiveError(h.name, `hard link target ${h.linkname} is a directory`);
            fsSync.linkSync(target, abs);
            continue; // a hard link shares its target's metadata
          }
          case 'char':
          case 'block':
          case 'fifo': {
            const kind = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
            opts.fs.mknod(abs, kind | (h.mode & 0o7777), h.devmajor, h.devminor);
            break;
          }
        }
      }
      applyMetadata(abs, h, opts.fs);
      if (h.type === 'dir') dirTimes.push({ p: abs, mtime: h.mtime });
    }
  } catch (err) {
    if (err instanceof TarFormatError) throw new BerthError('BERTH_ARCHIVE_INVALID', `layer archive: ${err.message}`, { cause: err });
    // A name no filesystem takes (a component over 255 bytes, a path over PATH_MAX) is the archive's fault.
    if ((err as NodeJS.ErrnoException).code === 'ENAMETOOLONG')
      throw new BerthError('BERTH_ARCHIVE_INVALID', `layer archive: name too long: ${(err as Error).message.slice(0, 300)}`, { cause: err });
    throw err;
  }
  // Directory times last: creating their children changed them.
  for (const { p, mtime } of dirTimes.reverse()) fsSync.utimesSync(p, mtime, mtime);
  return size;
}

function applyMetadata(abs: string, h: TarHeader, afs: ArchiveFs): void {
  fsSync.lchownSync(abs, h.uid, h.gid);
  // chmod after chown: chown clears set-id bits.
  if (h.type !== 'symlink') fsSync.chmodSync(abs, h.mode & 0o7777);
  for (const [name, value] of h.xattrs) {
    try {
      afs.lsetxattr(abs, name, value, 0);
    } catch (err) {
      // Docker ignores xattrs the filesystem cannot hold (ENOTSUP/EPERM on trusted.* in a userns).
      const code = (err as { code?: string }).code;
      if (code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EPERM') throw err;
    }
  }
  if (h.type !== 'dir') fsSync.lutimesSync(abs, h.mtime, h.mtime);
}

/** Major and minor of a Linux dev_t (glibc's encoding). */
function devNumbers(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return { major, minor };
}

export interface PackOptions {
  /** Layer-relative paths to include (with their subtrees); default everything. */
  include?: readonly string[];
  /** Layer-relative paths to emit as `.wh.` whiteouts. */
  whiteouts?: readonly string[];
  /**
   * `dir` is an overlayfs upper dir: emit its 0/0 character devices as `.wh.` whiteouts and a
   * `.wh..wh..opq` after each directory marked `trusted.overlay.opaque=y`. Default false.
   */
  overlayWhiteouts?: boolean;
}

/**
 * A tar of `dir`: sorted members without a `./` prefix, numeric owners, hard links kept,
 * `security.capability` carried as Docker's archiver does.
 */
export function packDir(dir: string, afs: ArchiveFs, opts: PackOptions = {}): Readable {
  return Readable.from(packEntries(path.resolve(dir), afs, opts), { objectMode: false });
}

async function* packEntries(root: string, afs: ArchiveFs, opts: PackOptions): AsyncGenerator<Buffer> {
  const inodes = new Map<string, string>();
  const include = opts.include === undefined ? null : new Set(opts.include);
  const wanted = (rel: string): boolean => {
    if (include === null) return true;
    for (let p = rel; ; ) {
      if (include.has(p)) return true;
      const i = p.lastIndexOf('/');
      if (i === -1) return false;
      p = p.slice(0, i);
    }
  };
  const whiteoutsByDir = new Map<string, string[]>();
  for (const w of opts.whiteouts ?? []) {
    const i = w.lastIndexOf('/');
    const d = i === -1 ? '' : w.slice(0, i);
    whiteoutsByDir.set(d, [...(whiteoutsByDir.get(d) ?? []), w.slice(i + 1)]);
  }

  async function* walk(rel: string): AsyncGenerator<Buffer> {
    const abs = rel === '' ? root : path.join(root, rel);
    const names = (await fs.readdir(abs)).sort();
    const wh = whiteoutsByDir.get(rel) ?? [];
    const all = [...names.map((n) => ({ n, wh: false })), ...wh.map((n) => ({ n: WH_PREFIX + n, wh: true }))].sort((a, b) =>
      a.n < b.n ? -1 : a.n > b.n ? 1 : 0,
    );
    for (const { n, wh: isWh } of all) {
      const childRel = rel === '' ? n : `${rel}/${n}`;
      if (isWh) {
        yield encodeHeader({ ...emptyHeader(childRel), type: 'file', mode: 0o600 });
        continue;
      }
      const st = await fs.lstat(path.join(abs, n));
      const inside = wanted(childRel);
      if (inside) yield* entry(childRel, st);
      if (st.isDirectory() && (inside || include === null || [...include].some((p) => p.startsWith(`${childRel}/`)) || whiteoutsUnder(childRel)))
        yield* walk(childRel);
    }
  }
  const whiteoutsUnder = (rel: string): boolean => [...whiteoutsByDir.keys()].some((d) => d === rel || d.startsWith(`${rel}/`));

  async function* entry(rel: string, st: Stats): AsyncGenerator<Buffer> {
    const abs = path.join(root, rel);
    const h: TarHeader = {
      ...emptyHeader(rel),
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000),
    };
    if (!st.isSymbolicLink()) {
      try {
        const cap = afs.lgetxattr(abs, 'security.capability');
        if (cap !== null) h.xattrs.set('security.capability', cap);
      } catch {
        // no xattr support here: nothing to carry
      }
    }
    if (opts.overlayWhiteouts && st.isCharacterDevice() && st.rdev === 0) {
      const i = rel.lastIndexOf('/');
      const name = i === -1 ? WH_PREFIX + rel : `${rel.slice(0, i + 1)}${WH_PREFIX}${rel.slice(i + 1)}`;
      yield encodeHeader({ ...h, name, type: 'file', mode: 0o600, xattrs: new Map() });
    } else if (st.isDirectory()) {
      yield encodeHeader({ ...h, name: `${rel}/`, type: 'dir' });
      if (opts.overlayWhiteouts) {
        let opaque: Buffer | null = null;
        try {
          opaque = afs.lgetxattr(abs, OVERLAY_OPAQUE_XATTR);
        } catch {
          // no trusted.* xattrs here: not an overlay upper dir
        }
        if (opaque !== null && opaque.toString() === 'y')
          yield encodeHeader({ ...emptyHeader(`${rel}/${WH_OPAQUE}`), mode: st.mode & 0o777, uid: st.uid, gid: st.gid, mtime: h.mtime });
      }
    } else if (st.isSymbolicLink()) {
      yield encodeHeader({ ...h, type: 'symlink', linkname: await fs.readlink(abs) });
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? inodes.get(key) : undefined;
      if (first !== undefined) {
        yield encodeHeader({ ...h, type: 'link', linkname: first });
        return;
      }
      if (st.nlink > 1) inodes.set(key, rel);
      yield encodeHeader({ ...h, type: 'file', size: st.size });
      const fh = await fs.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      let sent = 0;
      try {
        const buf = Buffer.allocUnsafe(1 << 20);
        while (sent < st.size) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, st.size - sent), sent);
          if (bytesRead === 0) break;
          yield Buffer.from(buf.subarray(0, bytesRead));
          sent += bytesRead;
        }
      } finally {
        await fh.close();
      }
      // A file that shrank while being read: keep the archive well-formed.
      if (sent < st.size) yield Buffer.alloc(st.size - sent);
      yield paddingFor(st.size);
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const { major, minor } = devNumbers(st.rdev);
      yield encodeHeader({ ...h, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: major, devminor: minor });
    } else if (st.isFIFO()) {
      yield encodeHeader({ ...h, type: 'fifo' });
    }
    // sockets are not archived (as Docker's archiver)
  }

  yield* walk('');
  yield END_OF_ARCHIVE;
}

function emptyHeader(name: string): TarHeader {
  return { name, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() };
}
