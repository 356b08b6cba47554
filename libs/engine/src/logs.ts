/**
 * Reading the json-file log the shim writes: one `{"log","stream","time"}` object per line.
 */
import { statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { frame, StreamType } from '@berth/api/wire';
import { parseRfc3339Nano, rfc3339Nano } from './time.js';

export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  /** As written, RFC 3339. */
  time: string;
}

export interface LogSelect {
  stdout: boolean;
  stderr: boolean;
  /** Unix seconds (fractional); 0 = no bound. */
  since: number;
  until: number;
  timestamps: boolean;
  tty: boolean;
}

export function parseLogLine(line: string): LogEntry | null {
  if (!line) return null;
  try {
    const v = JSON.parse(line) as Partial<LogEntry>;
    if (typeof v.log !== 'string') return null;
    return { log: v.log, stream: v.stream === 'stderr' ? 'stderr' : 'stdout', time: typeof v.time === 'string' ? v.time : '' };
  } catch {
    return null;
  }
}

const toNanos = (seconds: number): bigint => BigInt(Math.round(seconds * 1e6)) * 1000n;

/** Whether the entry passes stream and time selection. */
export function selected(e: LogEntry, sel: LogSelect): boolean {
  if (e.stream === 'stdout' ? !sel.stdout : !sel.stderr) return false;
  if (sel.since > 0 || sel.until > 0) {
    const t = parseRfc3339Nano(e.time);
    if (t === null) return true;
    if (sel.since > 0 && t < toNanos(sel.since)) return false;
    if (sel.until > 0 && t > toNanos(sel.until)) return false;
  }
  return true;
}

/** The bytes a client gets for one entry: the timestamp prefix, then framed unless tty. */
export function renderEntry(e: LogEntry, sel: LogSelect): Buffer {
  let text = e.log;
  if (sel.timestamps) {
    const t = parseRfc3339Nano(e.time);
    text = `${t === null ? e.time : rfc3339Nano(t)} ${text}`;
  }
  if (sel.tty) return Buffer.from(text);
  return frame(e.stream === 'stderr' ? StreamType.Stderr : StreamType.Stdout, text);
}

/** Lines of the file, split at `\n`, skipping a trailing partial line; answers the bytes consumed. */
export function splitLines(buf: Buffer): { lines: string[]; consumed: number } {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl < 0) break;
    lines.push(buf.subarray(start, nl).toString('utf8'));
    start = nl + 1;
  }
  return { lines, consumed: start };
}

/** All selected entries of the file content, keeping the last `tail` (tail counts selected lines, as Docker). */
export function selectEntries(lines: string[], sel: LogSelect, tail: number | 'all'): LogEntry[] {
  const out: LogEntry[] = [];
  for (const l of lines) {
    const e = parseLogLine(l);
    if (e && selected(e, sel)) out.push(e);
  }
  if (tail === 'all' || tail < 0) return out;
  return tail === 0 ? [] : out.slice(-tail);
}

export interface FollowOptions {
  /** Whether to keep reading after the existing content. */
  follow: boolean;
  /** True while the writer may still append (the container runs). */
  running: () => boolean;
  /** Resolves when the container stops (then the file is drained and the stream ends). */
  stopped: Promise<void>;
  pollMs?: number;
}

/**
 * A readable of the log: the existing content (with tail), then, when following, new lines as
 * they are appended until the container stops and the rest is drained, or the reader goes away.
 */
export function readLog(path: string, sel: LogSelect, tail: number | 'all', opts: FollowOptions): Readable {
  const out = new PassThrough();
  let closed = false;
  out.on('close', () => {
    closed = true;
  });
  const untilNs = sel.until > 0 ? toNanos(sel.until) : null;
  void (async () => {
    let fh;
    try {
      fh = await open(path, 'r');
    } catch {
      out.end();
      return;
    }
    try {
      const size = (await fh.stat()).size;
      let pos = 0;
      const initial = Buffer.alloc(size);
      if (size > 0) await fh.read(initial, 0, size, 0);
      const { lines, consumed } = splitLines(initial);
      pos = consumed;
      for (const e of selectEntries(lines, sel, tail)) if (!closed) out.write(renderEntry(e, sel));
      if (!opts.follow) return;
      let stopped = !opts.running();
      void opts.stopped.then(() => {
        stopped = true;
      });
      const poll = opts.pollMs ?? 50;
      let partial = Buffer.alloc(0);
      for (;;) {
        if (closed) return;
        if (untilNs !== null && BigInt(Date.now()) * 1_000_000n > untilNs) return;
        const wasStopped = stopped;
        const st = await fh.stat();
        if (st.size > pos) {
          const chunk = Buffer.alloc(st.size - pos);
          const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
          pos += bytesRead;
          const buf = partial.length ? Buffer.concat([partial, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
          const split = splitLines(buf);
          partial = Buffer.from(buf.subarray(split.consumed));
          for (const l of split.lines) {
            const e = parseLogLine(l);
            if (e && selected(e, sel) && !closed) out.write(renderEntry(e, sel));
          }
          continue;
        }
        if (wasStopped) return;
        await new Promise((r) => setTimeout(r, poll));
      }
    } finally {
      await fh.close().catch(() => undefined);
      if (!closed) out.end();
    }
  })().catch((err: unknown) => out.destroy(err as Error));
  return out;
}

export function logSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

