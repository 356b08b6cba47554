/**
 * Byte-exact layer tars. While a layer is applied, its tar is split into what the filesystem
 * cannot give back (headers, pax records, long names, padding, the end blocks and anything after
 * them) and the contents of regular files (only their names and sizes are recorded). Reassembly
 * interleaves the recorded bytes with the file contents read from the layer, so the tar handed
 * to `save` and `push` hashes to the layer's diffID, as Docker's tar-split does.
 *
 * Record file: gzip of JSON lines, one per segment, in the shape of tar-split's entries:
 * `{"type":2,"payload":"<base64 bytes>","position":n}` for recorded bytes and
 * `{"type":1,"name":"bin/sh","size":n,"position":n}` for the contents of a regular file.
 */
import { createHash } from 'node:crypto';
import * as fsSync from 'node:fs';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip, type Gzip } from 'node:zlib';
import { BerthError } from '@berth/errors';

export type SplitEntry = { type: 1; name: string; size: number; position: number } | { type: 2; payload: string; position: number };

const BLOCK = 512;
/** Largest read of a layer file at once. */
const READ_CHUNK = 1 << 20;
/** Characters of split lines gathered before one write to the record's gzip stream. */
const LINE_BATCH = 64 << 10;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
const roundUp = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

function octal(buf: Buffer, off: number, len: number): number {
  const field = buf.subarray(off, off + len);
  if ((field[0]! & 0x80) !== 0) {
    // GNU base-256 for sizes of 8 GiB and more.
    let v = 0;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  // Leading blanks, then octal digits up to the first other byte (NUL, space), byte by byte: a
  // string and a regex per field cost more than the rest of the header (bench/storage).
  let i = off;
  const lim = off + len;
  while (i < lim && (buf[i] === 0x20 || (buf[i]! >= 0x09 && buf[i]! <= 0x0d))) i++;
  let v = 0;
  for (; i < lim; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 7) break;
    v = v * 8 + d;
  }
  return v;
}

function cstring(buf: Buffer, off: number, len: number): string {
  const f = buf.subarray(off, off + len);
  const z = f.indexOf(0);
  return f.subarray(0, z === -1 ? f.length : z).toString('utf8');
}

function paxPath(data: Buffer): string | null {
  let off = 0;
  let found: string | null = null;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp === -1) break;
    const len = parseInt(data.subarray(off, sp).toString('latin1'), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq !== -1 && rec.subarray(0, eq).toString('utf8') === 'path') found = rec.subarray(eq + 1).toString('utf8');
    off += len;
  }
  return found;
}

/**
 * Passes a tar's bytes through unchanged while recording its split to `out` (a gzip stream the
 * caller ends). Only headers and metadata are kept in memory, one entry at a time.
 */
export class TarSplitter {
  private position = 0;
  private raw: Buffer[] = [];
  private header = Buffer.alloc(0);
  private mode: 'header' | 'meta' | 'data' | 'skip' | 'trailer' = 'header';
  private remaining = 0;
  private metaType = '';
  private meta: Buffer[] = [];
  private longName: string | null = null;
  private paxName: string | null = null;
  private pendingPad = 0;

  constructor(private readonly out: Gzip) {}

  /** Lines not yet written: one write to the gzip stream per ~64 KiB, not one per entry (bench/storage). */
  private pending = '';

  private async line(e: SplitEntry): Promise<void> {
    this.pending += `${JSON.stringify(e)}\n`;
    if (this.pending.length >= LINE_BATCH) await this.writePending();
  }

  private async writePending(): Promise<void> {
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    if (!this.out.write(text)) await new Promise<void>((res) => this.out.once('drain', res));
  }

  private async flushRaw(): Promise<void> {
    if (this.raw.length === 0) return;
    const payload = Buffer.concat(this.raw).toString('base64');
    this.raw = [];
    await this.line({ type: 2, payload, position: this.position++ });
  }

  /** Feeds the next chunk of the tar. */
  async push(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      switch (this.mode) {
        case 'trailer':
          this.raw.push(Buffer.from(chunk.subarray(off)));
          return;
        case 'header': {
          const take = Math.min(BLOCK - this.header.length, chunk.length - off);
          this.header = Buffer.concat([this.header, chunk.subarray(off, off + take)]);
          off += take;
          if (this.header.length < BLOCK) break;
          await this.onHeader(this.header);
          this.header = Buffer.alloc(0);
          break;
        }
        case 'meta':
        case 'skip': {
          const take = Math.min(this.remaining, chunk.length - off);
          const part = Buffer.from(chunk.subarray(off, off + take));
          this.raw.push(part);
          if (this.mode === 'meta') this.meta.push(part);
          off += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            if (this.mode === 'meta') this.onMeta();
            this.mode = 'header';
          }
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, chunk.length - off);
          off += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            this.mode = this.pendingPad > 0 ? 'skip' : 'header';
            this.remaining = this.pendingPad;
          }
          break;
        }
      }
    }
  }

  private async onHeader(h: Buffer): Promise<void> {
    if (h.equals(ZERO_BLOCK)) {
      this.raw.push(h);
      this.mode = 'trailer';
      return;
    }
    this.raw.push(h);
    const flag = String.fromCharCode(h[156]!);
    const size = octal(h, 124, 12);
    if (flag === 'x' || flag === 'L' || flag === 'g' || flag === 'K') {
      this.metaType = flag;
      this.meta = [];
      this.mode = 'meta';
      this.remaining = roundUp(size);
      if (this.remaining === 0) this.onMeta();
      if (this.remaining === 0) this.mode = 'header';
      return;
    }
    let name = cstring(h, 0, 100);
    if (h.subarray(257, 262).toString('latin1') === 'ustar') {
      const prefix = cstring(h, 345, 155);
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    name = this.paxName ?? this.longName ?? name;
    this.paxName = null;
    this.longName = null;
    const regular = flag === '0' || flag === '\0' || flag === '7';
    if (regular && size > 0) {
      await this.flushRaw();
      await this.line({ type: 1, name, size, position: this.position++ });
      this.mode = 'data';
      this.remaining = size;
      this.pendingPad = roundUp(size) - size;
      return;
    }
    this.remaining = roundUp(size);
    this.mode = this.remaining > 0 ? 'skip' : 'header';
  }

  private onMeta(): void {
    const data = Buffer.concat(this.meta);
    this.meta = [];
    if (this.metaType === 'x') this.paxName = paxPath(data) ?? this.paxName;
    else if (this.metaType === 'L') this.longName = cstring(data, 0, data.length);
  }

  /** After the last chunk: writes what is left. The caller ends `out`. */
  async finish(): Promise<void> {
    if (this.header.length > 0) this.raw.push(this.header);
    this.header = Buffer.alloc(0);
    await this.flushRaw();
    await this.writePending();
  }
}

/**
 * The record's lines. The file is opened first, so a missing record is a rejection here, and
 * read or gunzip errors end the line iteration with that error (never an unhandled 'error').
 */
async function recordLines(recordFile: string): Promise<AsyncIterable<string>> {
  const fh = await fs.open(recordFile, 'r');
  const gunzip = createGunzip();
  const raw = fh.createReadStream();
  raw.on('error', (err) => gunzip.destroy(err));
  raw.pipe(gunzip);
  const rl = createInterface({ input: gunzip, crlfDelay: Infinity });
  // readline does not forward its input's errors: the iterator below does.
  return (async function* () {
    const failed = new Promise<never>((_, rej) => gunzip.once('error', rej));
    failed.catch(() => undefined);
    const it = rl[Symbol.asyncIterator]();
    try {
      for (;;) {
        const r = await Promise.race([it.next(), failed]);
        if (r.done) return;
        yield r.value;
      }
    } finally {
      rl.close();
      raw.destroy();
      gunzip.destroy();
    }
  })();
}

/** Whether a relative name is in normal form: no empty, `.` or `..` component, no leading or trailing `/`. */
export function isCleanName(rel: string): boolean {
  return rel !== '' && rel[0] !== '/' && rel[rel.length - 1] !== '/' && !rel.includes('//') && !DOT_COMPONENT.test(rel);
}
const DOT_COMPONENT = /(?:^|\/)\.\.?(?:\/|$)/;

/**
 * The layer's tar again, from its split record and the layer's files under `root`. Checks the
 * result against `diffId` once the last byte is out (throws BERTH_STORAGE on a mismatch: a
 * layer changed on disk).
 */
export async function* assembleTar(recordFile: string, root: string, diffId: string): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  const lines = await recordLines(recordFile);
  const realRoot = await fs.realpath(root);
  const dirOk = new Map<string, boolean>();
  const within = async (rel: string): Promise<string> => {
    // A name already clean (the usual case) is its own normal form: path.normalize and join for
    // each of 4 000 files were ~40 ms of a 200 MB save (bench/storage).
    const plain = realRoot !== '/' && isCleanName(rel);
    const clean = plain ? rel : path.posix.normalize(`/${rel}`).slice(1);
    if (clean === '' || clean.startsWith('..')) throw new BerthError('BERTH_STORAGE', `layer ${diffId}: entry ${JSON.stringify(rel)} has no place in the layer`);
    const abs = plain ? `${realRoot}/${rel}` : path.join(realRoot, clean);
    const dir = plain ? abs.slice(0, abs.lastIndexOf('/')) : path.dirname(abs);
    let ok = dirOk.get(dir);
    if (ok === undefined) {
      // A directory reached through a symlink could lead out of the layer: never read there.
      const real = await fs.realpath(dir).catch(() => '');
      ok = real === realRoot || real.startsWith(`${realRoot}/`);
      dirOk.set(dir, ok);
    }
    if (!ok) throw new BerthError('BERTH_STORAGE', `layer ${diffId}: ${clean} is not inside the layer`);
    return abs;
  };
  for await (const text of lines) {
    if (text === '') continue;
    const e = JSON.parse(text) as SplitEntry;
    if (e.type === 2) {
      const b = Buffer.from(e.payload, 'base64');
      hash.update(b);
      yield b;
      continue;
    }
    const file = await within(e.name);
    // Synchronous reads: a layer is mostly small files, and four thread-pool round trips per
    // file (open, fstat, read, close) cost more than the reads themselves (bench/storage, save).
    const fd = fsSync.openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      const st = fsSync.fstatSync(fd);
      if (!st.isFile() || st.size !== e.size)
        throw new BerthError('BERTH_STORAGE', `layer ${diffId}: ${e.name} changed on disk (size ${st.size}, recorded ${e.size})`);
      let left = e.size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
        let got = 0;
        while (got < buf.length) {
          const n = fsSync.readSync(fd, buf, got, buf.length - got, null);
          if (n === 0) throw new BerthError('BERTH_STORAGE', `layer ${diffId}: ${e.name} is shorter than recorded`);
          got += n;
        }
        left -= got;
        hash.update(buf);
        yield buf;
      }
    } finally {
      fsSync.closeSync(fd);
    }
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== diffId) throw new BerthError('BERTH_STORAGE', `layer ${diffId}: reassembled tar hashes to ${got}; the layer changed on disk`);
}

/** The byte size of the tar a split record reassembles to (reads only the record). */
export async function splitTarSize(recordFile: string): Promise<number> {
  const lines = await recordLines(recordFile);
  let size = 0;
  for await (const text of lines) {
    if (text === '') continue;
    const e = JSON.parse(text) as SplitEntry;
    size += e.type === 1 ? e.size : Buffer.byteLength(e.payload, 'base64');
  }
  return size;
}
