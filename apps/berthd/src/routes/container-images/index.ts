import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BerthError } from '@berth/errors';
import { parseFilters } from '@berth/api/wire';
import type { CommitBody, ContainerPathStat } from '@berth/engine';
import { all, bool, str } from '../../http/query.js';
import { openStream, sendJson } from '../../http/reply.js';
import { paramsOf, queryOf, type RouteDeps } from '../deps.js';

const STAT_HEADER = 'X-Docker-Container-Path-Stat';

function statHeader(stat: ContainerPathStat): string {
  return Buffer.from(JSON.stringify(stat)).toString('base64');
}

function pathOf(req: FastifyRequest): string {
  const p = str(queryOf(req), 'path');
  if (p === undefined || p === '') throw new BerthError('BERTH_INVALID_ARGUMENT', 'path is required', { details: { field: 'path' } });
  return p;
}

/**
 * Container-image routes: changes (diff), commit, archive (cp), image prune, system df.
 * History is dispatched from the images wildcard route (names hold slashes).
 */
export function containerImageRoutes(app: FastifyInstance, { engine }: RouteDeps): void {
  app.get('/containers/:id/changes', async (req, reply) => sendJson(reply, 200, await engine.containerChanges(paramsOf(req).id!)));

  app.post('/commit', async (req, reply) => {
    const q = queryOf(req);
    const container = str(q, 'container') ?? '';
    if (container === '') throw new BerthError('BERTH_INVALID_ARGUMENT', 'container is required', { details: { field: 'container' } });
    const raw = req.body as unknown;
    if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw)))
      throw new BerthError('BERTH_INVALID_ARGUMENT', 'invalid JSON body: a container config object is expected', { details: { field: 'body' } });
    const body: CommitBody = {
      repo: str(q, 'repo') ?? '',
      tag: str(q, 'tag') ?? '',
      comment: str(q, 'comment') ?? '',
      author: str(q, 'author') ?? '',
      pause: bool(q, 'pause', true),
      changes: all(q, 'changes').flatMap((c) => c.split('\n')),
      config: (raw ?? null) as CommitBody['config'],
    };
    const id = await engine.commitContainer(container, body);
    return sendJson(reply, 201, { Id: id });
  });

  app.head('/containers/:id/archive', async (req, reply) => {
    const stat = await engine.statContainerPath(paramsOf(req).id!, pathOf(req));
    return reply.code(200).header(STAT_HEADER, statHeader(stat)).header('content-type', 'application/x-tar').send();
  });

  app.get('/containers/:id/archive', async (req, reply: FastifyReply) => {
    const { stat, tar } = await engine.getContainerArchive(paramsOf(req).id!, pathOf(req));
    reply.header(STAT_HEADER, statHeader(stat));
    const res = openStream(reply, 200, 'application/x-tar');
    res.on('close', () => tar.destroy());
    tar.on('error', (err) => {
      req.log.warn({ err }, 'archive stream failed');
      res.destroy(err);
    });
    tar.pipe(res);
  });

  // The tar body streams to the extraction: no parser, no body limit.
  void app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    raw.put('/containers/:id/archive', async (req, reply) => {
      const q = queryOf(req);
      await engine.putContainerArchive(paramsOf(req).id!, pathOf(req), req.raw, { noOverwriteDirNonDir: bool(q, 'noOverwriteDirNonDir') });
      return reply.code(200).send();
    });
  });

  app.post('/images/prune', async (req, reply) => sendJson(reply, 200, await engine.pruneImages(parseFilters(str(queryOf(req), 'filters')))));

  app.get('/system/df', async (_req, reply) => sendJson(reply, 200, await engine.systemDf()));
}
