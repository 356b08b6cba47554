import type http from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { BerthError } from '@berth/errors';

/** One HTTP exchange with a registry or its token service. */
export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** A buffer, or a factory so a request can be sent again after an auth round. */
  body?: Buffer | (() => Readable);
  /** Skip certificate checks (insecure registries tried over https first). */
  tlsInsecure?: boolean;
  /** Idle timeout of the socket, ms. */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
}

export type Transport = (req: HttpRequest) => Promise<HttpResponse>;

const DEFAULT_TIMEOUT_MS = 60_000;

/** Text as Go's net/http client would print it, which is what the docker CLI shows users. */
function connectError(req: HttpRequest, err: NodeJS.ErrnoException): BerthError {
  const verb = req.method.charAt(0) + req.method.slice(1).toLowerCase();
  const where = `${verb} "${req.url.href}"`;
  let why = err.message;
  if (err.code === 'ECONNREFUSED') why = `dial tcp ${req.url.host}: connect: connection refused`;
  else if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') why = `dial tcp: lookup ${req.url.hostname}: no such host`;
  else if (/wrong version number|packet length too long|WRONG_VERSION_NUMBER/i.test(err.message))
    why = 'http: server gave HTTP response to HTTPS client';
  return new BerthError('BERTH_REGISTRY_UNAVAILABLE', `${where}: ${why}`, {
    cause: err,
    details: { url: req.url.href, errno: err.code, tls: /ssl|tls|certificate|version number/i.test(err.message) },
  });
}

// node:https brings tls and crypto (several MiB of a daemon's RSS): loaded on the first
// registry request, not when berthd starts (bench/lifecycle's idle RSS).
const lazyRequire = createRequire(import.meta.url);
let modules: { http: typeof http; https: typeof https } | undefined;
const httpModules = (): { http: typeof http; https: typeof https } =>
  (modules ??= { http: lazyRequire('node:http') as typeof http, https: lazyRequire('node:https') as typeof https });

/** The node:http(s) transport. Bodies stream; nothing is buffered here. */
export const nodeTransport: Transport = (req) =>
  new Promise<HttpResponse>((resolve, reject) => {
    const { http: plain, https: secureModule } = httpModules();
    const secure = req.url.protocol === 'https:';
    const headers: Record<string, string> = { ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    const options: https.RequestOptions = {
      method: req.method,
      headers,
      timeout: req.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    };
    if (secure && req.tlsInsecure === true) options.rejectUnauthorized = false;
    const r = (secure ? secureModule : plain).request(req.url, options, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    r.on('timeout', () => r.destroy(Object.assign(new Error('i/o timeout'), { code: 'ETIMEDOUT' })));
    r.on('error', (err: NodeJS.ErrnoException) => reject(connectError(req, err)));
    if (req.body === undefined) r.end();
    else if (Buffer.isBuffer(req.body)) r.end(req.body);
    else {
      const src = req.body();
      src.on('error', (err) => r.destroy(err));
      src.pipe(r);
    }
  });

/** Reads a (small) body to the end; more than `limit` bytes is a protocol error. */
export async function readBody(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > limit) {
      res.body.destroy();
      throw new BerthError('BERTH_REGISTRY_PROTOCOL', `${what}: the registry sent more than ${limit} bytes`, { details: { limit } });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Drains and drops a body so the socket can be reused. */
export function discard(res: HttpResponse): void {
  res.body.resume();
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
