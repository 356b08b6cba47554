/** DNS over TCP: each message is preceded by its length as two bytes, big endian (RFC 1035 4.2.2, RFC 7766). */
export function frame(message: Buffer): Buffer {
  if (message.length > 0xffff) throw new RangeError(`DNS message of ${message.length} bytes is longer than TCP framing allows`);
  const out = Buffer.allocUnsafe(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}

/**
 * Splits a TCP byte stream into DNS messages. Holds at most one partial message (under 64 KiB)
 * plus the chunk being pushed, so a connection cannot make it grow without bound.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.pending.length;
  }

  /** Complete messages in `chunk` (with what was left over before). Zero-length frames are skipped. */
  push(chunk: Buffer): Buffer[] {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      if (len > 0) out.push(Buffer.from(buf.subarray(2, 2 + len)));
      buf = buf.subarray(2 + len);
    }
    // Copy the remainder so the (possibly large) chunk it came from can be freed.
    this.pending = Buffer.from(buf);
    return out;
  }
}
