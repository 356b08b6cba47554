/**
 * The Engine API client: HTTP/1.1 over node:net (./http1.ts; one connection per request: a unix
 * socket connect costs microseconds and nothing keeps the process alive afterwards).
 * Version negotiation as the docker CLI does it (engine-api.md §2): HEAD /_ping, then
 * /v<min(client max, server Api-Version)>/ on every route.
 */
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { httpRequest, STATUS_TEXT, type HttpRequest, type HttpResponse } from './http1.js';

export const CLIENT_API_VERSION = '1.47';
export const DEFAULT_HOST = 'unix:///run/berth/berth.sock';

export interface Endpoint {
  /** As given, for messages. */
  host: string;
  socketPath?: string;
  hostname?: string;
  port?: number;
}

export function parseHost(host: string): Endpoint {
  if (host.startsWith('unix://')) return { host, socketPath: host.slice('unix://'.length) };
  if (host.startsWith('/')) return { host: `unix://${host}`, socketPath: host };
  const m = /^(?:tcp|http):\/\/(\[[^\]]+\]|[^:/]*)(?::(\d+))?\/?$/.exec(host);
  if (m) return { host, hostname: m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1', port: m[2] ? Number(m[2]) : 2375 };
  throw new CliError(`unable to parse docker host \`${host}\``, 1);
}

/** An error the CLI prints as is (to stderr) and exits with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code = 1,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The daemon answered with an error status. `message` is docker's `Error response from daemon: …`. */
export class DaemonError extends CliError {
  constructor(
    status: number,
    readonly daemonMessage: string,
  ) {
    super(`Error response from daemon: ${daemonMessage}`, 1, status);
    this.name = 'DaemonError';
  }
}

export class ConnectError extends CliError {
  constructor(host: string, cause?: unknown) {
    super(`Cannot connect to the Berth daemon at ${host}. Is berthd running?`, 1);
    this.name = 'ConnectError';
    this.cause = cause;
  }
}

export type Query = Record<string, string | number | boolean | undefined | null | string[]>;

export interface RequestOptions {
  query?: Query;
  /** JSON-serialised unless a Buffer or stream. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Do not prefix the path with /vX.Y. */
  unversioned?: boolean;
}

function encodeQuery(q: Query | undefined): string {
  if (!q) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null) continue;
    const vs = Array.isArray(v) ? v : [typeof v === 'boolean' ? (v ? '1' : '0') : String(v)];
    for (const one of vs) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(one)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function isStream(b: unknown): b is Readable {
  return typeof b === 'object' && b !== null && typeof (b as Readable).pipe === 'function';
}

export class Client {
  readonly endpoint: Endpoint;
  private version: string | undefined;
  /** What the server said on /_ping. */
  serverApiVersion: string | undefined;

  constructor(host: string, fixedVersion?: string) {
    this.endpoint = parseHost(host);
    this.version = fixedVersion;
  }

  get apiVersion(): string {
    return this.version ?? CLIENT_API_VERSION;
  }

  private negotiation: Promise<void> | undefined;

  /** HEAD /_ping and negotiate (done once, lazily, before the first versioned request). */
  negotiate(): Promise<void> {
    if (this.version) return Promise.resolve();
    this.negotiation ??= this.ping().then((v) => {
      this.serverApiVersion = v;
      const server = v ?? '1.24';
      this.version = compareVersions(server, CLIENT_API_VERSION) < 0 ? server : CLIENT_API_VERSION;
    });
    return this.negotiation;
  }

  /** docker's ping: HEAD, again as GET when HEAD fails other than by connection or answers neither 200 nor 500. */
  private async ping(): Promise<string | undefined> {
    let res: HttpResponse | undefined;
    try {
      res = await this.raw('HEAD', '/_ping', { unversioned: true });
    } catch (err) {
      if (err instanceof ConnectError) throw err;
    }
    if (!res || (res.statusCode !== 200 && res.statusCode !== 500)) {
      res?.destroy();
      res = await this.raw('GET', '/_ping', { unversioned: true });
    }
    res.resume();
    return res.headers['api-version'] || undefined;
  }

  private path(path: string, opts: RequestOptions): string {
    return (opts.unversioned ? path : `/v${this.apiVersion}${path}`) + encodeQuery(opts.query);
  }

  private options(method: string, path: string, opts: RequestOptions): HttpRequest {
    const e = this.endpoint;
    const headers: Record<string, string> = { 'User-Agent': `Berth-Client/0.1.0 (linux)`, ...opts.headers };
    const o: HttpRequest = { method, path: this.path(path, opts), headers };
    if (e.socketPath) {
      o.socketPath = e.socketPath;
      headers.Host = 'api.moby.localhost';
    } else {
      o.hostname = e.hostname;
      o.port = e.port;
    }
    if (opts.body === undefined) return o;
    if (isStream(opts.body) || Buffer.isBuffer(opts.body)) o.body = opts.body;
    else o.body = JSON.stringify(opts.body);
    return o;
  }

  private prepare(opts: RequestOptions): RequestOptions {
    const headers = { ...opts.headers };
    if (opts.body !== undefined && !isStream(opts.body) && !Buffer.isBuffer(opts.body))
      headers['Content-Type'] ??= 'application/json';
    return { ...opts, headers };
  }

  /** A request whose response status is not checked; the body is left unread. */
  async raw(method: string, path: string, opts: RequestOptions = {}): Promise<HttpResponse> {
    opts = this.prepare(opts);
    try {
      return (await httpRequest(this.options(method, path, opts))).res;
    } catch (err) {
      if (CONNECT_ERRORS.includes((err as NodeJS.ErrnoException).code ?? '')) throw new ConnectError(this.endpoint.host, err);
      throw err;
    }
  }

  /** A versioned request; error statuses (>= 400) become DaemonError. Returns the open response. */
  async stream(method: string, path: string, opts: RequestOptions = {}): Promise<HttpResponse> {
    // Not sent together with the ping (at 1.47, used when negotiation gives 1.47): measured, it
    // saved nothing here (bench, 80 alternating runs of ps/version/run), and docker sends the ping first.
    if (!opts.unversioned) await this.negotiate();
    const res = await this.raw(method, path, opts);
    if (res.statusCode >= 400) throw await errorFrom(res);
    return res;
  }

  /** A versioned request with the whole body read; JSON-decoded when the body is JSON. */
  async call<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.stream(method, path, opts);
    const buf = await readAll(res);
    if (buf.length === 0) return undefined as T;
    const ct = String(res.headers['content-type'] ?? '');
    if (ct.startsWith('application/json')) return JSON.parse(buf.toString('utf8')) as T;
    return buf.toString('utf8') as T;
  }

  get<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.call<T>('GET', path, { query });
  }

  post<T = unknown>(path: string, query?: Query, body?: unknown): Promise<T> {
    return this.call<T>('POST', path, { query, body });
  }

  /**
   * A hijacked session (attach, exec start): `Connection: Upgrade`, `Upgrade: tcp`; the daemon
   * must answer 101. Returns the raw bidirectional socket, paused (nothing the daemon sends is
   * lost before the caller listens; resume it), and any bytes read past the headers.
   */
  async hijack(path: string, opts: RequestOptions = {}): Promise<{ socket: Socket; head: Buffer }> {
    await this.negotiate();
    opts = this.prepare(opts);
    const headers = { 'Content-Type': 'text/plain', ...opts.headers, Connection: 'Upgrade', Upgrade: 'tcp' };
    const o = this.options('POST', path, { ...opts, headers });
    o.upgrade = true;
    let r;
    try {
      r = await httpRequest(o);
    } catch (err) {
      if (['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTSOCK'].includes((err as NodeJS.ErrnoException).code ?? '')) throw new ConnectError(this.endpoint.host, err);
      throw err;
    }
    if (r.kind === 'upgrade') return { socket: r.socket, head: r.head };
    const status = r.res.statusCode;
    if (status >= 400) throw await errorFrom(r.res);
    r.res.resume();
    throw new CliError(`unable to upgrade to tcp, received ${status}`);
  }
}

const CONNECT_ERRORS = ['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTSOCK', 'ECONNRESET', 'EHOSTUNREACH'];

export function readAll(res: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}

/** Docker's reading of an error response: JSON `message` only for exactly `application/json`. */
export async function errorFrom(res: HttpResponse): Promise<DaemonError | CliError> {
  const status = res.statusCode ?? 0;
  const body = (await readAll(res)).toString('utf8');
  const ct = String(res.headers['content-type'] ?? '');
  if (ct === 'application/json') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (typeof parsed.message === 'string') return new DaemonError(status, parsed.message);
    } catch {
      /* fall through: the body as text */
    }
  }
  if (body.trim() === '')
    return new CliError(
      `Error response from daemon: request returned ${STATUS_TEXT[status] ?? status} for API route and version ${res.req.path}, check if the server supports the requested API version`,
      1,
      status,
    );
  return new DaemonError(status, body.trim());
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
