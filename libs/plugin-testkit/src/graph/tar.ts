import { Readable } from 'node:stream';
import { encodeHeader, type EntryType, type TarHeader } from '@berth/archive';

/** One member of a layer tar the suite writes (only `name` is required). */
export interface TarMember {
  name: string;
  type?: EntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch; default 1_600_000_000. */
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer>;
  /** File content: bytes, or a size and a chunk producer (streamed: large files never sit in memory). */
  content?: Buffer | string | { size: number; chunks: () => Iterable<Buffer> | AsyncIterable<Buffer> };
}

export const DEFAULT_MTIME = 1_600_000_000;

const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);

async function* members(list: readonly TarMember[]): AsyncGenerator<Buffer> {
  for (const m of list) {
    const type = m.type ?? (m.name.endsWith('/') ? 'dir' : 'file');
    const c = m.content;
    const size = type !== 'file' || c === undefined ? 0 : typeof c === 'string' ? Buffer.byteLength(c) : Buffer.isBuffer(c) ? c.length : c.size;
    const h: TarHeader = {
      name: m.name,
      type,
      mode: m.mode ?? (type === 'dir' ? 0o755 : 0o644),
      // Default owner: the caller (root in the privileged runs), so an unprivileged apply can chown.
      uid: m.uid ?? process.getuid?.() ?? 0,
      gid: m.gid ?? process.getgid?.() ?? 0,
      size,
      mtime: m.mtime ?? DEFAULT_MTIME,
      linkname: m.linkname ?? '',
      devmajor: m.devmajor ?? 0,
      devminor: m.devminor ?? 0,
      xattrs: new Map(Object.entries(m.xattrs ?? {})),
    };
    yield encodeHeader(h);
    if (size === 0) continue;
    if (typeof c === 'string') yield Buffer.from(c);
    else if (Buffer.isBuffer(c)) yield c;
    else if (c !== undefined) {
      let sent = 0;
      for await (const chunk of c.chunks()) {
        sent += chunk.length;
        yield chunk;
      }
      if (sent !== size) throw new Error(`tar member ${m.name}: produced ${sent} bytes, declared ${size}`);
    }
    yield pad(size);
  }
  yield Buffer.alloc(1024);
}

/** A layer tar of `list`, in order, streamed (written with @berth/archive's header encoder). */
export function layerTar(list: readonly TarMember[]): Readable {
  return Readable.from(members(list), { objectMode: false });
}

/** Reads a whole stream (for diffs of small layers). */
export async function drain(stream: NodeJS.ReadableStream | AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}
