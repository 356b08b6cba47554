/**
 * JSON re-indented as text, the way docker's inspect prints what the daemon sent (Go's
 * json.Indent over the raw message): the values are not decoded, so strings, escapes and numbers
 * stay as the daemon wrote them. For the compact JSON berthd writes, the result is the same as
 * JSON.stringify(JSON.parse(text), null, indent); it is only faster: the inspect answer of a
 * container with a 10,000-port range is 1.1 MB of 10,000-key maps, which JSON.parse takes
 * 20-60 ms to decode and JSON.stringify 15-45 ms to print again (bench/network).
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const SPACE = 0x20;
const NEWLINE = 0x0a;
const TAB = 0x09;
const CR = 0x0d;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const fillBytes = Uint8Array.prototype.fill;

/**
 * `parts` (each one JSON value, as received) as one indented JSON array, with a trailing newline:
 * docker's `inspect` output. No parts: `[]`. Input that is not JSON is not checked here (the
 * daemon's answer was declared JSON); it comes out re-spaced.
 */
export function indentJsonArray(parts: readonly Uint8Array[], indent = 4): Buffer {
  if (parts.length === 0) return Buffer.from('[]\n');
  let size = 64;
  for (const p of parts) size += p.length * 4 + 2;
  const w: { out: Buffer; o: number } = { out: Buffer.allocUnsafe(size), o: 0 };
  w.out[w.o++] = OPEN_ARR;
  parts.forEach((p, i) => {
    if (w.o + indent + 2 > w.out.length) w.out = grow(w.out, w.o, indent + 2);
    if (i > 0) w.out[w.o++] = COMMA;
    w.out[w.o++] = NEWLINE;
    for (let k = 0; k < indent; k++) w.out[w.o++] = SPACE;
    indentInto(p, indent, 1, w);
  });
  if (w.o + 3 > w.out.length) w.out = grow(w.out, w.o, 3);
  w.out[w.o++] = NEWLINE;
  w.out[w.o++] = CLOSE_ARR;
  w.out[w.o++] = NEWLINE;
  return w.out.subarray(0, w.o);
}

/** One JSON text re-indented (no trailing newline). */
export function indentJson(src: Uint8Array, indent = 4): Buffer {
  const w: { out: Buffer; o: number } = { out: Buffer.allocUnsafe(src.length * 4 + 64), o: 0 };
  indentInto(src, indent, 0, w);
  return w.out.subarray(0, w.o);
}

/** `buf` with at least `need` bytes of room after `used`. */
function grow(buf: Buffer, used: number, need: number): Buffer {
  const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, used + need));
  buf.copy(bigger, 0, 0, used);
  return bigger;
}

/**
 * Writes `src` re-indented (its first line at the current position, the rest at `depth0`) into
 * `w.out` from `w.o`, growing it as needed. One loop, its state in locals, one byte at a time:
 * a CLI process runs most of it before V8 optimises it, and there a call into a native helper
 * per string (Buffer's indexOf, copy) costs more than the bytes it saves; the indent is one
 * TypedArray fill (measured, cold: ~20 ms for the 1.1 MB answer of a 10,000-port container,
 * against ~24 ms with a loop for the indent, 24+ ms with native string copies and 50 ms for
 * JSON.parse + JSON.stringify).
 */
function indentInto(src: Uint8Array, indent: number, depth0: number, w: { out: Buffer; o: number }): void {
  const n = src.length;
  // Output other than indentation is at most 2 bytes per input byte (`:` becomes `: `); room for
  // all the rest is made here and at each newline, so the copies in between need no check.
  let out = w.out;
  let o = w.o;
  if (o + 2 * n + 3 > out.length) out = grow(out, o, 2 * n + 3);
  let depth = depth0;
  let i = 0;
  while (i < n) {
    let c = src[i++]!;
    if (c === QUOTE) {
      // a string, copied as it is
      out[o++] = c;
      while (i < n) {
        c = src[i++]!;
        out[o++] = c;
        if (c === QUOTE) break;
        if (c === BACKSLASH && i < n) out[o++] = src[i++]!;
      }
      continue;
    }
    if (c === COLON) {
      out[o++] = COLON;
      out[o++] = SPACE;
      continue;
    }
    if (c === COMMA) {
      out[o++] = c;
    } else if (c === OPEN_OBJ || c === OPEN_ARR) {
      let k = i;
      while (k < n && (src[k] === SPACE || src[k] === NEWLINE || src[k] === TAB || src[k] === CR)) k++;
      out[o++] = c;
      if (k < n && src[k] === c + 2) {
        // `{}` and `[]` stay on one line ('}' and ']' are '{' and '[' plus 2)
        out[o++] = c + 2;
        i = k + 1;
        continue;
      }
      depth++;
      i = k;
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      if (depth > depth0) depth--;
    } else {
      if (c !== SPACE && c !== NEWLINE && c !== TAB && c !== CR) out[o++] = c;
      continue;
    }
    const w = depth * indent;
    const need = 2 * (n - i) + w + 3;
    if (o + need > out.length) out = grow(out, o, need);
    out[o++] = NEWLINE;
    // TypedArray's own fill, not Buffer's (which checks its arguments in JS first): one call
    // instead of a loop over the indent (most of the output's bytes)
    fillBytes.call(out, SPACE, o, o + w);
    o += w;
    if (c === CLOSE_OBJ || c === CLOSE_ARR) out[o++] = c;
  }
  w.out = out;
  w.o = o;
}
