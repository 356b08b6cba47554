/** `docker save` and `docker load`: GET /images/get, GET /images/{name}/get, POST /images/load. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { JsonMessage } from '@berth/api/wire';
import { BerthError } from '@berth/errors';
import { all, bool, type Query } from '../../http/query.js';
import { JSON_TYPE, errorMessage, openStream, writeMessage } from '../../http/reply.js';
import type { RouteDeps } from '../deps.js';

/**
 * The image tarball. Every name is resolved before the head goes out (a missing image is a 404);
 * an error after that is appended to the body as a JSON error message, as Docker does.
 */
export async function saveRoute({ engine }: RouteDeps, req: FastifyRequest, reply: FastifyReply, names: string[]): Promise<void> {
  if (names.length === 0) throw new BerthError('BERTH_INVALID_ARGUMENT', 'no image names given', { details: { field: 'names' } });
  const tar = await engine.saveImages(names);
  const res = openStream(reply, 200, 'application/x-tar');
  res.on('close', () => tar.destroy());
  tar.on('error', (err) => {
    req.log.warn({ err }, 'save stream failed');
    if (res.destroyed) return;
    const message = errorMessage(err);
    res.end(JSON.stringify({ errorDetail: { message }, error: message }) + '\r\n');
  });
  tar.pipe(res);
}

export function saveNames(q: Query): string[] {
  return all(q, 'names').filter((n) => n !== '');
}

/** A JSON message stream whose head goes out with the first message (errors before it keep their status). */
export async function loadRoute({ engine }: RouteDeps, req: FastifyRequest, reply: FastifyReply, q: Query): Promise<void> {
  let res: ServerResponse | undefined;
  const write = (msg: JsonMessage): void => {
    res ??= openStream(reply, 200, JSON_TYPE);
    writeMessage(res, msg);
  };
  try {
    // Docker's default is quiet when the query does not say.
    await engine.loadImages(req.raw, { quiet: bool(q, 'quiet', true) }, write);
    res ??= openStream(reply, 200, JSON_TYPE);
    res.end();
  } catch (err) {
    if (res === undefined) {
      req.raw.resume();
      throw err;
    }
    req.log.info({ err }, 'load failed after the stream started');
    const message = errorMessage(err);
    write({ errorDetail: { message }, error: message });
    res.end();
  }
}
