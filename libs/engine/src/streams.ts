/** Stream sessions on a container's stdio: attach (with detach keys), resize, logs; the shim pipe exec shares. */
import type { Duplex } from 'node:stream';
import { BerthError } from '@berth/errors';
import { ShimClient } from '@berth/runtime';
import { invalid } from './config.js';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import type { AttachOptions, LogsOptions, LogsStream, StreamSession } from './contract.js';
import { DetachScanner, parseDetachKeys } from './detach.js';
import { readLog } from './logs.js';

/** What an attach asks of the shim, and whether client stdin EOF closes the container's stdin. */
export interface Streams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  closeStdin: boolean;
}

export async function attachContainer(ctx: EngineContext, ref: string, opts: AttachOptions): Promise<StreamSession> {
  const c = ctx.get(ref);
  const keys = parseDetachKeys(opts.detachKeys);
  const tty = c.rec.Config.Tty;
  return {
    tty,
    pipe: (client) => pipeAttach(ctx, c, client, opts, keys),
  };
}

async function pipeAttach(ctx: EngineContext, c: Ctr, client: Duplex, opts: AttachOptions, keys: Buffer): Promise<void> {
  ctx.emit(c, 'attach');
  if (opts.logs) {
    const body = readLog(c.rec.LogPath, { stdout: opts.stdout, stderr: opts.stderr, since: 0, until: 0, timestamps: false, tty: c.rec.Config.Tty }, 'all', {
      follow: false, running: () => false, stopped: Promise.resolve(),
    });
    for await (const chunk of body) if (!client.destroyed) client.write(chunk as Buffer);
  }
  if (!opts.stream) {
    client.end();
    return;
  }
  const streams: Streams = { stdin: opts.stdin && c.rec.Config.OpenStdin, stdout: opts.stdout, stderr: opts.stderr, closeStdin: c.rec.Config.StdinOnce && !c.rec.Config.Tty };
  const connect = (): Promise<void> => joinShim(ctx.socketOf(c.id), client, streams, keys);
  if (c.rec.State.Running) {
    try {
      await connect();
    } catch (err) {
      ctx.log.debug({ err, containerId: c.id }, 'attach failed');
      client.end();
    }
    return;
  }
  // Not running: join at the next start (docker run attaches before it starts). The hook runs
  // between the runtime's create and start, and returns once the shim has accepted the attach,
  // so no output is missed. Until then the client's stdin waits in the socket, its end too (the
  // docker CLI half-closes at once when its stdin is empty, before it asks for the start).
  client.pause();
  await new Promise<void>((resolve) => {
    const hook = async (): Promise<void> => {
      client.off('close', gone);
      try {
        const shim = await ShimClient.attach(ctx.socketOf(c.id), streams);
        void pipeShim(shim, client, streams, keys).finally(resolve);
      } catch (err) {
        ctx.log.debug({ err, containerId: c.id }, 'attach at start failed');
        if (!client.destroyed) client.end();
        resolve();
      }
    };
    const gone = (): void => {
      c.pendingAttach.delete(hook);
      resolve();
    };
    const drop = (): void => {
      client.off('close', gone);
      c.pendingAttach.delete(hook);
      if (!client.destroyed) client.end();
      resolve();
    };
    client.once('close', gone);
    c.pendingAttach.set(hook, drop);
  });
}

/** Pipes a client socket to a shim attach stream until either side ends or detach keys arrive. */
export async function joinShim(
  socket: string,
  client: Duplex,
  streams: Streams,
  keys: Buffer,
  beforeEnd?: () => Promise<unknown>,
): Promise<void> {
  const shim = await ShimClient.attach(socket, streams);
  return pipeShim(shim, client, streams, keys, beforeEnd);
}

/**
 * Joins the client and the shim stream. The session ends when the shim closes (the process
 * exited and its output is drained: `beforeEnd` runs first, so an exec's exit code is known
 * before the client learns the stream ended), on detach keys, or when the client goes away.
 */
async function pipeShim(
  shim: import('node:net').Socket,
  client: Duplex,
  streams: Streams,
  keys: Buffer,
  beforeEnd?: () => Promise<unknown>,
): Promise<void> {
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  let ended = false;
  const end = (graceful: boolean): void => {
    if (ended) return;
    ended = true;
    client.off('data', onData);
    shim.destroy();
    const finish = (): void => {
      if (!client.destroyed) client.end();
      done();
    };
    if (graceful && beforeEnd) void beforeEnd().catch(() => undefined).then(finish);
    else finish();
  };
  const scanner = new DetachScanner(keys);
  const onData = (chunk: Buffer): void => {
    if (!streams.stdin) return;
    const { forward, detached } = scanner.push(chunk);
    if (forward.length) shim.write(forward);
    if (detached) end(false);
  };
  shim.on('data', (d: Buffer) => {
    if (client.destroyed) return;
    // A slow client slows the shim stream down (the shim drops it past its own queue limit).
    if (!client.write(d)) {
      shim.pause();
      client.once('drain', () => shim.resume());
    }
  });
  shim.on('end', () => end(true));
  shim.on('close', () => end(true));
  shim.on('error', () => end(false));
  client.on('data', onData);
  // Client stdin EOF, as Docker: with StdinOnce and no tty the container's stdin closes and
  // output goes on until exit; otherwise the session ends and the container keeps its stdin.
  client.on('end', () => {
    if (!streams.stdin || ended) return;
    if (streams.closeStdin) shim.end();
    else end(false);
  });
  client.on('close', () => end(false));
  client.on('error', () => end(false));
  // Its end already read (not paused in time): apply it now, as the 'end' handler would have.
  if (client.readableEnded && streams.stdin) {
    if (streams.closeStdin) shim.end();
    else end(false);
  }
  shim.resume();
  // The caller may have paused the socket (reading a request body off it): flow again.
  client.resume();
  await finished;
}

export async function resizeContainer(ctx: EngineContext, ref: string, height: number, width: number): Promise<void> {
  const c = ctx.get(ref);
  if (!c.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is not running`);
  if (c.rec.Config.Tty) await ShimClient.resize(ctx.socketOf(c.id), height, width);
  ctx.emit(c, 'resize', { height: String(height), width: String(width) });
}

export async function containerLogs(ctx: EngineContext, ref: string, opts: LogsOptions): Promise<LogsStream> {
  const c = ctx.get(ref);
  if (!opts.stdout && !opts.stderr) throw invalid('stdout', 'Bad parameters: you must choose at least one stream');
  if (c.host.LogConfig.Type === 'none') throw invalid('HostConfig.LogConfig.Type', 'configured logging driver does not support reading');
  const tty = c.rec.Config.Tty;
  const body = readLog(
    c.rec.LogPath,
    { stdout: opts.stdout, stderr: opts.stderr, since: opts.since, until: opts.until, timestamps: opts.timestamps, details: opts.details === true, tty },
    opts.tail,
    { follow: opts.follow && c.rec.State.Running, running: () => c.rec.State.Running, stopped: c.exited.promise },
  );
  return { tty, body };
}

export function frameErr(text: string): Buffer {
  const payload = Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = 2;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}
