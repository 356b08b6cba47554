import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BerthError } from '@berth/errors';
import { MULTIPLEXED_STREAM, StreamType, frame, RAW_STREAM, isValidContainerName, parseFilters } from '@berth/api/wire';
import type { ContainerCreateBody } from '@berth/api/wire';
import type { AttachOptions, LogsOptions, StopOptions, WaitCondition } from '@berth/engine';
import { bool, int, str, timestamp, type Query } from '../../http/query.js';
import { JSON_TYPE, jsonBytes, openStream, sendEmpty, sendJson, sendJsonBytes } from '../../http/reply.js';
import { serveSession } from '../../http/hijack.js';
import { checkBodyOf } from '../../http/schemas.js';
import { versionAtLeast } from '../../http/version.js';
import { paramsOf, queryOf, type RouteDeps } from '../deps.js';
import { containerResourceRoutes } from './resources.js';

const invalid = (field: string, message: string): BerthError => new BerthError('BERTH_INVALID_ARGUMENT', message, { details: { field } });

function checkName(name: string): void {
  if (!isValidContainerName(name)) throw invalid('name', `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
}

function stopOptions(q: Query): StopOptions {
  return { timeout: int(q, 't'), signal: str(q, 'signal') || undefined };
}

const WAIT_CONDITIONS: readonly WaitCondition[] = ['not-running', 'next-exit', 'removed'];

export function waitCondition(q: Query): WaitCondition {
  const c = str(q, 'condition');
  if (c === undefined || c === '') return 'not-running';
  if (!(WAIT_CONDITIONS as readonly string[]).includes(c)) throw invalid('condition', `invalid condition: ${JSON.stringify(c)}`);
  return c as WaitCondition;
}

export function attachOptions(q: Query): AttachOptions {
  return {
    stdin: bool(q, 'stdin'),
    stdout: bool(q, 'stdout'),
    stderr: bool(q, 'stderr'),
    stream: bool(q, 'stream'),
    logs: bool(q, 'logs'),
    detachKeys: str(q, 'detachKeys') || undefined,
  };
}

export function resizeArgs(q: Query): { h: number; w: number } {
  const h = int(q, 'h');
  const w = int(q, 'w');
  if (h === undefined) throw invalid('h', 'invalid value for h: an integer is required');
  if (w === undefined) throw invalid('w', 'invalid value for w: an integer is required');
  if (h < 0) throw invalid('h', `invalid value for h: ${h} is negative`);
  if (w < 0) throw invalid('w', `invalid value for w: ${w} is negative`);
  return { h, w };
}

export function logsOptions(q: Query): LogsOptions {
  const stdout = bool(q, 'stdout');
  const stderr = bool(q, 'stderr');
  if (!stdout && !stderr) throw invalid('stdout', 'Bad parameters: you must choose at least one stream');
  const rawTail = (str(q, 'tail') ?? '').trim();
  let tail: number | 'all' = 'all';
  if (rawTail !== '' && rawTail !== 'all') {
    if (!/^-?\d+$/.test(rawTail)) throw invalid('tail', `invalid value for tail: ${JSON.stringify(rawTail)} is neither "all" nor an integer`);
    const n = Number.parseInt(rawTail, 10);
    tail = n < 0 ? 'all' : n;
  }
  return {
    follow: bool(q, 'follow'),
    stdout,
    stderr,
    since: timestamp(q, 'since') ?? 0,
    until: timestamp(q, 'until') ?? 0,
    timestamps: bool(q, 'timestamps'),
    details: bool(q, 'details'),
    tail,
  };
}

/** Docker refuses a start body (deprecated in 1.22): more than `null`'s 4 bytes, or unknown length. */
function refuseStartBody(req: FastifyRequest): void {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  const len = cl === undefined ? (te === undefined ? 0 : -1) : Number(cl);
  if (len > 7 || len < 0)
    throw invalid('body', 'starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24');
}


export function containerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { engine, headers } = deps;
  containerResourceRoutes(app, deps);
  app.post('/containers/create', async (req, reply) => {
    const q = queryOf(req);
    const name = str(q, 'name');
    if (name !== undefined && name !== '') checkName(name);
    if (req.body === undefined || req.body === null) throw invalid('body', 'config cannot be empty in order to create a container');
    const body = (await checkBodyOf('ContainerCreateBodySchema', req.body)) as ContainerCreateBody;
    return sendJson(reply, 201, await engine.createContainer(name || undefined, body));
  });

  app.get('/containers/json', async (req, reply) => {
    const q = queryOf(req);
    const opts = { all: bool(q, 'all'), limit: int(q, 'limit', 0), size: bool(q, 'size'), filters: parseFilters(str(q, 'filters')) };
    // berthPortRuns=1 is Berth's own (berth ps; docs/network.md): consecutive ports as one Port with a Count.
    if (engine.listContainersJson) return sendJsonBytes(reply, 200, await engine.listContainersJson({ ...opts, portRuns: bool(q, 'berthPortRuns') }));
    return sendJson(reply, 200, await engine.listContainers(opts));
  });

  app.get('/containers/:id/json', async (req, reply) => {
    const id = paramsOf(req).id!;
    const opts = { size: bool(queryOf(req), 'size') };
    if (engine.inspectContainerJson) return sendJsonBytes(reply, 200, await engine.inspectContainerJson(id, opts));
    return sendJson(reply, 200, await engine.inspectContainer(id, opts));
  });

  app.post('/containers/:id/start', { onRequest: async (req) => refuseStartBody(req) }, async (req, reply) => {
    const r = await engine.startContainer(paramsOf(req).id!);
    return sendEmpty(reply, r === 'not-modified' ? 304 : 204);
  });

  app.post('/containers/:id/stop', async (req, reply) => {
    const r = await engine.stopContainer(paramsOf(req).id!, stopOptions(queryOf(req)));
    return sendEmpty(reply, r === 'not-modified' ? 304 : 204);
  });

  app.post('/containers/:id/restart', async (req, reply) => {
    await engine.restartContainer(paramsOf(req).id!, stopOptions(queryOf(req)));
    return sendEmpty(reply, 204);
  });

  app.post('/containers/:id/kill', async (req, reply) => {
    await engine.killContainer(paramsOf(req).id!, str(queryOf(req), 'signal') || undefined);
    return sendEmpty(reply, 204);
  });

  app.post('/containers/prune', async (req, reply) => sendJson(reply, 200, await engine.pruneContainers(parseFilters(str(queryOf(req), 'filters')))));

  app.delete('/containers/:id', async (req, reply) => {
    const q = queryOf(req);
    await engine.removeContainer(paramsOf(req).id!, { force: bool(q, 'force'), volumes: bool(q, 'v') });
    return sendEmpty(reply, 204);
  });

  app.post('/containers/:id/wait', async (req, reply) => {
    const condition = waitCondition(queryOf(req));
    // Registration (and a 404) happen before any header is sent.
    const handle = await engine.waitContainer(paramsOf(req).id!, condition);
    // docker run waits for these headers before it starts the container: send them now.
    const res = openStream(reply, 200, JSON_TYPE);
    let done = false;
    res.on('close', () => {
      if (!done) handle.cancel();
    });
    try {
      const result = await handle.result;
      done = true;
      res.end(jsonBytes(result));
    } catch (err) {
      done = true;
      const message = err instanceof Error ? err.message : String(err);
      if (!res.destroyed) res.end(jsonBytes({ StatusCode: -1, Error: { Message: message } }));
      req.log.info({ err }, 'wait ended with an error');
    }
  });

  // Attach without an Upgrade header (with one, the server's 'upgrade' event serves it).
  app.post('/containers/:id/attach', async (req, reply) => {
    const session = await engine.attachContainer(paramsOf(req).id!, attachOptions(queryOf(req)));
    reply.hijack();
    await serveSession(session, { socket: req.raw.socket, upgrade: false, apiVersion: req.apiVersion, headers }, req.log);
  });

  app.post('/containers/:id/resize', async (req, reply) => {
    const { h, w } = resizeArgs(queryOf(req));
    await engine.resizeContainer(paramsOf(req).id!, h, w);
    return sendEmpty(reply, 200);
  });

  app.post('/containers/:id/rename', async (req, reply) => {
    const name = str(queryOf(req), 'name') ?? '';
    if (name === '') throw invalid('name', 'Neither old nor new names may be empty');
    // The engine checks the name after finding the container, as dockerd does.
    await engine.renameContainer(paramsOf(req).id!, name);
    return sendEmpty(reply, 204);
  });

  app.get('/containers/:id/top', async (req, reply) =>
    sendJson(reply, 200, await engine.topContainer(paramsOf(req).id!, str(queryOf(req), 'ps_args') || '-ef')),
  );

  // A Berth extension (not in Docker's API): the container's kernel objects, read back from the kernel.
  app.get('/containers/:id/kernel', async (req, reply) => sendJson(reply, 200, await engine.containerKernel(paramsOf(req).id!)));

  app.post('/containers/:id/pause', async (req, reply) => {
    await engine.pauseContainer(paramsOf(req).id!);
    return sendEmpty(reply, 204);
  });

  app.post('/containers/:id/unpause', async (req, reply) => {
    await engine.unpauseContainer(paramsOf(req).id!);
    return sendEmpty(reply, 204);
  });

  app.get('/containers/:id/logs', async (req, reply) => {
    const opts = logsOptions(queryOf(req));
    const logs = await engine.containerLogs(paramsOf(req).id!, opts);
    const type = !logs.tty && versionAtLeast(req.apiVersion, '1.42') ? MULTIPLEXED_STREAM : RAW_STREAM;
    const res = openStream(reply, 200, type);
    res.on('close', () => logs.body.destroy());
    logs.body.on('error', (err) => {
      // After the head, errors travel in-band: a system-error frame when multiplexed.
      req.log.info({ err }, 'logs stream failed');
      if (type === MULTIPLEXED_STREAM && !res.destroyed) res.write(frame(StreamType.SystemError, err.message));
      res.end();
    });
    logs.body.pipe(res);
  });

  app.get('/containers/:id/export', async (req, reply) => {
    const tar = await engine.exportContainer(paramsOf(req).id!);
    const res = openStream(reply, 200, 'application/x-tar');
    res.on('close', () => tar.destroy());
    tar.on('error', (err) => {
      req.log.warn({ err }, 'export stream failed');
      res.destroy(err);
    });
    tar.pipe(res);
  });
}
