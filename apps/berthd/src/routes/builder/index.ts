/**
 * `POST /build` (the classic builder: the body is the context tar, plain or gzip) and
 * `POST /build/prune`. The query is checked before the body is read: a bad `buildargs`,
 * `labels` or tag is a 400 as dockerd answers; once the stream has started, a failure is the
 * last message, `{"errorDetail":{"code":N,"message":...},"error":...}`, with status 200.
 */
import type { FastifyInstance } from 'fastify';
import { parseFilters } from '@berth/api/wire';
import { BerthError } from '@berth/errors';
import { checkBuildOptions, decodeRegistryConfig, defaultBuildOptions, type BuildOptions } from '@berth/engine';
import { all, bool, str, type Query } from '../../http/query.js';
import { MessageStream, errorMessage, sendJson } from '../../http/reply.js';
import { headerOf, queryOf, type RouteDeps } from '../deps.js';

function jsonMap(q: Query, key: string, what: string): Record<string, string | null> {
  const raw = str(q, key);
  if (raw === undefined || raw === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (err) {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `error reading ${what}: ${(err as Error).message}`, { details: { field: key } });
  }
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v as object).some((x) => x !== null && typeof x !== 'string'))
    throw new BerthError('BERTH_INVALID_ARGUMENT', `error reading ${what}: a JSON object of strings is expected`, { details: { field: key } });
  return v as Record<string, string | null>;
}

function int64(q: Query, key: string): number {
  const raw = str(q, key);
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid value for ${key}: ${JSON.stringify(raw)}`, { details: { field: key } });
  return n;
}

/** The RUN containers' resources and hosts, as dockerd's build takes them (zero = unset). */
function runHostConfig(q: Query): Record<string, unknown> {
  const hc: Record<string, unknown> = {};
  for (const [key, field] of [
    ['memory', 'Memory'],
    ['memswap', 'MemorySwap'],
    ['cpushares', 'CpuShares'],
    ['cpuperiod', 'CpuPeriod'],
    ['cpuquota', 'CpuQuota'],
    ['shmsize', 'ShmSize'],
  ] as const) {
    const n = int64(q, key);
    if (n !== 0) hc[field] = n;
  }
  for (const [key, field] of [
    ['cpusetcpus', 'CpusetCpus'],
    ['cpusetmems', 'CpusetMems'],
    ['cgroupparent', 'CgroupParent'],
  ] as const) {
    const v = str(q, key);
    if (v) hc[field] = v;
  }
  const hosts = all(q, 'extrahosts').filter((h) => h !== '');
  if (hosts.length) hc.ExtraHosts = hosts;
  const sec = all(q, 'securityopt').filter((h) => h !== '');
  if (sec.length) hc.SecurityOpt = sec;
  const ulimits = str(q, 'ulimits');
  if (ulimits !== undefined && ulimits !== '' && ulimits !== 'null') {
    let v: unknown;
    try {
      v = JSON.parse(ulimits);
    } catch (err) {
      throw new BerthError('BERTH_INVALID_ARGUMENT', `error reading ulimits: ${(err as Error).message}`, { details: { field: 'ulimits' } });
    }
    if (Array.isArray(v) && v.length) hc.Ulimits = v;
  }
  return hc;
}

/** The query as BuildOptions (Docker's names: `t` repeats, `rm` defaults to true). */
export function buildOptionsOf(q: Query): BuildOptions {
  const o = defaultBuildOptions();
  o.dockerfile = str(q, 'dockerfile') ?? '';
  o.tags = all(q, 't').filter((t) => t !== '');
  o.buildArgs = jsonMap(q, 'buildargs', 'build args');
  o.labels = Object.fromEntries(Object.entries(jsonMap(q, 'labels', 'labels')).map(([k, v]) => [k, v ?? '']));
  o.quiet = bool(q, 'q');
  o.noCache = bool(q, 'nocache');
  o.rm = bool(q, 'rm', true);
  o.forceRm = bool(q, 'forcerm');
  o.pull = bool(q, 'pull');
  o.target = str(q, 'target') ?? '';
  o.networkMode = str(q, 'networkmode') ?? '';
  o.platform = str(q, 'platform') ?? '';
  o.hostConfig = runHostConfig(q);
  const version = str(q, 'version');
  if (version === '2') throw new BerthError('BERTH_NOT_IMPLEMENTED', 'BuildKit is not supported by Berth: use the classic builder (DOCKER_BUILDKIT=0)', { details: { field: 'version' } });
  if (str(q, 'remote') !== undefined && str(q, 'remote') !== '')
    throw new BerthError('BERTH_INVALID_ARGUMENT', 'a remote build context (remote=) is not supported by Berth: send the context as the request body', { details: { field: 'remote' } });
  checkBuildOptions(o);
  return o;
}

export function buildRoutes(app: FastifyInstance, { engine }: RouteDeps): void {
  void app.register(async (raw) => {
    // The context tar streams to the builder: no parser, no body limit.
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    raw.post('/build', async (req, reply) => {
      const opts = buildOptionsOf(queryOf(req));
      opts.registryConfig = decodeRegistryConfig(headerOf(req, 'x-registry-config'));
      if (engine.buildImage === undefined) throw new BerthError('BERTH_NOT_IMPLEMENTED', 'this engine has no image builder', {});
      const out = new MessageStream(reply);
      // The client went away before the end (docker build interrupted): the build is canceled.
      const cancel = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) cancel.abort();
      });
      opts.signal = cancel.signal;
      try {
        const id = await engine.buildImage(req.raw, opts, (m) => out.write(m));
        // Quiet: only the id (dockerd writes it as a stream message; the docker CLI prints it).
        if (opts.quiet) out.write({ stream: `${id}\n` });
        out.end();
      } catch (err) {
        // Quiet builds write nothing before the end: a failed step still goes in the stream.
        if (!out.started && !(opts.quiet && (err as { code?: string }).code === 'BERTH_BUILD_STEP_FAILED')) throw err;
        req.log.info({ err }, 'build failed after the stream started');
        const message = errorMessage(err);
        const code = (err as { details?: { exitCode?: unknown } }).details?.exitCode;
        out.write({ errorDetail: typeof code === 'number' ? { code, message } : { message }, error: message });
        out.end();
      }
    });
  });

  // Berth's classic builder keeps its cache as intermediate images (pruned by image prune), not
  // as a BuildKit cache: pruning one deletes nothing. The docker CLI's `system prune` ends with
  // this call; its filters are still checked.
  app.post('/build/prune', async (req, reply) => {
    const filters = parseFilters(str(queryOf(req), 'filters'));
    for (const key of filters.keys()) {
      if (!['until', 'id', 'parent', 'type', 'description', 'inuse', 'shared', 'private'].includes(key))
        throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid filter '${key}'`, { details: { field: `filters.${key}` } });
    }
    return sendJson(reply, 200, { CachesDeleted: null, SpaceReclaimed: 0 });
  });
}
