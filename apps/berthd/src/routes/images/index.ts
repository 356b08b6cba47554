import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BerthError } from '@berth/errors';
import { parseFilters } from '@berth/api/wire';
import { all, bool, str, type Query } from '../../http/query.js';
import { MessageStream, errorMessage, sendJson } from '../../http/reply.js';
import { versionAtLeast } from '../../http/version.js';
import { paramsOf, queryOf, type RouteDeps } from '../deps.js';
import { pullRoute, pushRoute } from './registry.js';
import { loadRoute, saveNames, saveRoute } from './archive.js';
import { countBytes, openUrlSource, type UrlSource } from './url-source.js';

const pageNotFound = (reply: FastifyReply): FastifyReply => sendJson(reply, 404, { message: 'page not found' });


async function importImage({ engine }: RouteDeps, req: FastifyRequest, reply: FastifyReply, q: Query): Promise<void> {
  const src = str(q, 'fromSrc') ?? '-';
  let tar: Readable = req.raw;
  let message = str(q, 'message') ?? '';
  let source: UrlSource | undefined;
  if (src !== '-') {
    // Docker: the tarball comes from the URL; a body sent along is ignored.
    req.raw.resume();
    source = await openUrlSource(src);
    if (message === '') message = `Imported from ${source.url}`;
  }
  const out = new MessageStream(reply);
  try {
    if (source !== undefined) {
      const { total } = source;
      out.write({ status: `Downloading from ${source.url}` });
      const counter = countBytes((current) =>
        out.write({ status: 'Importing', progressDetail: total >= 0 ? { current, total } : { current }, progress: progressText(current, total) }),
      );
      source.body.on('error', (err) => counter.destroy(err));
      tar = source.body.pipe(counter);
      reply.raw.on('close', () => source!.body.destroy());
    }
    const id = await engine.importImage(
      tar,
      { repo: str(q, 'repo') ?? '', tag: str(q, 'tag') ?? '', message, changes: all(q, 'changes') },
      (msg) => out.write(msg),
    );
    out.write({ status: id });
    out.end();
  } catch (err) {
    source?.body.destroy();
    if (!out.started) throw err;
    req.log.info({ err }, 'import failed after the stream started');
    const message = errorMessage(err);
    out.write({ errorDetail: { message }, error: message });
    out.end();
  }
}

/** Docker's progress text: `[==>   ]  1.05MB/2.1MB`, or the bytes alone without a total. */
function progressText(current: number, total: number): string {
  const size = (n: number): string => {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    let v = n;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return `${Number(v.toPrecision(4))}${units[i]}`;
  };
  if (total <= 0) return size(current).padStart(8);
  const bars = Math.min(50, Math.floor((50 * current) / total));
  return `[${'='.repeat(bars)}>${' '.repeat(50 - bars)}] ${size(current).padStart(8)}/${size(total)}`;
}

/**
 * An image list as an older API version has it: `VirtualSize` (the size) before 1.44, and before
 * 1.43 `<none>:<none>` / `<none>@<none>` for an image with no tag and no digest.
 */
export function imagesForVersion<T extends { Size: number; RepoTags: string[]; RepoDigests: string[] }>(list: T[], version: string): T[] {
  if (versionAtLeast(version, '1.44')) return list;
  return list.map((i) => {
    const untagged = !versionAtLeast(version, '1.43') && i.RepoTags.length === 0 && i.RepoDigests.length === 0;
    return { ...i, ...(untagged ? { RepoTags: ['<none>:<none>'], RepoDigests: ['<none>@<none>'] } : {}), VirtualSize: i.Size };
  });
}

export function imageRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { engine } = deps;

  app.get('/images/json', async (req, reply) => {
    const q = queryOf(req);
    const list = await engine.listImages({ all: bool(q, 'all'), filters: parseFilters(str(q, 'filters')) });
    return sendJson(reply, 200, imagesForVersion(list, req.apiVersion));
  });

  // Raw bodies: `docker import` sends its tar as text/plain, `docker load` as application/x-tar.
  void app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

    raw.post('/images/create', async (req, reply) => {
      const q = queryOf(req);
      const fromImage = str(q, 'fromImage');
      if (fromImage !== undefined && fromImage !== '') return pullRoute(deps, req, reply, q);
      if (str(q, 'fromSrc') === undefined)
        throw new BerthError('BERTH_INVALID_ARGUMENT', 'fromImage or fromSrc is required', { details: { field: 'fromSrc' } });
      return importImage(deps, req, reply, q);
    });
    raw.post('/images/load', async (req, reply) => loadRoute(deps, req, reply, queryOf(req)));
  });

  app.get('/images/get', async (req, reply) => saveRoute(deps, req, reply, saveNames(queryOf(req))));

  // Image names contain slashes (`library/busybox:latest`): one wildcard, dispatched on the suffix.
  app.get('/images/*', async (req, reply) => {
    const path = paramsOf(req)['*'] ?? '';
    if (path.endsWith('/json') && path.length > 5) {
      const image = await engine.inspectImage(path.slice(0, -5));
      // Before 1.44 an image's inspect has VirtualSize (the size) too.
      return sendJson(reply, 200, versionAtLeast(req.apiVersion, '1.44') ? image : { ...image, VirtualSize: image.Size });
    }
    if (path.endsWith('/get') && path.length > 4) return saveRoute(deps, req, reply, [path.slice(0, -4)]);
    if (path.endsWith('/history') && path.length > 8) return sendJson(reply, 200, await engine.imageHistory(path.slice(0, -8)));
    return pageNotFound(reply);
  });

  app.post('/images/*', async (req, reply) => {
    const path = paramsOf(req)['*'] ?? '';
    if (path.endsWith('/tag') && path.length > 4) {
      const q = queryOf(req);
      await engine.tagImage(path.slice(0, -4), str(q, 'repo') ?? '', str(q, 'tag') ?? '');
      return reply.code(201).send();
    }
    if (path.endsWith('/push') && path.length > 5) return pushRoute(deps, req, reply, path.slice(0, -5), queryOf(req));
    return pageNotFound(reply);
  });

  app.delete('/images/*', async (req, reply) => {
    const path = paramsOf(req)['*'] ?? '';
    if (path === '') return pageNotFound(reply);
    const q = queryOf(req);
    return sendJson(reply, 200, await engine.removeImage(path, { force: bool(q, 'force'), noprune: bool(q, 'noprune') }));
  });
}
