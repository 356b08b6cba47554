/** Resource routes of a container: `POST /containers/{id}/update` and `GET /containers/{id}/stats`. */
import type { FastifyInstance } from 'fastify';
import { BerthError } from '@berth/errors';
import type { ContainerUpdateBody } from '@berth/engine';
import { bool } from '../../http/query.js';
import { JSON_TYPE, jsonBytes, openStream, sendJson } from '../../http/reply.js';
import { paramsOf, queryOf, type RouteDeps } from '../deps.js';

export function containerResourceRoutes(app: FastifyInstance, { engine }: RouteDeps): void {
  app.post('/containers/:id/update', async (req, reply) => {
    const body = req.body;
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body))
      throw new BerthError('BERTH_INVALID_ARGUMENT', 'invalid update body: expected a JSON object', { details: { field: 'body' } });
    return sendJson(reply, 200, await engine.updateContainer(paramsOf(req).id!, body as ContainerUpdateBody));
  });

  app.get('/containers/:id/stats', async (req, reply) => {
    const q = queryOf(req);
    const stream = bool(q, 'stream', true);
    const oneShot = bool(q, 'one-shot');
    if (oneShot && stream) throw new BerthError('BERTH_INVALID_ARGUMENT', 'cannot have stream=true and one-shot=true', { details: { field: 'one-shot' } });
    const abort = new AbortController();
    // 404 for an unknown container comes from here, before any header.
    const objects = await engine.containerStats(paramsOf(req).id!, { stream, oneShot }, abort.signal);
    const res = openStream(reply, 200, JSON_TYPE);
    res.on('close', () => abort.abort());
    try {
      for await (const o of objects) {
        if (res.destroyed) break;
        // A client that stopped reading is dropped rather than buffered for.
        if (res.writableLength > 1 << 20) {
          res.destroy();
          break;
        }
        res.write(jsonBytes(o));
      }
    } catch (err) {
      req.log.info({ err }, 'stats stream ended with an error');
    } finally {
      abort.abort();
      if (!res.destroyed) res.end();
    }
  });
}
