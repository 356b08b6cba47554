import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { MULTIPLEXED_STREAM, RAW_STREAM } from '@berth/api/wire';
import type { StreamSession } from '@berth/engine';
import type { Logger } from '@berth/log';
import { canonicalHeaderName } from './headers.js';
import { errorMessage, jsonBytes, JSON_TYPE } from './reply.js';
import { versionAtLeast } from './version.js';

/**
 * Connection hijack for attach and exec start (engine-api.md §4.8). With an `Upgrade` header
 * the request reached the server's 'upgrade' event and the socket is ours; without one it is a
 * normal request whose socket we take over from fastify. Either way the status line is
 * written by hand and the socket is given to the session.
 */
export interface HijackTarget {
  socket: Duplex;
  /** The request carried `Upgrade`: answer 101 (the Go client requires it). */
  upgrade: boolean;
  apiVersion: string;
  headers: Record<string, string>;
}

export function streamContentType(tty: boolean, apiVersion: string, upgrade: boolean): string {
  if (!upgrade) return RAW_STREAM;
  return !tty && versionAtLeast(apiVersion, '1.42') ? MULTIPLEXED_STREAM : RAW_STREAM;
}

function headerLines(headers: Record<string, string>): string {
  return Object.entries(headers)
    .map(([k, v]) => `${canonicalHeaderName(k)}: ${v}\r\n`)
    .join('');
}

/** Writes the hijack head, pipes the session, writes a late error in-band, then ends the socket. */
export async function serveSession(session: StreamSession, target: HijackTarget, log: Logger): Promise<void> {
  const { socket } = target;
  const type = streamContentType(session.tty, target.apiVersion, target.upgrade);
  const status = target.upgrade ? 'HTTP/1.1 101 UPGRADED\r\n' : 'HTTP/1.1 200 OK\r\n';
  const upgradeLines = target.upgrade ? 'Connection: Upgrade\r\nUpgrade: tcp\r\n' : '';
  socket.write(`${status}Content-Type: ${type}\r\n${upgradeLines}${headerLines(target.headers)}\r\n`);
  try {
    await session.pipe(socket);
  } catch (err) {
    // After the head there is no status to change: Docker writes the error text in the stream.
    log.info({ err }, 'stream session failed after hijack');
    if (!socket.destroyed && socket.writable) socket.write(`${errorMessage(err)}\r\n`);
  } finally {
    if (!socket.destroyed) socket.end();
  }
}

/** A complete HTTP response written on a raw socket (errors on the upgrade path), then close. */
export function writeRawJsonResponse(socket: Duplex, status: number, value: unknown, headers: Record<string, string>): void {
  const body = jsonBytes(value);
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `Content-Type: ${JSON_TYPE}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n` +
    headerLines(headers) +
    '\r\n';
  socket.end(Buffer.concat([Buffer.from(head), body]));
}

/** Reads a request body of `length` bytes on an upgraded socket; extra bytes are put back. */
export function readUpgradeBody(req: IncomingMessage, socket: Duplex, head: Buffer, limit: number): Promise<Buffer> {
  const len = req.headers['content-length'] === undefined ? 0 : Number(req.headers['content-length']);
  if (!Number.isSafeInteger(len) || len < 0) return Promise.reject(new Error('invalid Content-Length'));
  if (len > limit) return Promise.reject(new Error('request body is too large'));
  return new Promise((resolve, reject) => {
    let got = head;
    const finish = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      socket.pause();
      const rest = got.subarray(len);
      if (rest.length) socket.unshift(rest);
      resolve(got.subarray(0, len));
    };
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= len) finish();
    };
    const onEnd = (): void => {
      socket.off('data', onData);
      reject(new Error('connection closed before the request body was complete'));
    };
    if (got.length >= len) return finish();
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
    socket.resume();
  });
}
