/**
 * Docker's detach keys: a comma-separated list of `ctrl-<x>` (x in a-z, @, [, \, ], ^, _) or
 * single characters; default ctrl-p,ctrl-q.
 */
import { invalid } from './config.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

export function parseDetachKeys(spec: string | undefined | null): Buffer {
  const text = spec === undefined || spec === null || spec === '' ? DEFAULT_DETACH_KEYS : spec;
  const out: number[] = [];
  for (const key of text.split(',')) {
    const k = key.trim();
    if (k.length > 1 && k.toLowerCase().startsWith('ctrl-')) {
      const c = k.slice(5);
      if (c.length !== 1) throw invalid('detachKeys', `Invalid escape keys (${text}) provided`);
      const ch = c.toLowerCase();
      if (ch >= 'a' && ch <= 'z') out.push(ch.charCodeAt(0) - 'a'.charCodeAt(0) + 1);
      else if ('@[\\]^_'.includes(c)) out.push(c.charCodeAt(0) - '@'.charCodeAt(0));
      else throw invalid('detachKeys', `Invalid escape keys (${text}) provided`);
    } else if (k.length === 1) out.push(k.charCodeAt(0));
    else throw invalid('detachKeys', `Invalid escape keys (${text}) provided`);
  }
  return Buffer.from(out);
}

/**
 * Scans client input for the key sequence across chunk boundaries. `push` answers the bytes to
 * forward and whether the sequence completed; bytes of a partial match are held back until
 * the match fails, then forwarded.
 */
export class DetachScanner {
  private held = 0;

  constructor(private readonly keys: Buffer) {}

  push(chunk: Buffer): { forward: Buffer; detached: boolean } {
    if (this.keys.length === 0) return { forward: chunk, detached: false };
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.keys[this.held]) {
        this.held++;
        if (this.held === this.keys.length) return { forward: Buffer.from(out), detached: true };
        continue;
      }
      // Mismatch: release what was held, then retry this byte from the start of the sequence.
      for (let i = 0; i < this.held; i++) out.push(this.keys[i]!);
      this.held = 0;
      if (byte === this.keys[0]) {
        this.held = 1;
        if (this.keys.length === 1) return { forward: Buffer.from(out), detached: true };
      } else out.push(byte);
    }
    return { forward: Buffer.from(out), detached: false };
  }
}
