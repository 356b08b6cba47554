/**
 * Output helpers with docker's exact rules: Go's text/tabwriter column blocks (docker uses
 * minwidth 10, padding 3), go-units' HumanDuration / HumanSize / BytesSize, the 12-character
 * short ID, the `…` ellipsis, and Go's time.Time String().
 */
import { formatSpec, parseTemplate } from './template.js';

function width(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Go's tabwriter.NewWriter(out, minwidth, 1, padding, ' ', 0) over a whole text. */
export function tabwrite(text: string, minwidth = 10, padding = 3): string {
  const endsWithNewline = text.endsWith('\n');
  const rawLines = (endsWithNewline ? text.slice(0, -1) : text).split('\n');
  const lines = rawLines.map((l) => l.split('\t'));
  const widths: number[] = [];
  const out: string[] = [];

  const writeLines = (line0: number, line1: number): void => {
    for (let i = line0; i < line1; i++) {
      const cells = lines[i]!;
      let s = '';
      cells.forEach((c, j) => {
        if (j < widths.length && j < cells.length - 1) s += c + ' '.repeat(Math.max(0, widths[j]! - width(c)));
        else s += c;
      });
      out.push(s);
    }
  };

  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    for (let t = line0; t < line1; t++) {
      if (column >= lines[t]!.length - 1) continue;
      writeLines(line0, t);
      line0 = t;
      let w = minwidth;
      for (; t < line1; t++) {
        const cells = lines[t]!;
        if (column >= cells.length - 1) break;
        w = Math.max(w, width(cells[column]!) + padding);
      }
      widths.push(w);
      format(line0, t);
      widths.pop();
      line0 = t;
      t--; // the for loop's t++ resumes at the line that ended the block
    }
    writeLines(line0, line1);
  };

  format(0, lines.length);
  return out.join('\n') + (endsWithNewline ? '\n' : '');
}

export { humanDuration } from '@berth/api/wire';

/** Go's %.Ng: N significant digits, trailing zeros dropped. */
function goG(v: number, precision: number): string {
  let s = v.toPrecision(precision);
  if (s.includes('e')) return String(Number(s));
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

function scaled(size: number, base: number, units: string[], precision: number): string {
  let i = 0;
  while (size >= base && i < units.length - 1) {
    size /= base;
    i++;
  }
  return `${goG(size, precision)}${units[i]}`;
}

/** go-units HumanSizeWithPrecision (decimal units). */
export function humanSize(bytes: number, precision = 4): string {
  return scaled(bytes, 1000, DECIMAL, precision);
}

/** go-units BytesSize (binary units), used by `info`'s Total Memory. */
export function bytesSize(bytes: number): string {
  return scaled(bytes, 1024, BINARY, 4);
}

/** The 12-character short form of an id (with any `sha256:` prefix dropped). */
export function shortId(id: string): string {
  const i = id.indexOf(':');
  return (i >= 0 ? id.slice(i + 1) : id).slice(0, 12);
}

/** docker's formatter.Ellipsis: at most `max` characters, the last one `…` when cut. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  if (max <= 1) return chars.slice(0, max).join('');
  return chars.slice(0, max - 1).join('') + '…';
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Go's time.Time.String() for a unix time in the local zone: `2024-01-02 15:04:05 +0000 UTC`. */
export function goTimeString(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const zone = `${sign}${pad2(Math.trunc(Math.abs(off) / 60))}${pad2(Math.abs(off) % 60)}`;
  const name = off === 0 ? 'UTC' : zone;
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${zone} ${name}`
  );
}

/**
 * Renders items with a docker `--format` (or the default table). `headers` names the column
 * header of each placeholder, as docker's header context does.
 */
export function renderFormatted(
  items: unknown[],
  format: string,
  defaultTable: string,
  headers: Record<string, string>,
): string {
  const spec = formatSpec(format, defaultTable);
  const tpl = parseTemplate(spec.template);
  let text = '';
  if (spec.table) {
    const headerCtx: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(headers)) headerCtx[k] = v;
    headerCtx.Label = () => 'LABEL';
    try {
      text += tpl.execute(headerCtx) + '\n';
    } catch {
      /* a template the header context cannot run prints no header, like docker */
    }
  }
  for (const it of items) text += tpl.execute(it) + '\n';
  return spec.table ? tabwrite(text) : text;
}
