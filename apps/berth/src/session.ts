/**
 * A hijacked attach/exec session: the daemon's output to our stdout/stderr (demultiplexed unless
 * TTY), our stdin to the daemon (half-closed on EOF), raw mode on a local terminal for TTY
 * sessions (restored on every way out), client-side detach keys, resize and signal proxying.
 */
import type { Socket } from 'node:net';
import { Demuxer, StreamType } from '@berth/api/wire';
import { CliError } from './client.js';
import { stdout } from './output/stdio.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** docker's detach-keys grammar: `ctrl-<letter|@|[|\\|]|^|_>` or a single character, comma-separated. */
export function parseDetachKeys(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const k = part.trim();
    if (k.length === 1) {
      out.push(k.charCodeAt(0));
      continue;
    }
    const m = /^ctrl-(.)$/i.exec(k);
    if (!m) throw new CliError(`Unknown character: '${k}'`);
    const c = m[1]!.toLowerCase();
    if (c >= 'a' && c <= 'z') out.push(c.charCodeAt(0) - 96);
    else {
      const special: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };
      if (!(c in special)) throw new CliError(`Unknown character: '${k}'`);
      out.push(special[c]!);
    }
  }
  return out;
}

/** Passes bytes through, holding back a partial detach sequence; `onDetach` when it completes. */
export class EscapeProxy {
  private held: number[] = [];

  constructor(
    private readonly keys: number[],
    private readonly onDetach: () => void,
  ) {}

  /** Returns the bytes to forward now. */
  feed(chunk: Buffer): Buffer {
    const out: number[] = [];
    for (const b of chunk) {
      if (this.keys.length && b === this.keys[this.held.length]) {
        this.held.push(b);
        if (this.held.length === this.keys.length) {
          this.held = [];
          this.onDetach();
          return Buffer.from(out);
        }
        continue;
      }
      if (this.held.length) {
        out.push(...this.held);
        this.held = [];
        if (b === this.keys[0]) {
          this.held.push(b);
          continue;
        }
      }
      out.push(b);
    }
    return Buffer.from(out);
  }
}

let rawModeOn = false;

function restoreTerminal(): void {
  if (rawModeOn && process.stdin.isTTY) {
    try {
      process.stdin.setRawMode(false);
    } catch {
      /* the terminal is gone */
    }
  }
  rawModeOn = false;
}

function enterRawMode(): void {
  if (!process.stdin.isTTY || rawModeOn) return;
  process.stdin.setRawMode(true);
  rawModeOn = true;
  process.once('exit', restoreTerminal);
  for (const sig of ['SIGTERM', 'SIGHUP'] as const)
    process.once(sig, () => {
      restoreTerminal();
      process.exit(sig === 'SIGTERM' ? 143 : 129);
    });
}

export interface SessionOptions {
  socket: Socket;
  head?: Buffer;
  tty: boolean;
  /** Forward our stdin. */
  stdin: boolean;
  /** Client-side detach sequence (TTY sessions). */
  detachKeys?: string;
}

export type SessionEnd = 'eof' | 'detached';

/** Runs the session until the daemon ends the output (or the user detaches). */
export function runSession(o: SessionOptions): Promise<SessionEnd> {
  const { socket } = o;
  return new Promise((resolve, reject) => {
    let finished = false;
    const finish = (how: SessionEnd, err?: Error): void => {
      if (finished) return;
      finished = true;
      if (o.stdin) {
        process.stdin.removeListener('data', onData);
        process.stdin.removeListener('end', onEnd);
        process.stdin.pause();
      }
      restoreTerminal();
      if (how === 'detached') socket.destroy();
      if (err) reject(err);
      else resolve(how);
    };

    let onOutput: (chunk: Buffer) => void;
    if (o.tty) onOutput = (chunk) => void stdout().write(chunk);
    else {
      const demux = new Demuxer((type, payload) => {
        if (type === StreamType.Stderr) process.stderr.write(payload);
        else if (type === StreamType.SystemError) finish('eof', new CliError(payload.toString('utf8').trim()));
        else stdout().write(payload);
      });
      onOutput = (chunk) => demux.push(chunk);
    }
    if (o.head?.length) onOutput(o.head);
    socket.on('data', onOutput);
    socket.resume(); // the client hands the hijacked socket over paused
    socket.on('end', () => finish('eof'));
    socket.on('close', () => finish('eof'));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // the daemon closing while we still write stdin is an ordinary end
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') finish('eof');
      else finish('eof', err);
    });

    const proxy =
      o.tty && o.detachKeys !== undefined && o.detachKeys !== ''
        ? new EscapeProxy(parseDetachKeys(o.detachKeys), () => finish('detached'))
        : undefined;
    const onData = (chunk: Buffer): void => {
      const data = proxy ? proxy.feed(chunk) : chunk;
      if (data.length && !socket.destroyed) socket.write(data);
    };
    const onEnd = (): void => {
      if (!socket.destroyed) socket.end();
    };
    if (o.stdin) {
      if (o.tty) enterRawMode();
      process.stdin.on('data', onData);
      process.stdin.on('end', onEnd);
      process.stdin.resume();
    }
  });
}

/** Calls `resize(h, w)` now and on every SIGWINCH while our stdout is a terminal. */
export function monitorTtySize(resize: (h: number, w: number) => Promise<unknown>): () => void {
  if (!stdout().isTTY) return () => {};
  const send = (): void => {
    const [w, h] = stdout().getWindowSize();
    resize(h, w).catch(() => {});
  };
  send();
  process.on('SIGWINCH', send);
  return () => void process.removeListener('SIGWINCH', send);
}

const PROXIED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

/** Forwards the signals we receive to the container (`POST /kill?signal=INT`). */
export function proxySignals(kill: (signal: string) => Promise<unknown>): () => void {
  const handlers = PROXIED.map((sig) => {
    const h = (): void => void kill(sig.slice(3)).catch(() => {});
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => handlers.forEach(([sig, h]) => process.removeListener(sig, h));
}

/** The terminal size for ConsoleSize ([height, width]), [0, 0] when stdout is no terminal. */
export function consoleSize(): [number, number] {
  if (!stdout().isTTY) return [0, 0];
  const [w, h] = stdout().getWindowSize();
  return [h, w];
}
