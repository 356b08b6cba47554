/**
 * Docker's multiplexed stream framing (engine-api.md §5): an 8-byte header (stream type, three
 * zero bytes, big-endian uint32 length) before each payload. Used when a container or exec has
 * no TTY; TTY streams are raw bytes.
 */
export const StreamType = { Stdin: 0, Stdout: 1, Stderr: 2, SystemError: 3 } as const;
export type StreamType = (typeof StreamType)[keyof typeof StreamType];

export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';
export const RAW_STREAM = 'application/vnd.docker.raw-stream';

export function frameHeader(type: StreamType, length: number): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(length, 4);
  return h;
}

export function frame(type: StreamType, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([frameHeader(type, body.length), body]);
}

/** Splits a byte stream of frames back into (type, payload) pairs, across chunk boundaries. */
export class Demuxer {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (type: StreamType, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 8) {
      const len = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + len) break;
      const type = this.pending[0] as StreamType;
      const payload = this.pending.subarray(8, 8 + len);
      this.pending = this.pending.subarray(8 + len);
      this.onFrame(type, payload);
    }
  }

  /** Bytes of an incomplete frame left over at the end of the stream. */
  get leftover(): number {
    return this.pending.length;
  }
}
