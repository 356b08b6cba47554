/**
 * The client side of the wire: POST /<Subsystem>.<Method> over a unix socket, TCP or HTTPS,
 * with the engine's headers and its retry schedule for transport failures (§3.1).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { BerthError } from '@berth/errors';
import { PLUGIN_MEDIA_TYPE, PLUGIN_UNIX_HOST, type DriverLogger } from '@berth/plugin-api';

/** `.json` spec TLSConfig (§1.3). */
export interface PluginTls {
  CAFile?: string;
  CertFile?: string;
  KeyFile?: string;
  InsecureSkipVerify?: boolean;
}

/**
 * Docker's schedule: attempt n waits min(base * 2^n, cap) before the next one, and gives up
 * when elapsed + that wait >= timeout. With 1 s / 30 s / 30 s the attempts fall at ~0, 1, 3,
 * 7, 15 s and the call fails after ~15 s.
 */
export interface RetryPolicy {
  timeoutMs: number;
  baseMs: number;
  capMs: number;
}
export const dockerRetryPolicy: RetryPolicy = { timeoutMs: 30_000, baseMs: 1_000, capMs: 30_000 };
/** One attempt only (scans, tests). */
export const noRetryPolicy: RetryPolicy = { timeoutMs: 0, baseMs: 0, capMs: 0 };

/** Runs `attempt` until it succeeds, fails with a non-retryable error, or the policy gives up. */
export async function withRetry<T>(
  policy: RetryPolicy,
  attempt: () => Promise<T>,
  retryable: (err: unknown) => boolean,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  now: () => number = Date.now,
): Promise<T> {
  const start = now();
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!retryable(err)) throw err;
      const wait = Math.min(policy.baseMs * 2 ** n, policy.capMs);
      if (now() - start + wait >= policy.timeoutMs) throw err;
      await sleep(wait);
    }
  }
}

/** A failure before any response arrived (dial, refused, reset): the only kind that is retried. */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly errnoCode: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransportError';
  }
}

export interface ParsedAddress {
  /** For messages: unix:///run/berth/plugins/x.sock, tcp://127.0.0.1:8080. */
  url: string;
  socketPath?: string;
  host?: string;
  port?: number;
  https: boolean;
}

/** unix://, tcp://, http://, https:// or a bare absolute socket path; a path part of the URL is dropped (§1.4). */
export function parseAddress(addr: string): ParsedAddress {
  if (addr.startsWith('/')) return { url: `unix://${addr}`, socketPath: addr, https: false };
  const m = /^([a-z]+):\/\/(.*)$/.exec(addr);
  if (m === null) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid plugin address ${JSON.stringify(addr)}: Unknown protocol`);
  const [, scheme, rest] = m as unknown as [string, string, string];
  if (scheme === 'unix') {
    if (!rest.startsWith('/')) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid plugin address ${JSON.stringify(addr)}: a unix socket needs an absolute path`);
    return { url: addr, socketPath: rest, https: false };
  }
  if (scheme !== 'tcp' && scheme !== 'http' && scheme !== 'https') {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid plugin address ${JSON.stringify(addr)}: Unknown protocol ${scheme}`);
  }
  let u: URL;
  try {
    u = new URL(`${scheme === 'https' ? 'https' : 'http'}://${rest}`);
  } catch {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid plugin address ${JSON.stringify(addr)}`);
  }
  const isHttps = scheme === 'https';
  return { url: addr, host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port === '' ? (isHttps ? 443 : 80) : Number(u.port), https: isHttps };
}

export interface TransportOptions {
  retry?: Partial<RetryPolicy>;
  tls?: PluginTls;
  logger?: DriverLogger;
  /** Largest JSON answer read (default 64 MiB). */
  maxResponseBytes?: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface PluginResponse {
  status: number;
  body: Buffer;
}

/** One plugin address; keeps up to 16 connections alive between calls (more calls queue). */
export class PluginTransport {
  readonly address: ParsedAddress;
  readonly retry: RetryPolicy;
  readonly #agent: http.Agent;
  readonly #max: number;
  readonly #sleep: ((ms: number) => Promise<void>) | undefined;

  constructor(addr: string, opts: TransportOptions = {}) {
    this.address = parseAddress(addr);
    this.retry = { ...dockerRetryPolicy, ...opts.retry };
    this.#max = opts.maxResponseBytes ?? 64 << 20;
    this.#sleep = opts.sleep;
    if (this.address.https) {
      const t = opts.tls ?? { InsecureSkipVerify: true };
      const insecure = t.InsecureSkipVerify === true || t.CAFile === undefined || t.CAFile === '';
      this.#agent = new https.Agent({
        keepAlive: true,
        maxSockets: 16,
        rejectUnauthorized: !insecure,
        ...(t.CAFile ? { ca: readFileSync(t.CAFile) } : {}),
        ...(t.CertFile && t.KeyFile ? { cert: readFileSync(t.CertFile), key: readFileSync(t.KeyFile) } : {}),
      });
    } else {
      this.#agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    }
  }

  /** POST with a buffered body; answers status and the whole body. Transport failures are retried. */
  async post(path: string, body: Buffer, retry = true): Promise<PluginResponse> {
    const once = async (): Promise<PluginResponse> => {
      const res = await this.#send(path, body);
      return { status: res.statusCode ?? 0, body: await this.#read(res, path) };
    };
    if (!retry) return once();
    return withRetry(this.retry, once, (e) => e instanceof TransportError, this.#sleep);
  }

  /** POST answering the response stream (GraphDriver.Diff); the body may be a stream (ApplyDiff: no retry then). */
  async postStream(path: string, body: Buffer | Readable, retry = true): Promise<http.IncomingMessage> {
    if (!Buffer.isBuffer(body)) return this.#send(path, body);
    if (!retry) return this.#send(path, body);
    return withRetry(this.retry, () => this.#send(path, body), (e) => e instanceof TransportError, this.#sleep);
  }

  /** Reads a whole response body (bounded). */
  readAll(res: http.IncomingMessage, what: string): Promise<Buffer> {
    return this.#read(res, what);
  }

  close(): void {
    this.#agent.destroy();
  }

  #send(path: string, body: Buffer | Readable): Promise<http.IncomingMessage> {
    const a = this.address;
    const headers: Record<string, string | number> = { Accept: PLUGIN_MEDIA_TYPE };
    if (Buffer.isBuffer(body)) headers['Content-Length'] = body.length;
    else headers['Transfer-Encoding'] = 'chunked';
    const opts: http.RequestOptions = {
      method: 'POST',
      path,
      headers,
      agent: this.#agent,
      ...(a.socketPath !== undefined ? { socketPath: a.socketPath, host: PLUGIN_UNIX_HOST } : { host: a.host, port: a.port }),
    };
    return new Promise((resolve, reject) => {
      const req = (a.https ? https.request : http.request)(opts, resolve);
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(new TransportError(`${a.url}${path}: ${err.message}`, err.code, { cause: err }));
      });
      if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.on('error', (err) => req.destroy(err));
        body.pipe(req);
      }
    });
  }

  #read(res: http.IncomingMessage, what: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.#max) {
          res.destroy();
          reject(new BerthError('BERTH_PLUGIN', `${what}: answer larger than ${this.#max} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      // Not a TransportError: the plugin has seen the call, so it is not retried.
      res.on('error', (err) => reject(new BerthError('BERTH_PLUGIN', `${what}: reading the answer: ${err.message}`, { cause: err })));
    });
  }
}
