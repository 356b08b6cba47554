/**
 * The client side of berth-shim's control socket (docs/shim-protocol.md). Each call opens its
 * own connection; the shim serves any number of them at once and outlives berthd, so a new
 * daemon re-adopts a running container with the same calls.
 */
import { createConnection, type Socket } from 'node:net';
import { BerthError } from '@berth/errors';

export interface AttachStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export type ShimStatus = { status: 'running'; pid: number } | { status: 'exited'; exitCode: number };

function notFound(socket: string, cause?: unknown): BerthError {
  return new BerthError('BERTH_SHIM_NOT_FOUND', `no shim listens on ${socket}`, { cause, details: { socket } });
}

function failed(socket: string, request: string, message: string, cause?: unknown): BerthError {
  return new BerthError('BERTH_SHIM_FAILED', `shim ${socket}: ${request}: ${message}`, { cause, details: { socket, request } });
}

function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ECONNREFUSED';
}

function connect(socket: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path: socket, allowHalfOpen: true });
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => reject(isGone(err) ? notFound(socket, err) : failed(socket, 'connect', err.message, err)));
  });
}

/** Sends one request and reads the whole answer (the shim closes after it). */
async function request(socket: string, line: string): Promise<string> {
  const s = await connect(socket);
  return new Promise((resolve, reject) => {
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', (err) => {
      if (text.endsWith('\n')) resolve(text);
      // The shim was exiting: it closed before it read the request.
      else if (['EPIPE', 'ECONNRESET'].includes((err as NodeJS.ErrnoException).code ?? '')) reject(notFound(socket, err));
      else reject(failed(socket, line, err.message, err));
    });
    s.on('end', () => {
      s.destroy();
      resolve(text);
    });
    s.end(`${line}\n`);
  });
}

function expectOk(socket: string, line: string, answer: string): void {
  if (answer === 'ok\n') return;
  const m = /^error (\d+) (.*)\n?$/.exec(answer);
  if (m) throw failed(socket, line, m[2]!, undefined);
  throw failed(socket, line, `unexpected answer ${JSON.stringify(answer)}`);
}

function parseExitFile(text: string, exitFile: string): number {
  const code = Number(text.trim());
  if (text.trim() === '' || !Number.isInteger(code))
    throw new BerthError('BERTH_SHIM_FAILED', `exit file ${exitFile} holds ${JSON.stringify(text)}`, { details: { exitFile } });
  return code;
}

/**
 * Attaches to the process's streams. Resolves once the shim answered `ok`; the socket then
 * carries the output (raw with a tty, else Docker's multiplexed frames) and takes stdin.
 * Nothing is lost before the caller reads it (a 'data' listener or pipe starts the flow).
 * End the socket's write side to close stdin
 * (with --stdin-once that closes the container's stdin); it ends when the output is drained.
 */
async function attach(socket: string, streams: AttachStreams): Promise<Socket> {
  const flags = `${streams.stdin ? 'i' : ''}${streams.stdout ? 'o' : ''}${streams.stderr ? 'e' : ''}`;
  const line = `attach ${flags}`;
  const s = await connect(socket);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    // 'readable' + read(), not 'data': once the listener is gone the stream is back to its
    // initial mode, so the caller's first 'data' listener or pipe starts the flow.
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (head.length < 3 && (chunk = s.read() as Buffer | null) !== null) head = Buffer.concat([head, chunk]);
      if (head.length < 3) return;
      cleanup();
      if (head.subarray(0, 3).toString('latin1') !== 'ok\n') {
        s.destroy();
        reject(failed(socket, line, `unexpected answer ${JSON.stringify(head.toString('utf8'))}`));
        return;
      }
      if (head.length > 3) s.unshift(head.subarray(3));
      // The shim closes the connection once the output is drained: nothing more to send then.
      s.once('end', () => s.end());
      resolve(s);
    };
    const onEnd = (): void => {
      cleanup();
      s.destroy();
      reject(failed(socket, line, 'the shim closed the connection before answering'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(failed(socket, line, err.message, err));
    };
    const cleanup = (): void => {
      s.off('readable', onReadable);
      s.off('end', onEnd);
      s.off('error', onError);
    };
    s.on('readable', onReadable);
    s.on('end', onEnd);
    s.on('error', onError);
    s.write(`${line}\n`);
  });
}

async function resize(socket: string, rows: number, cols: number): Promise<void> {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || rows > 65535 || cols > 65535)
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid terminal size ${rows}x${cols}`, { details: { rows, cols } });
  const line = `resize ${rows} ${cols}`;
  expectOk(socket, line, await request(socket, line));
}

async function closeStdin(socket: string): Promise<void> {
  expectOk(socket, 'close-stdin', await request(socket, 'close-stdin'));
}

async function status(socket: string): Promise<ShimStatus> {
  const answer = await request(socket, 'status');
  let m = /^running (\d+)\n$/.exec(answer);
  if (m) return { status: 'running', pid: Number(m[1]) };
  m = /^exited (\d+)\n$/.exec(answer);
  if (m) return { status: 'exited', exitCode: Number(m[1]) };
  throw failed(socket, 'status', `unexpected answer ${JSON.stringify(answer)}`);
}

/**
 * Resolves with the exit code once the process has exited and its output is drained. With
 * no shim left, the exit file answers; with neither, rejects with BERTH_SHIM_NOT_FOUND.
 */
async function wait(socket: string, exitFile: string): Promise<number> {
  const fromFile = async (cause?: unknown): Promise<number> => {
    try {
      // node:fs/promises only here: most commands never need it
      const { readFile } = await import('node:fs/promises');
      return parseExitFile(await readFile(exitFile, 'utf8'), exitFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new BerthError('BERTH_SHIM_NOT_FOUND', `no shim listens on ${socket} and there is no exit file ${exitFile}`, {
          cause, details: { socket, exitFile },
        });
      throw err;
    }
  };
  let answer: string;
  try {
    answer = await request(socket, 'wait');
  } catch (err) {
    if (err instanceof BerthError && err.code === 'BERTH_SHIM_NOT_FOUND') return fromFile(err);
    throw err;
  }
  const m = /^exit (\d+)\n$/.exec(answer);
  if (m) return Number(m[1]);
  // The shim went away without answering (killed): the exit file may still tell.
  return fromFile(failed(socket, 'wait', `unexpected answer ${JSON.stringify(answer)}`));
}

/**
 * The shim's control socket client. The methods exist both on the class (ShimClient.wait(...))
 * and on instances (new ShimClient().wait(...)); they hold no state.
 */
export class ShimClient {
  static attach = attach;
  static resize = resize;
  static closeStdin = closeStdin;
  static status = status;
  static wait = wait;
  attach(socket: string, streams: AttachStreams): Promise<Socket> {
    return attach(socket, streams);
  }
  resize(socket: string, rows: number, cols: number): Promise<void> {
    return resize(socket, rows, cols);
  }
  closeStdin(socket: string): Promise<void> {
    return closeStdin(socket);
  }
  status(socket: string): Promise<ShimStatus> {
    return status(socket);
  }
  wait(socket: string, exitFile: string): Promise<number> {
    return wait(socket, exitFile);
  }
}
