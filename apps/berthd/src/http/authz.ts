/**
 * Authorization plugins (`--authorization-plugin`, specs/plugin-protocol.md §9), as dockerd runs
 * them: every request goes through the chain's AuthZReq, in order, before its handler; a
 * buffered answer goes through AuthZRes before it is sent. The first plugin that says no ends
 * the chain with a 403 (`authorization denied by plugin <name>: <Msg>`); one that cannot be
 * reached or fails ends it with a 500 (`plugin <name> failed with error: <error>`): fail closed.
 * Streams and hijacks (logs, events, pull, attach, exec) get AuthZReq only.
 *
 * Installed only when plugins are configured: without them the server has none of these hooks.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BerthError } from '@berth/errors';
import type { Logger } from '@berth/log';
import { PluginRegistry, type RemoteAuthzPlugin } from '@berth/plugin';
import { AUTHZ_MAX_BODY, authzHiddenHeaders, type AuthzRequest, type AuthzResponse } from '@berth/plugin-api';
import { canonicalHeaderName } from './headers.js';
import { JSON_TYPE, jsonBytes, mediaType } from './reply.js';

export interface AuthzChain {
  /** The plugin names in chain order (duplicates dropped, as dockerd does). */
  readonly names: readonly string[];
  /** AuthZReq through the chain; throws BERTH_AUTHZ_DENIED (403) or BERTH_AUTHZ_PLUGIN (500). */
  authorizeRequest(req: AuthzRequest): Promise<void>;
  /** AuthZRes through the chain (the request object with the Response* fields); throws the same. */
  authorizeResponse(req: AuthzRequest): Promise<void>;
  close(): void;
}

export interface AuthzChainOptions {
  logger: Logger;
  /** Where plugins are looked up (default: a registry over the standard dirs, ~2 s lookup retry). */
  lookup?: (name: string) => Promise<RemoteAuthzPlugin>;
}

/** The lookup and call retry of a plugin that is not there: ~2 s, as volume plugins get. */
export const AUTHZ_RETRY = { timeoutMs: 2000 };

export function createAuthzChain(names: readonly string[], opts: AuthzChainOptions): AuthzChain {
  const chain = [...new Set(names)];
  let registry: PluginRegistry | undefined;
  const lookup = opts.lookup ?? ((name: string) => (registry ??= new PluginRegistry({ retry: AUTHZ_RETRY, logger: opts.logger })).authz(name));
  const run = async (method: 'authZReq' | 'authZRes', req: AuthzRequest): Promise<void> => {
    for (const name of chain) {
      let res: AuthzResponse;
      try {
        res = await (await lookup(name))[method](req);
      } catch (err) {
        throw new BerthError('BERTH_AUTHZ_PLUGIN', `plugin ${name} failed with error: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
          details: { plugin: name },
        });
      }
      if (!res.Allow) throw new BerthError('BERTH_AUTHZ_DENIED', `authorization denied by plugin ${name}: ${res.Msg ?? ''}`, { details: { plugin: name } });
    }
  };
  return {
    names: chain,
    authorizeRequest: (req) => run('authZReq', req),
    authorizeResponse: (req) => run('authZRes', req),
    close: () => registry?.close(),
  };
}

/** Go's flattening of a header map: canonical names, the last value of each, credentials left out. */
export function flatHeaders(pairs: Iterable<[string, unknown]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    if (authzHiddenHeaders.includes(lower)) continue;
    if (value === undefined) continue;
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last === undefined) continue;
    out[canonicalHeaderName(name)] = String(last);
  }
  return out;
}

/** A request's headers as Go's server keeps them: Host and Transfer-Encoding are not in its map. */
export function requestHeaders(rawHeaders: readonly string[]): Record<string, string> {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'transfer-encoding') continue;
    pairs.push([name, rawHeaders[i + 1]!]);
  }
  return flatHeaders(pairs);
}

/** `/auth` (with or without `/v<version>`): its body (credentials) is never shown, as dockerd's rule. */
const AUTH_PATH = /^(\/v\d[\d.]*)?\/auth/;

/**
 * dockerd's rule for showing a body (as fixed for CVE-2024-41110 and CVE-2026-34040): its media
 * type is application/json (parameters and case do not matter: the JSON parser takes those too)
 * and the path is not /auth. Its length does not matter: a chunked body or one that claims no
 * length is read all the same, and one over AUTHZ_MAX_BODY is refused, never passed on unseen.
 */
export function bodyShown(uri: string, contentType: unknown): boolean {
  return !AUTH_PATH.test(uri.split('?')[0]!) && mediaType(contentType) === JSON_TYPE;
}

/** Why a body is refused: a plugin must see every body it is shown, and this one is too large for it. */
export function bodyTooLarge(max = AUTHZ_MAX_BODY): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', `request body too large for authorization plugin: size exceeds ${max} bytes`, { details: { field: 'body' } });
}

/** The AuthZReq object (omitempty: no User, no empty body or headers). */
export function buildAuthzRequest(method: string, uri: string, rawHeaders: readonly string[], body: Buffer | undefined): AuthzRequest {
  const req: AuthzRequest = { RequestMethod: method, RequestUri: uri };
  if (body !== undefined && body.length > 0) req.RequestBody = body.toString('base64');
  const headers = requestHeaders(rawHeaders);
  if (Object.keys(headers).length > 0) req.RequestHeaders = headers;
  return req;
}

/**
 * Reads a request body to its end and puts it back (unshift before the stream ends: the HTTP
 * parser has the whole message when `complete` is set): the plugin sees the body and whoever
 * reads it next (fastify's parser, or a route that reads the raw stream) still gets every byte,
 * as dockerd's peeking reader does. More than `max` bytes: bodyTooLarge.
 */
export function peekBody(stream: IncomingMessage, max = AUTHZ_MAX_BODY): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    let settled = false;
    const done = (err?: Error): void => {
      if (settled) return;
      settled = true;
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', done);
      stream.off('close', onClose);
      const bytes = Buffer.concat(chunks);
      if (bytes.length > 0 && !stream.readableEnded) stream.unshift(bytes);
      if (err) reject(err);
      else resolve(bytes);
    };
    const onEnd = (): void => done();
    const onClose = (): void => done(new Error('connection closed before the request body was complete'));
    const onReadable = (): void => {
      let c: Buffer | null;
      while ((c = stream.read() as Buffer | null) !== null) {
        chunks.push(c);
        got += c.length;
        if (got > max) return done(bodyTooLarge(max));
      }
      if (stream.complete) done();
    };
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('error', done);
    stream.once('close', onClose);
    if (stream.complete && stream.readableLength === 0) done();
  });
}

const kAuthz = Symbol('berth.authz');
interface AuthzState {
  /** The AuthZReq object once the chain allowed it; AuthZRes reuses it. */
  allowed?: AuthzRequest;
}
type AuthzRaw = IncomingMessage & { [kAuthz]?: AuthzState; originalUrl?: string };

/**
 * The onRequest step: peeks at a small JSON body (left in the stream), asks the chain, throws the
 * denial. Called from server.ts's onRequest hook before the API version check, as dockerd's
 * authz middleware wraps its version middleware.
 */
export async function authorizeFastifyRequest(chain: AuthzChain, req: FastifyRequest): Promise<void> {
  const raw = req.raw as AuthzRaw;
  const uri = raw.originalUrl ?? raw.url ?? '/';
  const state: AuthzState = {};
  raw[kAuthz] = state;
  const body = bodyShown(uri, raw.headers['content-type']) ? await peekBody(raw) : undefined;
  const areq = buildAuthzRequest(raw.method ?? 'GET', uri, raw.rawHeaders, body);
  await chain.authorizeRequest(areq);
  state.allowed = areq;
}

/** The hook besides the onRequest step: AuthZRes before buffered answers go out. */
export function installAuthzHooks(app: FastifyInstance, chain: AuthzChain, log: Logger): void {
  app.addHook('onClose', async () => chain.close());

  // Registered after server.ts's onSend (which makes the JSON type exact), so the plugin sees the final headers.
  app.addHook('onSend', async function authzResponse(req, reply, payload) {
    const state = (req.raw as AuthzRaw)[kAuthz];
    // Not allowed by AuthZReq (its own error answer) or not buffered (a stream): no AuthZRes.
    if (state?.allowed === undefined) return payload;
    if (payload !== null && payload !== undefined && typeof payload !== 'string' && !Buffer.isBuffer(payload)) return payload;
    const areq: AuthzRequest = { ...state.allowed, ResponseStatusCode: reply.statusCode };
    const headers = flatHeaders(Object.entries(reply.getHeaders()));
    if (Object.keys(headers).length > 0) areq.ResponseHeaders = headers;
    const body = payload === null || payload === undefined ? undefined : typeof payload === 'string' ? Buffer.from(payload) : payload;
    if (body !== undefined && body.length > 0 && bodyShown(areq.RequestUri ?? '', reply.getHeader('content-type'))) areq.ResponseBody = body.toString('base64');
    try {
      await chain.authorizeResponse(areq);
      return payload;
    } catch (err) {
      const status = err instanceof BerthError && err.code === 'BERTH_AUTHZ_DENIED' ? 403 : 500;
      const message = err instanceof Error ? err.message : String(err);
      if (status >= 500) log.error({ err, method: req.method, url: areq.RequestUri }, 'AuthZRes failed');
      else log.info({ method: req.method, url: areq.RequestUri, message }, 'answer refused by an authorization plugin');
      reply.code(status);
      reply.removeHeader('content-length');
      reply.header('content-type', JSON_TYPE);
      return jsonBytes({ message });
    }
  });
}

/** The hijack path (upgrade.ts): AuthZReq only; a denial is answered before any hijack. */
export async function authorizeUpgrade(chain: AuthzChain, req: IncomingMessage, readBody: () => Promise<Buffer>): Promise<void> {
  const uri = req.url ?? '/';
  // The upgrade routes parse any body they get as JSON (exec start): every one is shown, whatever its type.
  const body = AUTH_PATH.test(uri.split('?')[0]!) ? undefined : await readBody();
  await chain.authorizeRequest(buildAuthzRequest(req.method ?? 'GET', uri, req.rawHeaders, body));
}
