/**
 * zstd decompression for layers (`application/vnd.oci.image.layer.v1.tar+zstd`). Node 20's zlib
 * has no zstd, so the stream goes through the `zstd` executable (Debian package `zstd`) as a
 * child process: `zstd -d -c` from stdin to stdout, streaming, with backpressure both ways.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { BerthError } from '@berth/errors';

/** A zstd frame starts with 28 b5 2f fd. */
export function isZstd(head: Buffer): boolean {
  return head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd;
}

export interface ZstdOptions {
  /** The executable; default `zstd` on PATH. */
  bin?: string;
}

/**
 * The decompressed bytes of `src`. Errors: BERTH_NATIVE_UNAVAILABLE when the executable is
 * missing, BERTH_ARCHIVE_INVALID when zstd rejects the data, and any error of `src` itself
 * (a digest check at its end) as it was thrown. Stopping early kills the child.
 */
export async function* zstdDecompress(src: AsyncIterable<Buffer | string>, what: string, opts: ZstdOptions = {}): AsyncGenerator<Buffer> {
  const bin = opts.bin ?? 'zstd';
  const child = spawn(bin, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const exited = new Promise<{ error: Error } | { code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (error) => resolve({ error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  // EPIPE when zstd stops reading (bad data, or killed): its exit status says why.
  child.stdin.on('error', () => undefined);
  let stopped = false;
  let feedError: { err: unknown } | null = null;
  const feed = (async () => {
    try {
      for await (const chunk of src) {
        if (stopped) break;
        if (!child.stdin.write(chunk)) await Promise.race([once(child.stdin, 'drain'), exited]);
      }
      child.stdin.end();
    } catch (err) {
      feedError = { err };
      child.kill('SIGKILL');
    }
  })();
  let complete = false;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const r = await exited;
    if ('error' in r) {
      if ((r.error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new BerthError('BERTH_NATIVE_UNAVAILABLE', `${what}: zstd-compressed data needs the zstd executable (Debian package zstd), not found as ${JSON.stringify(bin)}`, {
          details: { executable: bin },
        });
      throw new BerthError('BERTH_INTERNAL', `${what}: cannot run ${bin}: ${r.error.message}`, { cause: r.error });
    }
    await feed;
    const f = feedError as { err: unknown } | null;
    if (f !== null) throw f.err;
    if (r.code !== 0)
      throw new BerthError('BERTH_ARCHIVE_INVALID', `${what}: corrupt zstd data: ${stderr.trim().split('\n').pop() ?? `zstd exited ${r.code ?? r.signal}`}`, {
        details: { exitCode: r.code },
      });
    complete = true;
  } finally {
    stopped = true;
    if (!complete && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
