import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { BerthError } from '@berth/errors';
import type { Engine, StreamSession } from '@berth/engine';
import type { Logger } from '@berth/log';
import { attachOptions } from '../routes/containers/index.js';
import { execStartBody } from '../routes/exec/index.js';
import { authorizeUpgrade, type AuthzChain } from './authz.js';
import type { Query } from './query.js';
import { errorMessage, errorStatus } from './reply.js';
import { serveSession, readUpgradeBody, writeRawJsonResponse } from './hijack.js';
import { checkVersion, splitVersion } from './version.js';

/** Bodies on the upgrade path are small JSON objects (exec start). */
const UPGRADE_BODY_LIMIT = 64 * 1024;

interface UpgradeRoute {
  pattern: RegExp;
  open(engine: Engine, id: string, query: Query, body: () => Promise<unknown>): Promise<StreamSession | null>;
}

const routes: UpgradeRoute[] = [
  { pattern: /^\/containers\/([^/]+)\/attach$/, open: (engine, id, q) => engine.attachContainer(id, attachOptions(q)) },
  { pattern: /^\/exec\/([^/]+)\/start$/, open: async (engine, id, _q, body) => engine.startExec(id, await execStartBody(await body())) },
];

function queryObject(params: URLSearchParams): Query {
  const q: Query = {};
  for (const [k, v] of params) {
    const prev = q[k];
    q[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return q;
}

function parseJsonBody(buf: Buffer): unknown {
  if (buf.length === 0) return undefined;
  return JSON.parse(buf.toString('utf8')) as unknown;
}

/**
 * Serves a request that carried `Connection: Upgrade` (node hands those to the server's
 * 'upgrade' event, never to fastify): attach and exec start. Errors before the hijack are
 * normal JSON error responses; after it they are written in the stream.
 */
export function createUpgradeHandler(deps: { engine: Engine; logger: Logger; headers: Record<string, string>; sockets: Set<Duplex>; authz?: AuthzChain }) {
  let seq = 0;
  return async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    const log = deps.logger.child({ reqId: `upgrade-${++seq}` });
    deps.sockets.add(socket);
    socket.once('close', () => deps.sockets.delete(socket));
    socket.on('error', (err) => log.debug({ err }, 'hijacked socket error'));
    const fail = (status: number, message: string): void => writeRawJsonResponse(socket, status, { message }, deps.headers);
    try {
      const { version, url } = splitVersion(req.url ?? '/');
      const parsed = new URL(url, 'http://berthd');
      const route = req.method === 'POST' ? routes.find((r) => r.pattern.test(parsed.pathname)) : undefined;
      if (!route) return fail(404, 'page not found');
      let bodyRead = false;
      let rawBody: Promise<Buffer> | undefined;
      const readRaw = (): Promise<Buffer> => {
        bodyRead = true;
        return (rawBody ??= readUpgradeBody(req, socket, head, UPGRADE_BODY_LIMIT));
      };
      // Before the version check and the hijack, as dockerd's authz middleware: AuthZReq only.
      if (deps.authz !== undefined) {
        const shown = (): Promise<Buffer> =>
          readRaw().catch((err: unknown) => {
            throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid request body: ${errorMessage(err)}`, { cause: err, details: { field: 'body' } });
          });
        await authorizeUpgrade(deps.authz, req, shown);
      }
      const apiVersion = checkVersion(version);
      let id: string;
      try {
        id = decodeURIComponent(route.pattern.exec(parsed.pathname)![1]!);
      } catch {
        throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid escape in ${parsed.pathname}`, { details: { field: 'path' } });
      }
      const body = async (): Promise<unknown> => {
        try {
          return parseJsonBody(await readRaw());
        } catch (err) {
          throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid request body: ${errorMessage(err)}`, { cause: err, details: { field: 'body' } });
        }
      };
      log.debug({ method: req.method, url: req.url }, 'upgrade request');
      const session = await route.open(deps.engine, id, queryObject(parsed.searchParams), body);
      if (session === null) {
        // exec start with Detach: a plain 200 with no body.
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      // Bytes that came with the request (stdin sent before the 101) belong to the session.
      if (!bodyRead && head.length > 0) socket.unshift(head);
      // The http server is allowHalfOpen: a client's half-close must not keep the socket forever.
      await serveSession(session, { socket, upgrade: true, apiVersion, headers: deps.headers }, log);
    } catch (err) {
      const status = errorStatus(err);
      if (status >= 500) log.error({ err }, 'upgrade request failed');
      else log.info({ err, status }, 'upgrade request failed');
      if (!socket.destroyed) fail(status, errorMessage(err));
    }
  };
}
