import type { FastifyInstance } from 'fastify';
import { BerthError } from '@berth/errors';
import { parseFilters, type NetworkConnectRequest, type NetworkCreateRequest, type NetworkDisconnectRequest } from '@berth/api/wire';
import { str } from '../../http/query.js';
import { sendEmpty, sendJson } from '../../http/reply.js';
import { paramsOf, queryOf, type RouteDeps } from '../deps.js';

const invalid = (field: string, message: string): BerthError => new BerthError('BERTH_INVALID_ARGUMENT', message, { details: { field } });

function object(body: unknown, what: string): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('body', `${what}: the body must be a JSON object`);
  return body as Record<string, unknown>;
}

function stringMap(v: unknown, field: string): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(field, `${field} must be an object of strings`);
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw invalid(`${field}.${k}`, `${field}.${k} must be a string`);
  return v as Record<string, string>;
}

function createRequest(body: unknown): NetworkCreateRequest {
  const b = object(body, 'network create');
  if (typeof b.Name !== 'string') throw invalid('Name', 'network name is required');
  for (const k of ['Driver', 'Scope'] as const) if (b[k] !== undefined && b[k] !== null && typeof b[k] !== 'string') throw invalid(k, `${k} must be a string`);
  for (const k of ['EnableIPv6', 'Internal', 'Attachable', 'Ingress', 'ConfigOnly', 'CheckDuplicate'] as const) {
    if (b[k] !== undefined && b[k] !== null && typeof b[k] !== 'boolean') throw invalid(k, `${k} must be a boolean`);
  }
  const ipam = b.IPAM === undefined || b.IPAM === null ? null : object(b.IPAM, 'IPAM');
  const config = ipam?.Config ?? [];
  if (!Array.isArray(config)) throw invalid('IPAM.Config', 'IPAM.Config must be an array');
  config.forEach((c: unknown, i: number) => {
    const e = object(c, `IPAM.Config[${i}]`);
    for (const k of ['Subnet', 'IPRange', 'Gateway']) if (e[k] !== undefined && typeof e[k] !== 'string') throw invalid(`IPAM.Config[${i}].${k}`, `${k} must be a string`);
    stringMap(e.AuxiliaryAddresses, `IPAM.Config[${i}].AuxiliaryAddresses`);
  });
  return {
    Name: b.Name,
    ...(typeof b.Driver === 'string' ? { Driver: b.Driver } : {}),
    ...(b.EnableIPv6 === true ? { EnableIPv6: true } : {}),
    IPAM: { Driver: typeof ipam?.Driver === 'string' ? ipam.Driver : 'default', Options: stringMap(ipam?.Options, 'IPAM.Options'), Config: config as NonNullable<NetworkCreateRequest['IPAM']>['Config'] },
    Internal: b.Internal === true,
    Attachable: b.Attachable === true,
    Ingress: b.Ingress === true,
    ConfigOnly: b.ConfigOnly === true,
    ConfigFrom: (b.ConfigFrom as NetworkCreateRequest['ConfigFrom']) ?? null,
    Options: stringMap(b.Options, 'Options'),
    Labels: stringMap(b.Labels, 'Labels'),
  };
}

export function networkRoutes(app: FastifyInstance, { engine }: RouteDeps): void {
  app.post('/networks/create', async (req, reply) => sendJson(reply, 201, await engine.createNetwork(createRequest(req.body))));

  app.get('/networks', async (req, reply) => sendJson(reply, 200, engine.listNetworks(parseFilters(str(queryOf(req), 'filters')))));

  app.get('/networks/:id', async (req, reply) => sendJson(reply, 200, engine.inspectNetwork(paramsOf(req).id!)));

  app.delete('/networks/:id', async (req, reply) => {
    await engine.removeNetwork(paramsOf(req).id!);
    return sendEmpty(reply, 204);
  });

  app.post('/networks/prune', async (req, reply) => sendJson(reply, 200, await engine.pruneNetworks(parseFilters(str(queryOf(req), 'filters')))));

  app.post('/networks/:id/connect', async (req, reply) => {
    const b = object(req.body, 'network connect');
    if (typeof b.Container !== 'string' || !b.Container) throw invalid('Container', 'a container name or id is required');
    await engine.connectNetwork(paramsOf(req).id!, b as unknown as NetworkConnectRequest);
    return sendEmpty(reply, 200);
  });

  app.post('/networks/:id/disconnect', async (req, reply) => {
    const b = object(req.body, 'network disconnect') as unknown as NetworkDisconnectRequest;
    if (typeof b.Container !== 'string' || !b.Container) throw invalid('Container', 'a container name or id is required');
    await engine.disconnectNetwork(paramsOf(req).id!, b.Container, b.Force === true);
    return sendEmpty(reply, 200);
  });
}
