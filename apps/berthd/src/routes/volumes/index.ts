import type { FastifyInstance } from 'fastify';
import { BerthError } from '@berth/errors';
import { parseFilters } from '@berth/api/wire';
import type { VolumeCreateRequest } from '@berth/engine';
import { bool, str } from '../../http/query.js';
import { sendEmpty, sendJson } from '../../http/reply.js';
import { paramsOf, queryOf, type RouteDeps } from '../deps.js';

const invalid = (field: string, message: string): BerthError => new BerthError('BERTH_INVALID_ARGUMENT', message, { details: { field } });

function stringMap(v: unknown, field: string): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(field, `${field} must be an object of strings`);
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw invalid(`${field}.${k}`, `${field}.${k} must be a string`);
  return v as Record<string, string>;
}

/** The create body (Docker's volume.CreateOptions); an absent body is an anonymous local volume, as with `docker volume create`. */
function createRequest(body: unknown): VolumeCreateRequest {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw invalid('body', 'volume create: the body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of ['Name', 'Driver'] as const) if (b[k] !== undefined && b[k] !== null && typeof b[k] !== 'string') throw invalid(k, `${k} must be a string`);
  return {
    ...(typeof b.Name === 'string' && b.Name ? { Name: b.Name } : {}),
    ...(typeof b.Driver === 'string' && b.Driver ? { Driver: b.Driver } : {}),
    DriverOpts: stringMap(b.DriverOpts, 'DriverOpts'),
    Labels: stringMap(b.Labels, 'Labels'),
  };
}

export function volumeRoutes(app: FastifyInstance, { engine }: RouteDeps): void {
  app.get('/volumes', async (req, reply) => sendJson(reply, 200, await engine.listVolumes(parseFilters(str(queryOf(req), 'filters')))));

  app.post('/volumes/create', async (req, reply) => sendJson(reply, 201, await engine.createVolume(createRequest(req.body))));

  app.post('/volumes/prune', async (req, reply) => sendJson(reply, 200, await engine.pruneVolumes(parseFilters(str(queryOf(req), 'filters')), req.apiVersion)));

  app.get('/volumes/:name', async (req, reply) => sendJson(reply, 200, await engine.inspectVolume(paramsOf(req).name!)));

  app.delete('/volumes/:name', async (req, reply) => {
    await engine.removeVolume(paramsOf(req).name!, { force: bool(queryOf(req), 'force') });
    return sendEmpty(reply, 204);
  });
}
