/**
 * One `wait` connection per running process: resolves with the exit code when the shim
 * reports it (or, with the shim gone, from the exit file). Unlike ShimClient.wait it can be
 * dropped: berthd's close() lets go of shims without touching the containers.
 */
import { createConnection, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { BerthError } from '@berth/errors';

export interface ShimWatch {
  /** The exit code; never settles once cancelled. */
  result: Promise<number>;
  cancel(): void;
}

export async function readExitFile(path: string): Promise<number | null> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    const n = Number(text.split(/\s+/)[0]);
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
}

export function watchShim(socket: string, exitFile: string): ShimWatch {
  let cancelled = false;
  let conn: Socket | null = null;
  const result = new Promise<number>((resolve, reject) => {
    const fromFile = (cause?: unknown): void => {
      void readExitFile(exitFile).then((code) => {
        if (cancelled) return;
        if (code !== null) resolve(code);
        else reject(new BerthError('BERTH_SHIM_NOT_FOUND', `no shim listens on ${socket} and there is no exit file ${exitFile}`, { cause }));
      });
    };
    const s = createConnection({ path: socket, allowHalfOpen: true });
    conn = s;
    let text = '';
    let connected = false;
    s.setEncoding('utf8');
    s.on('connect', () => {
      connected = true;
      s.write('wait\n');
    });
    s.on('data', (d: string) => (text += d));
    s.on('error', (err) => {
      if (cancelled) return;
      if (!connected) fromFile(err);
    });
    // Half-open sockets: the shim ending its side is the answer; close ours too.
    s.on('end', () => s.destroy());
    s.on('close', () => {
      if (cancelled || !connected) return;
      const m = /^exit (\d+)\n?$/.exec(text);
      if (m) resolve(Number(m[1]));
      else fromFile();
    });
  });
  return {
    result,
    cancel() {
      cancelled = true;
      conn?.destroy();
    },
  };
}
