import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { BerthError } from '@berth/errors';
import type { Engine } from '@berth/engine';
import { Component, componentLogger, type Logger } from '@berth/log';
import { authorizeFastifyRequest, installAuthzHooks, type AuthzChain } from './http/authz.js';
import { commonHeaders } from './http/headers.js';
import { JSON_TYPE, errorMessage, errorStatus, mediaType, sendJson } from './http/reply.js';
import { createUpgradeHandler } from './http/upgrade.js';
import { checkVersion, splitVersion } from './http/version.js';
import type { RouteDeps } from './routes/deps.js';
import { containerRoutes } from './routes/containers/index.js';
import { execRoutes } from './routes/exec/index.js';
import { imageRoutes } from './routes/images/index.js';
import { containerImageRoutes } from './routes/container-images/index.js';
import { buildRoutes } from './routes/builder/index.js';
import { networkRoutes } from './routes/networks/index.js';
import { volumeRoutes } from './routes/volumes/index.js';
import { systemRoutes } from './routes/system/index.js';

export interface ServerOptions {
  engine: Engine;
  logger: Logger;
  /** Berth's version for the `Server` header; defaults to the engine's `version().Version`. */
  version?: string;
  /** Limit of JSON request bodies (raw tar uploads have none). Default 4 MiB. */
  bodyLimit?: number;
  /** Authorization plugins (--authorization-plugin); none: no authz hooks at all. */
  authz?: AuthzChain;
}

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    /** Serves requests with `Connection: Upgrade` (attach, exec start); see listen.ts. */
    berthUpgrade: UpgradeHandler;
    /** Hijacked sockets still open; destroyed when the server closes. */
    berthSockets: Set<Duplex>;
  }
}

const kVersion = Symbol('berth.apiVersion');
type VersionedRequest = IncomingMessage & { [kVersion]?: string };

/**
 * Fastify's default schema compilers (ajv with its formats, fast-json-stringify: ~110 modules,
 * ~1.5 MiB of heap) load when a route with a schema is set up; berthd's routes have none (bodies
 * are checked by @berth/api's checkBody, answers written by sendJson), so they never load.
 */
function lazySchemaCompilers(): { buildValidator: (...args: unknown[]) => unknown; buildSerializer: (...args: unknown[]) => unknown } {
  const load = (name: string) => createRequire(createRequire(import.meta.url).resolve('fastify'))(name) as () => (...args: unknown[]) => unknown;
  return {
    buildValidator: (...args) => load('@fastify/ajv-compiler')()(...args),
    buildSerializer: (...args) => load('@fastify/fast-json-stringify-compiler')()(...args),
  };
}

/**
 * The Engine API over HTTP: a fastify instance (not listening; see listen.ts) whose routes
 * parse and validate requests, call one Engine method and write Docker's wire answers.
 */
/** What an error answer waits for at most while it reads a body the handler left unread. */
const DRAIN_LIMIT = { bytes: 256 << 20, ms: 30_000 };

/**
 * Reads to its end (up to DRAIN_LIMIT) a request body that the handler failed before reading
 * (cp into a read-only path, load of a missing file...): a client still sending it, with
 * `Connection: close` as the berth CLI sends, would otherwise see its write fail (EPIPE) as the
 * connection closes after the answer, and never read the answer.
 */
function drainUnread(req: IncomingMessage): Promise<void> {
  if (req.complete || req.destroyed || req.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    let n = 0;
    const done = (): void => {
      clearTimeout(timer);
      req.removeListener('data', onData);
      resolve();
    };
    const onData = (b: Buffer): void => {
      n += b.length;
      if (n > DRAIN_LIMIT.bytes) done();
    };
    const timer = setTimeout(done, DRAIN_LIMIT.ms);
    req.on('data', onData);
    req.once('end', done);
    req.once('close', done);
    req.once('error', done);
    req.resume();
  });
}

export function createServer(opts: ServerOptions): FastifyInstance {
  const { engine, authz } = opts;
  const log = componentLogger(opts.logger, Component.Api);
  const headers = commonHeaders(opts.version ?? engine.version().Version);
  const sockets = new Set<Duplex>();

  const app = Fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    // Errors are logged once by our error handler, requests at debug by onResponse.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    // Image references with registry, path, tag and digest exceed the default 100.
    routerOptions: { maxParamLength: 2048 },
    exposeHeadRoutes: false,
    schemaController: { compilersFactory: lazySchemaCompilers() as never },
    bodyLimit: opts.bodyLimit ?? 4 * 1024 * 1024,
    // Every route is also served under /v<version>/: strip the prefix once, keep the version.
    rewriteUrl(req) {
      const { version, url } = splitVersion(req.url ?? '/');
      (req as VersionedRequest)[kVersion] = version;
      return url;
    },
  });

  app.decorateRequest('apiVersion', '');
  app.decorate('berthSockets', sockets);
  app.decorate('berthUpgrade', createUpgradeHandler({ engine, logger: log, headers, sockets, ...(authz === undefined ? {} : { authz }) }));
  // So that `app.listen()` serves hijacks too (listen.ts wires its own servers the same way).
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void app.berthUpgrade(req, socket, head));

  app.addHook('onRequest', async (req, reply) => {
    for (const [k, v] of Object.entries(headers)) reply.header(k, v);
    // dockerd's authz middleware wraps its version middleware: the plugins see every request first.
    if (authz !== undefined) await authorizeFastifyRequest(authz, req);
    req.apiVersion = checkVersion((req.raw as VersionedRequest)[kVersion]);
  });

  // Go's client reads JSON only when the type is exactly application/json.
  app.addHook('onSend', async (_req, reply, payload) => {
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && mediaType(type) === JSON_TYPE && type !== JSON_TYPE) reply.header('content-type', JSON_TYPE);
    return payload;
  });
  if (authz !== undefined) installAuthzHooks(app, authz, log);

  app.addHook('onResponse', async (req, reply) => {
    req.log.debug({ method: req.method, url: req.originalUrl, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  app.addHook('onClose', async () => {
    for (const s of sockets) s.destroy();
  });

  // JSON bodies: an empty body (with or without a type) is no body; else the type must be JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    if (body.length === 0) return done(null, undefined);
    const type = mediaType(req.headers['content-type']);
    if (type !== JSON_TYPE)
      return done(
        new BerthError('BERTH_INVALID_ARGUMENT', `unsupported Content-Type header (${req.headers['content-type'] ?? ''}): must be 'application/json'`, {
          details: { field: 'Content-Type' },
        }),
        undefined,
      );
    try {
      // JSON.parse rejects trailing data after the value, as Docker does.
      done(null, JSON.parse(body.toString('utf8')));
    } catch (err) {
      done(new BerthError('BERTH_INVALID_ARGUMENT', `invalid JSON body: ${errorMessage(err)}`, { cause: err, details: { field: 'body' } }), undefined);
    }
  });

  app.setErrorHandler(async (err, req, reply) => {
    const status = errorStatus(err);
    // Logged once, here at the boundary.
    if (status >= 500) req.log.error({ err, method: req.method, url: req.originalUrl, status }, 'request failed');
    else req.log.info({ err, method: req.method, url: req.originalUrl, status }, 'request failed');
    const message = (err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'request body is too large' : errorMessage(err);
    await drainUnread(req.raw);
    return sendJson(reply, status, { message });
  });

  app.setNotFoundHandler(async (_req, reply) => sendJson(reply, 404, { message: 'page not found' }));

  const deps: RouteDeps = { engine, logger: log, headers };
  systemRoutes(app, deps);
  containerRoutes(app, deps);
  execRoutes(app, deps);
  imageRoutes(app, deps);
  containerImageRoutes(app, deps);
  buildRoutes(app, deps);
  networkRoutes(app, deps);
  volumeRoutes(app, deps);
  return app;
}
