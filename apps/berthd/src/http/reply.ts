import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { JsonMessage } from '@berth/api/wire';
import { httpStatusOfKind, kindOf } from '@berth/errors';

/**
 * JSON as Docker writes it: `application/json` exactly (the Go client compares the header as a
 * string; fastify's default `; charset=utf-8` makes it treat the body as plain text), a
 * trailing newline, no HTML escaping (JSON.stringify does none).
 */
export const JSON_TYPE = 'application/json';

/** The media type of a Content-Type header, lower case, without parameters (`application/json; charset=utf-8` -> `application/json`). */
export function mediaType(contentType: unknown): string {
  return (typeof contentType === 'string' ? contentType : '').split(';')[0]!.trim().toLowerCase();
}

export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value) + '\n');
}

export function sendJson(reply: FastifyReply, status: number, value: unknown): FastifyReply {
  // A Buffer payload keeps the content type as set; a string would get a charset appended.
  return reply.code(status).header('content-type', JSON_TYPE).send(jsonBytes(value));
}

/** JSON already serialised (the engine's cached views): sent as it is. */
export function sendJsonBytes(reply: FastifyReply, status: number, body: Buffer): FastifyReply {
  return reply.code(status).header('content-type', JSON_TYPE).send(body);
}

export function sendEmpty(reply: FastifyReply, status: number): FastifyReply {
  return reply.code(status).send();
}

/** Status and message of any error: BerthError kinds (walking `cause`), fastify's own 4xx. */
export function errorStatus(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode;
  // fastify's parser and validation errors (FST_ERR_CTP_*, FST_ERR_VALIDATION): Docker answers 400.
  if (typeof code === 'string' && code.startsWith('FST_') && typeof statusCode === 'number' && statusCode < 500) return 400;
  return httpStatusOfKind[kindOf(err)];
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Takes the response away from fastify and sends the status line and headers at once, so a
 * client that waits for headers (wait, events, logs -f) is not held up by a body that comes
 * later. The common headers set by the onRequest hook are kept.
 */
export function openStream(reply: FastifyReply, status: number, contentType: string | undefined): ServerResponse {
  const headers: Record<string, string | string[] | number> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v as string | string[] | number;
  if (contentType !== undefined) headers['content-type'] = contentType;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(status, headers);
  res.flushHeaders();
  return res;
}

/**
 * Bytes a streamed response may hold for a client that does not read before berthd gives up on
 * it: an events subscriber is dropped past this, so a stalled client cannot grow the daemon.
 */
export const EVENTS_BACKLOG_LIMIT = 1 << 20;
/** The same for a JSON message stream (pull, push, import, load), whose ticks are dropped first. */
export const MESSAGE_BACKLOG_LIMIT = 8 << 20;

/**
 * Writes one message of a JSON message stream (`\r\n` separated). The engine's progress
 * callbacks cannot wait for 'drain', so while the client is behind, progress ticks (messages with
 * a `progressDetail.current`) are dropped: the next tick carries the current state. Past
 * MESSAGE_BACKLOG_LIMIT unsent bytes the client is cut off.
 */
export function writeMessage(res: ServerResponse, msg: JsonMessage): void {
  if (res.destroyed) return;
  if (res.writableNeedDrain && msg.progressDetail?.current !== undefined) return;
  if (res.writableLength > MESSAGE_BACKLOG_LIMIT) {
    res.destroy();
    return;
  }
  res.write(JSON.stringify(msg) + '\r\n');
}

/**
 * A JSON message stream (engine-api.md §7.2): objects separated by `\r\n`. The head goes out
 * with the first message, so an error before any output is still a normal error status.
 */
export class MessageStream {
  private res: ServerResponse | undefined;
  constructor(private readonly reply: FastifyReply) {}
  get started(): boolean {
    return this.res !== undefined;
  }
  write(msg: JsonMessage): void {
    this.res ??= openStream(this.reply, 200, JSON_TYPE);
    writeMessage(this.res, msg);
  }
  end(): void {
    this.res ??= openStream(this.reply, 200, JSON_TYPE);
    this.res.end();
  }
}
