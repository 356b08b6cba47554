/** Byte-stream helpers for the image archive paths. */

/** Pieces smaller than this are copied into one buffer before they go on (tar headers, small files). */
export const COALESCE = 1 << 20;

/**
 * Joins small pieces into buffers of about COALESCE bytes. A save is mostly headers, small files
 * and padding: passed one by one, each 512-byte piece cost a trip through every stream between
 * the layer files and the socket, and one HTTP chunk and one write(2) at the client (bench/storage).
 */
export async function* coalesce(src: AsyncIterable<Buffer>, size = COALESCE): AsyncGenerator<Buffer> {
  let acc: Buffer | null = null;
  let used = 0;
  for await (const b of src) {
    if (b.length >= size >> 2) {
      if (used > 0) {
        yield acc!.subarray(0, used);
        acc = null;
        used = 0;
      }
      yield b;
      continue;
    }
    if (acc !== null && used + b.length > acc.length) {
      yield acc.subarray(0, used);
      acc = null;
      used = 0;
    }
    acc ??= Buffer.allocUnsafe(size);
    b.copy(acc, used);
    used += b.length;
  }
  if (used > 0) yield acc!.subarray(0, used);
}


/** A stream chunk as a Buffer, without the copy Buffer.from makes of one (every byte of a 200 MB import was copied). */
export function asBuffer(c: Buffer | Uint8Array | string): Buffer {
  if (Buffer.isBuffer(c)) return c;
  return typeof c === 'string' ? Buffer.from(c) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}

/**
 * Output piece size of the gunzip streams of import, load and pull. zlib's default of 16 KiB
 * made 13 000 pieces of a 200 MB layer, each a trip through every generator and stream of the
 * apply path; joining them afterwards copied every byte and doubled the garbage (bench/storage).
 */
export const GUNZIP_OPTIONS = { chunkSize: 256 << 10 };
