/**
 * Our stdout. Output goes straight to fd 1 (fs.writeSync) until something needs the stream
 * (a hijacked session, logs, export): creating process.stdout costs ~1.5 ms of a `berth --help`
 * (a file or /dev/null makes node load node:stream for it). Node writes stdio files, pipes and
 * terminals synchronously on Linux anyway, so the order of the bytes is the same. Once the stream
 * exists every write goes through it.
 */
import { writeSync } from 'node:fs';

let stream: NodeJS.WriteStream | undefined;

function onEpipe(err: NodeJS.ErrnoException): void {
  // `berth ... | head`: a closed stdout ends us the way SIGPIPE ends docker
  if (err.code === 'EPIPE') process.exit(141);
  throw err;
}

/** process.stdout, for the writers that need a stream (and from then on for every write). */
export function stdout(): NodeJS.WriteStream {
  if (!stream) {
    stream = process.stdout;
    stream.on('error', onEpipe);
  }
  return stream;
}

export function writeOut(data: string | Uint8Array): void {
  if (!stream) {
    let buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    try {
      while (buf.length) buf = buf.subarray(writeSync(1, buf));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') process.exit(141);
      // EAGAIN (a non-blocking pipe), EBADF, ...: the rest the way node does it
      data = buf;
    }
  }
  stdout().write(data);
}

/** Bytes the stream has not written yet (0 when it was never created). */
export function stdoutPending(): number {
  return stream ? stream.writableLength : 0;
}
