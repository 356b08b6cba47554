import { createHash } from 'node:crypto';
import { loadAddon, type NativeAddon } from './addon.js';

/**
 * A SHA-256 of a stream whose hashing runs on a libuv pool thread (the addon's sha256Update), in
 * parallel with the JS thread's work on the same bytes. Hashing a 200 MB layer took ~170 ms of
 * the JS thread in import, load and save (bench/storage). The chunks handed in are referenced,
 * not copied: they must not be written afterwards (stream chunks and fresh reads are not).
 */
export interface StreamHash {
  /**
   * Queues `chunk`. Answers undefined, or a promise when more than `limit` bytes are queued
   * (resolved once the hashing has caught up): await it to keep memory bounded.
   */
  update(chunk: Buffer): Promise<void> | undefined;
  /** The hex digest once every queued chunk is hashed; the hash is spent after it. */
  digest(): Promise<string>;
}

/** Bytes queued before update() asks its caller to wait. */
const QUEUE_LIMIT = 32 << 20;

class PoolHash implements StreamHash {
  private readonly ctx: object;
  private queue: Buffer[] = [];
  /** Bytes queued or being hashed. */
  private queued = 0;
  private running = 0;
  private busy = false;
  private failed: Error | null = null;
  private waiters: (() => void)[] = [];

  constructor(private readonly addon: NativeAddon) {
    this.ctx = addon.sha256Create();
  }

  update(chunk: Buffer): Promise<void> | undefined {
    if (chunk.length === 0) return undefined;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (!this.busy) this.run();
    if (this.queued <= QUEUE_LIMIT) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private run(): void {
    const batch = this.queue;
    this.queue = [];
    this.busy = true;
    this.running = batch.reduce((n, b) => n + b.length, 0);
    this.addon.sha256Update(this.ctx, batch, (err) => {
      this.queued -= this.running;
      this.running = 0;
      this.busy = false;
      if (err !== null) this.failed ??= err;
      if (this.failed === null && this.queue.length > 0) this.run();
      if (this.queued <= QUEUE_LIMIT || this.failed !== null || !this.busy) {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      }
    });
  }

  async digest(): Promise<string> {
    while (this.busy && this.failed === null) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.failed !== null) throw this.failed;
    return this.addon.sha256Digest(this.ctx);
  }
}

/** Where the addon is not built: the same interface over node:crypto, on the JS thread. */
class InlineHash implements StreamHash {
  private readonly h = createHash('sha256');
  update(chunk: Buffer): undefined {
    this.h.update(chunk);
    return undefined;
  }
  async digest(): Promise<string> {
    return this.h.digest('hex');
  }
}

let addon: NativeAddon | null | undefined;

/** A SHA-256 stream hash, hashed off the JS thread when the addon is built. */
export function createStreamHash(): StreamHash {
  if (addon === undefined) {
    try {
      addon = loadAddon();
    } catch {
      addon = null;
    }
  }
  return addon === null ? new InlineHash() : new PoolHash(addon);
}
