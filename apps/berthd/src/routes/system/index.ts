import { API_VERSION, parseFilters } from '@berth/api/wire';
import { BerthError } from '@berth/errors';
import type { FastifyReply } from 'fastify';
import type { RouteDeps } from '../deps.js';
import { queryOf } from '../deps.js';
import type { FastifyInstance } from 'fastify';
import { str, timestamp } from '../../http/query.js';
import { EVENTS_BACKLOG_LIMIT, JSON_TYPE, openStream, sendJson } from '../../http/reply.js';

/** `builder`: the engine has the classic builder (`Builder-Version: 1`, as dockerd without BuildKit). */
function pingHeaders(reply: FastifyReply, builder: boolean): FastifyReply {
  if (builder) reply.header('builder-version', '1');
  return reply
    .header('api-version', API_VERSION)
    .header('swarm', 'inactive')
    .header('cache-control', 'no-cache, no-store, must-revalidate')
    .header('pragma', 'no-cache')
    .header('content-type', 'text/plain; charset=utf-8');
}

export function systemRoutes(app: FastifyInstance, { engine }: RouteDeps): void {
  const builder = engine.buildImage !== undefined;
  app.get('/_ping', async (_req, reply) => pingHeaders(reply, builder).code(200).send('OK'));
  app.head('/_ping', async (_req, reply) => pingHeaders(reply, builder).header('content-length', '0').code(200).send());

  app.get('/version', async (_req, reply) => sendJson(reply, 200, engine.version()));

  // docker login: the credentials are checked against the registry; the CLI stores them.
  app.post('/auth', async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) throw new BerthError('BERTH_INVALID_ARGUMENT', 'the body must be a JSON object', { details: { field: 'body' } });
    const auth: Record<string, string> = {};
    for (const key of ['username', 'password', 'auth', 'email', 'serveraddress', 'identitytoken', 'registrytoken']) {
      const v = body[key] ?? body[key.charAt(0).toUpperCase() + key.slice(1)];
      if (typeof v === 'string' && v !== '') auth[key] = v;
    }
    try {
      return sendJson(reply, 200, await engine.login(auth));
    } catch (err) {
      // Docker answers a refused login with 401 (the CLI prints the message either way).
      if (err instanceof BerthError && err.code === 'BERTH_REGISTRY_UNAUTHORIZED') return sendJson(reply, 401, { message: err.message });
      throw err;
    }
  });
  app.get('/info', async (_req, reply) => sendJson(reply, 200, await engine.info()));

  app.get('/events', async (req, reply) => {
    const q = queryOf(req);
    const opts = { since: timestamp(q, 'since'), until: timestamp(q, 'until'), filters: parseFilters(str(q, 'filters')) };
    const abort = new AbortController();
    const res = openStream(reply, 200, JSON_TYPE);
    res.on('close', () => abort.abort());
    try {
      for await (const ev of engine.events(opts, abort.signal)) {
        if (res.destroyed) break;
        // A client that does not read is dropped once its backlog passes the limit.
        if (res.writableLength > EVENTS_BACKLOG_LIMIT) {
          req.log.warn({ backlog: res.writableLength }, 'events client is not reading: dropping it');
          res.destroy();
          break;
        }
        res.write(JSON.stringify(ev) + '\n');
      }
    } catch (err) {
      if (!abort.signal.aborted) req.log.warn({ err }, 'events stream ended by an error');
    } finally {
      abort.abort();
      res.end();
    }
  });
}
