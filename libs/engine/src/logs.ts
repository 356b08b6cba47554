/**
 * Reading the json-file log the shim writes: one `{"log","stream","time"}` object per line.
 */
import { statSync } from 'node:fs';
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
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
  /** `--details`: each line after its attributes (`k=v,...`, none here) and a space, as dockerd. */
  details?: boolean;
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
  let text = sel.details ? ` ${e.log}` : e.log;
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
 * The rotated files of the log at path that exist (`<path>.1` newest, see the shim's
 * --log-max-files), oldest first, with their inode numbers.
 */
export async function rotatedLogs(path: string): Promise<{ path: string; ino: number }[]> {
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return [];
  }
  const nums = names
    .filter((f) => f.length > base.length + 1 && f.startsWith(`${base}.`) && /^\d+$/.test(f.slice(base.length + 1)))
    .map((f) => Number(f.slice(base.length + 1)))
    .sort((a, b) => b - a);
  const out: { path: string; ino: number }[] = [];
  for (const n of nums) {
    const p = `${path}.${n}`;
    try {
      out.push({ path: p, ino: (await stat(p)).ino });
    } catch {
      // Rotated away meanwhile.
    }
  }
  return out;
}

async function readWhole(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    return Buffer.alloc(0);
  }
}

/**
 * A readable of the log: the existing content of the rotated files (oldest first) and the
 * active one (with tail counted across them all), then, when following, new lines as they are
 * appended until the container stops and the rest is drained, or the reader goes away. When the
 * shim rotates the active file (renamed, a new one at path: its inode changes) the rest of the
 * old file is read, then any file rotated since, then the new one from its start; a file
 * truncated (max-file 1) is read again from its start.
 */
export function readLog(path: string, sel: LogSelect, tail: number | 'all', opts: FollowOptions): Readable {
  const out = new PassThrough();
  let closed = false;
  out.on('close', () => {
    closed = true;
  });
  const untilNs = sel.until > 0 ? toNanos(sel.until) : null;
  const emitLines = (lines: string[]): void => {
    for (const l of lines) {
      const e = parseLogLine(l);
      if (e && selected(e, sel) && !closed) out.write(renderEntry(e, sel));
    }
  };
  void (async () => {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch {
      out.end();
      return;
    }
    try {
      // The active file is open first: a rotation from now on renames it, and the rotated file
      // holding it (same inode) is then read through fh, never twice.
      let st = await fh.stat();
      let ino = st.ino;
      const older: Buffer[] = [];
      for (const r of await rotatedLogs(path)) if (r.ino !== ino) older.push(await readWhole(r.path));
      const size = st.size;
      const initial = Buffer.alloc(size);
      if (size > 0) await fh.read(initial, 0, size, 0);
      const lines: string[] = [];
      for (const b of older) lines.push(...splitLines(b).lines);
      const split = splitLines(initial);
      lines.push(...split.lines);
      let pos = split.consumed;
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
        st = await fh.stat();
        if (st.size < pos) {
          // Truncated (max-file 1): the writer starts over.
          pos = 0;
          partial = Buffer.alloc(0);
        }
        if (st.size > pos) {
          const chunk = Buffer.alloc(st.size - pos);
          const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
          pos += bytesRead;
          const buf = partial.length ? Buffer.concat([partial, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
          const sp = splitLines(buf);
          partial = Buffer.from(buf.subarray(sp.consumed));
          emitLines(sp.lines);
          continue;
        }
        // Drained the open file: has path become another file (rotation)?
        let now: number | null = null;
        try {
          now = (await stat(path)).ino;
        } catch {
          now = null; // between the rename and the new file
        }
        if (now !== null && now !== ino) {
          // The shim writes no more to fh: take what it wrote since the drain above. The files
          // rotated after it (newer than it, older than the new active one) come next, then the new file.
          const last = (await fh.stat()).size;
          if (last > pos) {
            const chunk = Buffer.alloc(last - pos);
            const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
            emitLines(splitLines(Buffer.concat([partial, chunk.subarray(0, bytesRead)])).lines);
          }
          // Open the new file before listing: if it is rotated meanwhile it is known by its inode.
          const next = await open(path, 'r').catch(() => null);
          if (next) {
            const nextIno = (await next.stat()).ino;
            const rotated = await rotatedLogs(path);
            const at = rotated.findIndex((r) => r.ino === ino);
            const end = rotated.findIndex((r) => r.ino === nextIno);
            for (const r of rotated.slice(at + 1, end < 0 ? rotated.length : end)) emitLines(splitLines(await readWhole(r.path)).lines);
            await fh.close().catch(() => undefined);
            fh = next;
            ino = nextIno;
            pos = 0;
            partial = Buffer.alloc(0);
            continue;
          }
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

