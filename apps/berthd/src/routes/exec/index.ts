import type { FastifyInstance } from 'fastify';
import { BerthError } from '@berth/errors';
import type { ExecCreateBody, ExecStartBody } from '@berth/api/wire';
import { serveSession } from '../../http/hijack.js';
import { checkBodyOf } from '../../http/schemas.js';
import { sendEmpty, sendJson } from '../../http/reply.js';
import { resizeArgs } from '../containers/index.js';
import { paramsOf, queryOf, type RouteDeps } from '../deps.js';

export async function execStartBody(body: unknown): Promise<ExecStartBody> {
  return (await checkBodyOf('ExecStartBodySchema', body)) as ExecStartBody;
}

export function execRoutes(app: FastifyInstance, { engine, headers }: RouteDeps): void {
  app.post('/containers/:id/exec', async (req, reply) => {
    const body = (await checkBodyOf('ExecCreateBodySchema', req.body)) as ExecCreateBody;
    const cmd = typeof body.Cmd === 'string' ? [body.Cmd] : body.Cmd;
    if (!cmd || cmd.length === 0) throw new BerthError('BERTH_INVALID_ARGUMENT', 'No exec command specified', { details: { field: 'Cmd' } });
    return sendJson(reply, 201, await engine.createExec(paramsOf(req).id!, body));
  });

  // Exec start without an Upgrade header (with one, the server's 'upgrade' event serves it).
  app.post('/exec/:id/start', async (req, reply) => {
    const session = await engine.startExec(paramsOf(req).id!, await execStartBody(req.body));
    if (session === null) return sendEmpty(reply, 200);
    reply.hijack();
    await serveSession(session, { socket: req.raw.socket, upgrade: false, apiVersion: req.apiVersion, headers }, req.log);
  });

  app.post('/exec/:id/resize', async (req, reply) => {
    const { h, w } = resizeArgs(queryOf(req));
    await engine.resizeExec(paramsOf(req).id!, h, w);
    return sendEmpty(reply, 200);
  });

  app.get('/exec/:id/json', async (req, reply) => sendJson(reply, 200, await engine.inspectExec(paramsOf(req).id!)));
}
