/**
 * The local side of `berth cp`: a tar of a local path with its top member renamed, and the
 * extraction of a container's tar into a local directory with its top member renamed. Member
 * names never leave the destination (`..` refused) and nothing is written through a symlink
 * the archive made or found below the destination.
 */
import { constants as fsc, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { encodeHeader, entryComponents, readTar, type TarHeader } from '@berth/archive';
import { CliError } from '../client.js';

/** Renames the first component `from` to `to` ('' drops it: the contents only). */
export function rebase(name: string, from: string, to: string): string | null {
  const parts = entryComponents(name);
  if (from === '.' || from === '') {
    return to === '' ? parts.join('/') : [to, ...parts].join('/');
  }
  if (parts[0] !== from) return parts.join('/');
  const rest = parts.slice(1);
  if (to === '') return rest.length === 0 ? null : rest.join('/');
  return [to, ...rest].join('/');
}

export interface PackLocalOptions {
  /** Name of the top member in the tar ('' = the directory's contents only). */
  name: string;
  /** Keep local owners (`-a`); else 0:0 as docker does. */
  keepOwners: boolean;
}

/** The tar header of a local file: its mode and mtime, owner 0:0 unless `keepOwners`. */
export function localHeader(name: string, st: Stats, type: TarHeader['type'], keepOwners: boolean, extra: Partial<TarHeader> = {}): Buffer {
  return encodeHeader({
    name,
    type,
    mode: st.mode & 0o7777,
    uid: keepOwners ? st.uid : 0,
    gid: keepOwners ? st.gid : 0,
    size: 0,
    mtime: Math.floor(st.mtimeMs / 1000),
    linkname: '',
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
    ...extra,
  });
}

/** A tar of the local path `src` (a file, symlink or directory tree). */
export async function* packLocal(src: string, opts: PackLocalOptions): AsyncGenerator<Buffer> {
  const top = await fs.lstat(src);
  const header = (name: string, st: Stats, type: TarHeader['type'], extra: Partial<TarHeader> = {}): Buffer => localHeader(name, st, type, opts.keepOwners, extra);
  async function* one(abs: string, name: string, st: Stats): AsyncGenerator<Buffer> {
    if (st.isDirectory()) {
      if (name !== '') yield header(`${name}/`, st, 'dir');
      for (const child of (await fs.readdir(abs)).sort()) {
        const cabs = path.join(abs, child);
        yield* one(cabs, name === '' ? child : `${name}/${child}`, await fs.lstat(cabs));
      }
    } else if (st.isSymbolicLink()) {
      yield header(name, st, 'symlink', { linkname: await fs.readlink(abs) });
    } else if (st.isFile()) {
      yield header(name, st, 'file', { size: st.size });
      const fh = await fs.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      let n = 0;
      try {
        for await (const chunk of fh.createReadStream({ autoClose: false })) {
          const b = chunk as Buffer;
          // A file that grew meanwhile: only what the header promised.
          const take = b.subarray(0, Math.max(0, st.size - n));
          n += take.length;
          if (take.length > 0) yield take;
        }
      } finally {
        await fh.close();
      }
      if (n < st.size) yield Buffer.alloc(st.size - n);
      const pad = (512 - (st.size % 512)) % 512;
      if (pad > 0) yield Buffer.alloc(pad);
    }
    // sockets, devices, fifos: docker cp leaves them out too
  }
  yield* one(src, opts.name, top);
  yield Buffer.alloc(1024);
}

export interface ExtractLocalOptions {
  /** Rename the top member `from` to `to` ('' = put its contents directly into `dir`). */
  from: string;
  to: string;
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  return fs.lstat(p).catch(() => null);
}

/** Extracts a container's tar into the local directory `dir`; answers the bytes of file content written. */
export async function extractLocal(dir: string, tar: Readable, opts: ExtractLocalOptions): Promise<number> {
  let total = 0;
  const dirTimes: [string, number][] = [];
  for await (const { header: h, body } of readTar(tar)) {
    const name = rebase(h.name, opts.from, opts.to);
    if (name === null || name === '') continue;
    const parts = name.split('/');
    if (parts.includes('..')) throw new CliError(`invalid archive member ${JSON.stringify(h.name)}`);
    // Parents must be real directories inside `dir`.
    let cur = dir;
    for (const part of parts.slice(0, -1)) {
      cur = path.join(cur, part);
      const st = await lstatOrNull(cur);
      if (st === null) await fs.mkdir(cur, { mode: 0o755 });
      else if (!st.isDirectory()) throw new CliError(`refusing to write ${name}: ${path.relative(dir, cur)} is not a directory`);
    }
    const abs = path.join(dir, ...parts);
    const existing = await lstatOrNull(abs);
    if (existing !== null && !(existing.isDirectory() && h.type === 'dir')) {
      if (existing.isDirectory()) throw new CliError(`cannot overwrite directory ${JSON.stringify(abs)} with non-directory`);
      await fs.rm(abs, { force: true });
    }
    switch (h.type) {
      case 'dir':
        if (existing === null || !existing.isDirectory()) await fs.mkdir(abs, { mode: 0o700 });
        await fs.chmod(abs, h.mode & 0o7777);
        dirTimes.push([abs, h.mtime]);
        continue;
      case 'file': {
        const fh = await fs.open(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body) {
            await fh.write(chunk);
            total += chunk.length;
          }
          await fh.chmod(h.mode & 0o7777);
          await fh.utimes(h.mtime, h.mtime);
        } finally {
          await fh.close();
        }
        continue;
      }
      case 'symlink':
        await fs.symlink(h.linkname, abs);
        await fs.lutimes(abs, h.mtime, h.mtime).catch(() => undefined);
        continue;
      case 'link': {
        const target = rebase(h.linkname, opts.from, opts.to);
        if (target === null || target.split('/').includes('..')) throw new CliError(`invalid hard link ${JSON.stringify(h.linkname)}`);
        const t = path.join(dir, ...target.split('/'));
        const tst = await lstatOrNull(t);
        if (tst === null || !tst.isFile()) throw new CliError(`hard link target ${h.linkname} is not in the archive`);
        await fs.link(t, abs);
        continue;
      }
      default:
        // devices and fifos need privileges the user may not have: left out.
        continue;
    }
  }
  for (const [p, t] of dirTimes.reverse()) await fs.utimes(p, t, t).catch(() => undefined);
  return total;
}
