/** DNS over TCP: each message is preceded by its length as two bytes, big endian (RFC 1035 4.2.2, RFC 7766). */
export function frame(message: Buffer): Buffer {
  if (message.length > 0xffff) throw new RangeError(`DNS message of ${message.length} bytes is longer than TCP framing allows`);
  const out = Buffer.allocUnsafe(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}

/**
 * Splits a TCP byte stream into DNS messages. Once a message's length is read, one buffer of
 * that size (under 64 KiB) receives its bytes as they come: memory per connection is bounded
 * and each byte is copied once, however the client slices the stream.
 */
export class FrameReader {
  private readonly head = Buffer.alloc(2);
  private headFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;

  /** Bytes received of the incomplete message (length prefix included). */
  get buffered(): number {
    return this.headFill + (this.body === undefined ? 0 : 2 + this.bodyFill);
  }

  /** Complete messages in `chunk` (with what was left over before). Zero-length frames are skipped. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let off = 0;
    while (off < chunk.length) {
      if (this.body === undefined) {
        const n = Math.min(2 - this.headFill, chunk.length - off);
        chunk.copy(this.head, this.headFill, off, off + n);
        this.headFill += n;
        off += n;
        if (this.headFill < 2) break;
        this.headFill = 0;
        const len = this.head.readUInt16BE(0);
        if (len === 0) continue;
        if (chunk.length - off >= len) {
          out.push(Buffer.from(chunk.subarray(off, off + len)));
          off += len;
          continue;
        }
        this.body = Buffer.allocUnsafe(len);
        this.bodyFill = 0;
      }
      const n = Math.min(this.body.length - this.bodyFill, chunk.length - off);
      chunk.copy(this.body, this.bodyFill, off, off + n);
      this.bodyFill += n;
      off += n;
      if (this.bodyFill === this.body.length) {
        out.push(this.body);
        this.body = undefined;
      }
    }
    return out;
  }
}
