/**
 * JSON answers with parts already serialised: a view object carries a mark (a string) where a
 * large part goes, JSON.stringify writes the small rest, and the marks are replaced by the
 * cached bytes of their parts. A container with a 10,000-port range has three 10,000-key maps
 * in inspect (1.1 MB) and a 10,000-entry Ports array in ps; serialising those each time cost
 * berthd 10-15 ms per request (bench/network).
 */
import { randomBytes } from 'node:crypto';

/**
 * A mark is a string no client can place in a record: NUL, a nonce drawn at start, the part's
 * index, NUL. JSON.stringify escapes NUL, so the mark appears in the text as `"\u0000berth:...`.
 */
const NONCE = randomBytes(12).toString('hex');
const PREFIX = `\u0000berth:${NONCE}:`;
const QUOTED = JSON.stringify(PREFIX).slice(0, -1);
const QUOTED_END = `${JSON.stringify('\u0000').slice(1, -1)}"`;

export class JsonSplice {
  private readonly parts: Buffer[] = [];

  /** The string to put where `json` (one JSON value, already serialised) goes. */
  mark(json: Buffer): string {
    this.parts.push(json);
    return `${PREFIX}${this.parts.length - 1}\u0000`;
  }

  /** `value` as JSON with a trailing newline (as Docker writes it), every mark replaced. */
  encode(value: unknown): Buffer {
    const text = JSON.stringify(value);
    if (this.parts.length === 0) return Buffer.from(`${text}\n`);
    const out: Buffer[] = [];
    let from = 0;
    for (let at = text.indexOf(QUOTED); at >= 0; at = text.indexOf(QUOTED, from)) {
      const end = text.indexOf(QUOTED_END, at + QUOTED.length);
      const part = this.parts[Number(text.slice(at + QUOTED.length, end))];
      if (end < 0 || part === undefined) throw new Error('json splice: a mark without its part');
      out.push(Buffer.from(text.slice(from, at)), part);
      from = end + QUOTED_END.length;
    }
    out.push(Buffer.from(`${text.slice(from)}\n`));
    return Buffer.concat(out);
  }
}
