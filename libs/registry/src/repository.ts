import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { BerthError } from '@berth/errors';
import type { Logger } from '@berth/log';
import { basicCredentials, basicHeader, parseChallenges, type AuthConfig, type Challenge } from './auth.js';
import { responseError } from './errors.js';
import { isInsecureRegistry, registryHost } from './hosts.js';
import { MANIFEST_ACCEPT, parseManifest, sha256Of, type ParsedManifest } from './manifest.js';
import { discard, header, nodeTransport, readBody, type HttpRequest, type HttpResponse, type Transport } from './transport.js';

export interface RegistryClientOptions {
  /** `insecure-registries`: host[:port] names or CIDRs allowed over plain HTTP. */
  insecureRegistries?: readonly string[];
  logger?: Logger;
  userAgent?: string;
  /** For tests: another transport than node:http(s). */
  transport?: Transport;
  timeoutMs?: number;
}

export type Action = 'pull' | 'push';

/** A manifest as fetched: its bytes (pushed back unchanged), digest and parsed form. */
export interface FetchedManifest {
  digest: string;
  mediaType: string;
  raw: Buffer;
  parsed: ParsedManifest;
}

export type PushBlobResult = 'exists' | 'mounted' | 'pushed';

export interface BlobSource {
  digest: string;
  size: number;
  /** Reads bytes [start, end] (inclusive) of the blob, or all of it. */
  open(range?: { start: number; end: number }): Readable;
}

const MAX_MANIFEST = 4 * 1024 * 1024;
const MAX_REDIRECTS = 5;

/** Makes `Repository` handles for one daemon's settings. */
export class RegistryClient {
  constructor(private readonly options: RegistryClientOptions = {}) {}

  /** A repository on a registry, for the given actions, with the caller's credentials. */
  repository(domain: string, path: string, auth: AuthConfig = {}, actions: readonly Action[] = ['pull']): Repository {
    return new Repository(domain, path, auth, actions, this.options);
  }
}

/**
 * One repository of one registry: scheme choice (https, or http for insecure registries),
 * the auth challenge of `GET /v2/` (Basic or Bearer with a token for the repository's scopes),
 * and the distribution endpoints for manifests and blobs.
 */
export class Repository {
  readonly host: string;
  private base: URL | undefined;
  private tlsInsecure = false;
  private challenge: Challenge | undefined;
  private authorization: string | undefined;
  private readonly scopes = new Set<string>();
  private readonly send: Transport;
  private readonly log: Logger | undefined;

  constructor(
    readonly domain: string,
    readonly name: string,
    private readonly auth: AuthConfig,
    actions: readonly Action[],
    private readonly options: RegistryClientOptions,
  ) {
    this.host = registryHost(domain);
    this.scopes.add(`repository:${name}:${[...actions].sort().join(',')}`);
    this.send = options.transport ?? nodeTransport;
    this.log = options.logger;
  }

  /** The base URL once the scheme is known (after the first request). */
  get baseUrl(): string | undefined {
    return this.base?.href;
  }

  private async ping(): Promise<void> {
    if (this.base !== undefined) return;
    const insecure = isInsecureRegistry(this.domain, this.options.insecureRegistries);
    const schemes = insecure ? ['https:', 'http:'] : ['https:'];
    let lastErr: unknown;
    for (const scheme of schemes) {
      const url = new URL(`${scheme}//${this.host}/v2/`);
      let res: HttpResponse;
      try {
        res = await this.send({ method: 'GET', url, tlsInsecure: insecure, headers: this.baseHeaders(), ...this.timeout() });
      } catch (err) {
        lastErr = err;
        this.log?.debug({ err, url: url.href }, 'registry ping failed');
        continue;
      }
      discard(res);
      if (res.status === 401) this.challenge = parseChallenges(res.headers['www-authenticate']).find((c) => c.scheme === 'bearer' || c.scheme === 'basic');
      else if (res.status !== 200 && res.status !== 404 && res.status !== 403) {
        // 404 on /v2/ is allowed by some registries; anything else here is not a v2 registry.
        lastErr = new BerthError('BERTH_REGISTRY_PROTOCOL', `GET "${url.href}": unexpected status ${res.status}: not a registry v2 endpoint`, {
          details: { status: res.status },
        });
        if (res.status >= 500) lastErr = new BerthError('BERTH_REGISTRY_UNAVAILABLE', (lastErr as Error).message, { details: { status: res.status } });
        continue;
      }
      this.base = new URL(`${scheme}//${this.host}/`);
      this.tlsInsecure = insecure;
      await this.authenticate();
      return;
    }
    throw lastErr;
  }

  private timeout(): { timeoutMs?: number } {
    return this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs };
  }

  private baseHeaders(): Record<string, string> {
    return { 'user-agent': this.options.userAgent ?? 'berth/0.1 (linux)', 'docker-distribution-api-version': 'registry/2.0' };
  }

  /** Sets the Authorization header for the current challenge and scopes. */
  private async authenticate(): Promise<void> {
    const c = this.challenge;
    this.authorization = undefined;
    if (c === undefined) return;
    const creds = basicCredentials(this.auth);
    if (c.scheme === 'basic') {
      if (creds !== undefined) this.authorization = basicHeader(creds);
      return;
    }
    if (this.auth.registrytoken !== undefined) {
      this.authorization = `Bearer ${this.auth.registrytoken}`;
      return;
    }
    const realm = c.params.realm;
    if (realm === undefined) throw new BerthError('BERTH_REGISTRY_PROTOCOL', `${this.host}: a Bearer challenge without realm`, {});
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new BerthError('BERTH_REGISTRY_PROTOCOL', `${this.host}: the token realm ${JSON.stringify(realm)} is not a URL`, {});
    }
    // Credentials go to the realm: only over TLS, unless the registry itself is an insecure one.
    const plainOk = this.tlsInsecure || this.base?.protocol === 'http:';
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && plainOk))
      throw new BerthError(
        'BERTH_REGISTRY_PROTOCOL',
        `${this.host}: refusing the token realm ${JSON.stringify(`${url.origin}${url.pathname}`)}: it is not https and ${this.host} is not an insecure registry`,
        { details: { realm: `${url.origin}${url.pathname}` } },
      );
    if (c.params.service !== undefined) url.searchParams.set('service', c.params.service);
    for (const scope of this.scopes) url.searchParams.append('scope', scope);
    const headers = this.baseHeaders();
    if (creds !== undefined) {
      headers.authorization = basicHeader(creds);
      url.searchParams.set('account', creds.username);
    }
    const res = await this.send({ method: 'GET', url, headers, tlsInsecure: this.tlsInsecure, ...this.timeout() });
    if (res.status !== 200) throw await responseError(res, `GET "${url.origin}${url.pathname}"`);
    const body = await readBody(res, 1024 * 1024, 'token response');
    let token: unknown;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      token = parsed.token ?? parsed.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '')
      throw new BerthError('BERTH_REGISTRY_PROTOCOL', `${url.origin}${url.pathname}: the token service answered without a token`, {});
    this.authorization = `Bearer ${token}`;
  }

  /** Adds a scope (e.g. pull of a mount's source repository) and gets a token that covers it. */
  private async addScope(scope: string): Promise<void> {
    if (this.scopes.has(scope)) return;
    this.scopes.add(scope);
    if (this.challenge?.scheme === 'bearer' && this.auth.registrytoken === undefined) await this.authenticate();
  }

  /**
   * One request to the registry, authenticated; a 401 on a Bearer registry gets one new token
   * (its scope may have grown) and one retry. Redirects are followed; the Authorization header
   * goes only to the registry's own origin.
   */
  async request(method: string, pathOrUrl: string, opts: { headers?: Record<string, string>; body?: HttpRequest['body']; follow?: boolean } = {}): Promise<HttpResponse> {
    await this.ping();
    let url = new URL(pathOrUrl, this.base);
    for (let attempt = 0; ; attempt++) {
      const res = await this.once(method, url, opts);
      if (res.status === 401 && attempt === 0 && this.challenge?.scheme === 'bearer' && (opts.body === undefined || typeof opts.body === 'function')) {
        const again = parseChallenges(res.headers['www-authenticate']).find((c) => c.scheme === 'bearer');
        discard(res);
        if (again?.params.scope !== undefined) for (const s of again.params.scope.split(' ')) this.scopes.add(s);
        await this.authenticate();
        continue;
      }
      if (res.status === 401 && this.challenge?.scheme === 'basic' && basicCredentials(this.auth) === undefined) {
        // Docker's words for a Basic registry asked without credentials.
        discard(res);
        const verb = method.charAt(0) + method.slice(1).toLowerCase();
        throw new BerthError('BERTH_REGISTRY_UNAUTHORIZED', `${verb} "${url.href}": no basic auth credentials`, { details: { status: 401 } });
      }
      if (opts.follow === true && [301, 302, 303, 307, 308].includes(res.status)) {
        let hops = 0;
        let cur = res;
        while ([301, 302, 303, 307, 308].includes(cur.status) && hops++ < MAX_REDIRECTS) {
          const loc = header(cur, 'location');
          discard(cur);
          if (loc === undefined) throw new BerthError('BERTH_REGISTRY_PROTOCOL', `${method} ${url.href}: a redirect without Location`, {});
          url = new URL(loc, url);
          cur = await this.once(method, url, opts);
        }
        return cur;
      }
      return res;
    }
  }

  private once(method: string, url: URL, opts: { headers?: Record<string, string>; body?: HttpRequest['body'] }): Promise<HttpResponse> {
    const headers = { ...this.baseHeaders(), ...opts.headers };
    if (this.authorization !== undefined && url.origin === this.base?.origin) headers.authorization = this.authorization;
    const req: HttpRequest = { method, url, headers, tlsInsecure: this.tlsInsecure, ...this.timeout() };
    if (opts.body !== undefined) req.body = opts.body;
    return this.send(req);
  }

  private path(kind: 'manifests' | 'blobs', ref: string): string {
    return `/v2/${this.name}/${kind}/${ref}`;
  }

  /** `GET /v2/<name>/manifests/<tag|digest>`, checked against the digest when there is one. */
  async getManifest(reference: string): Promise<FetchedManifest> {
    const where = `${this.domain}/${this.name}:${reference}`;
    const res = await this.request('GET', this.path('manifests', reference), { headers: { accept: MANIFEST_ACCEPT } });
    if (res.status !== 200) {
      const err = await responseError(res, `GET ${this.path('manifests', reference)}`);
      if (res.status === 404 && err.details?.registryCode === undefined) err.details!.registryCode = 'MANIFEST_UNKNOWN';
      if (res.status === 404 && err.details?.registryCode === 'MANIFEST_UNKNOWN') err.details.registryMessage = 'manifest unknown: manifest unknown';
      throw err;
    }
    const raw = await readBody(res, MAX_MANIFEST, `manifest ${where}`);
    const digest = sha256Of(raw);
    const claimed = header(res, 'docker-content-digest');
    const expected = reference.startsWith('sha256:') ? reference : claimed?.startsWith('sha256:') === true ? claimed : undefined;
    if (expected !== undefined && expected !== digest)
      throw new BerthError('BERTH_REGISTRY_PROTOCOL', `manifest verification failed for digest ${expected}: the registry sent content with digest ${digest}`, {
        details: { expected, actual: digest },
      });
    const parsed = parseManifest(raw, header(res, 'content-type'), where);
    return { digest, mediaType: parsed.mediaType, raw, parsed };
  }

  /** `HEAD /v2/<name>/blobs/<digest>`: the blob's size, or undefined when the registry lacks it. */
  async statBlob(digest: string): Promise<number | undefined> {
    const res = await this.request('HEAD', this.path('blobs', digest), { follow: true });
    discard(res);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await responseError(res, `HEAD ${this.path('blobs', digest)}`);
    const len = Number(header(res, 'content-length'));
    return Number.isFinite(len) ? len : 0;
  }

  private async openBlob(digest: string): Promise<HttpResponse> {
    const res = await this.request('GET', this.path('blobs', digest), { follow: true });
    if (res.status !== 200) {
      const err = await responseError(res, `GET ${this.path('blobs', digest)}`);
      if (res.status === 404 && err.details !== undefined) err.details.registryCode ??= 'BLOB_UNKNOWN';
      throw err;
    }
    return res;
  }

  /** A small blob (an image config) in memory, digest checked. */
  async readBlob(digest: string, limit = 16 * 1024 * 1024): Promise<Buffer> {
    const res = await this.openBlob(digest);
    const body = await readBody(res, limit, `blob ${digest}`);
    const actual = sha256Of(body);
    if (actual !== digest)
      throw new BerthError('BERTH_REGISTRY_PROTOCOL', `blob verification failed for digest ${digest}: the registry sent content with digest ${actual}`, {
        details: { expected: digest, actual },
      });
    return body;
  }

  /**
   * Streams a blob into `file` while hashing it. A digest or size mismatch removes the file
   * and fails with Docker's text (`filesystem layer verification failed for digest ...`).
   */
  async downloadBlob(digest: string, file: string, opts: { size?: number; onProgress?: (current: number, total: number) => void } = {}): Promise<void> {
    const res = await this.openBlob(digest);
    const total = opts.size ?? Number(header(res, 'content-length') ?? 0);
    const hash = createHash('sha256');
    const out = createWriteStream(file, { mode: 0o600 });
    let n = 0;
    let tooLong = false;
    try {
      await new Promise<void>((resolve, reject) => {
        res.body.on('data', (chunk: Buffer) => {
          n += chunk.length;
          if (opts.size !== undefined && n > opts.size) {
            tooLong = true;
            res.body.destroy();
            out.destroy();
            resolve();
            return;
          }
          hash.update(chunk);
          if (!out.write(chunk)) {
            res.body.pause();
            out.once('drain', () => res.body.resume());
          }
          opts.onProgress?.(n, total);
        });
        res.body.on('error', reject);
        res.body.on('aborted', () => reject(new BerthError('BERTH_REGISTRY_UNAVAILABLE', `GET blob ${digest}: the connection closed early`, {})));
        res.body.on('end', () => out.end());
        out.on('error', reject);
        out.on('finish', resolve);
      });
      const actual = `sha256:${hash.digest('hex')}`;
      if (tooLong || (opts.size !== undefined && n !== opts.size) || actual !== digest)
        throw new BerthError('BERTH_REGISTRY_PROTOCOL', `filesystem layer verification failed for digest ${digest}`, {
          details: { expected: digest, actual: tooLong ? undefined : actual, bytes: n, size: opts.size },
        });
    } catch (err) {
      out.destroy();
      await unlink(file).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Uploads a blob unless the registry has it (`HEAD`) or can mount it from one of `mountFrom`
   * (`POST .../uploads/?mount=&from=`). Monolithic `PUT ?digest=` by default; with
   * `chunkSize`, `PATCH` chunks then an empty `PUT ?digest=`.
   */
  async pushBlob(
    blob: BlobSource,
    opts: { mountFrom?: readonly string[]; chunkSize?: number; onProgress?: (current: number, total: number) => void } = {},
  ): Promise<{ result: PushBlobResult; from?: string }> {
    if ((await this.statBlob(blob.digest)) !== undefined) return { result: 'exists' };
    const uploads = `/v2/${this.name}/blobs/uploads/`;
    let location: string | undefined;
    for (const from of opts.mountFrom ?? []) {
      if (from === this.name) continue;
      await this.addScope(`repository:${from}:pull`);
      const res = await this.request('POST', `${uploads}?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`, {
        headers: { 'content-length': '0' },
      });
      discard(res);
      if (res.status === 201) return { result: 'mounted', from };
      if (res.status === 202) {
        location = header(res, 'location');
        break;
      }
      this.log?.debug({ status: res.status, from }, 'blob mount refused');
    }
    if (location === undefined) {
      const res = await this.request('POST', uploads, { headers: { 'content-length': '0' } });
      if (res.status !== 202) throw await responseError(res, `POST ${uploads}`);
      discard(res);
      location = header(res, 'location');
    }
    if (location === undefined) throw new BerthError('BERTH_REGISTRY_PROTOCOL', `POST ${uploads}: no Location for the upload`, {});
    const chunk = opts.chunkSize;
    let sent = 0;
    const counted = (s: Readable): Readable => {
      s.on('data', (c: Buffer) => {
        sent += c.length;
        opts.onProgress?.(sent, blob.size);
      });
      return s;
    };
    let finish: URL;
    if (chunk !== undefined && chunk > 0 && blob.size > 0) {
      for (let start = 0; start < blob.size; start += chunk) {
        const end = Math.min(start + chunk, blob.size) - 1;
        const res = await this.request('PATCH', location, {
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1), 'content-range': `${start}-${end}` },
          body: () => counted(blob.open({ start, end })),
        });
        if (res.status !== 202) throw await responseError(res, `PATCH blob upload ${blob.digest}`);
        discard(res);
        location = header(res, 'location') ?? location;
      }
      finish = new URL(location, this.base);
      finish.searchParams.set('digest', blob.digest);
      const res = await this.request('PUT', finish.href, { headers: { 'content-length': '0' } });
      return this.finished(res, blob.digest);
    }
    finish = new URL(location, this.base);
    finish.searchParams.set('digest', blob.digest);
    const res = await this.request('PUT', finish.href, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body: () => counted(blob.open()),
    });
    return this.finished(res, blob.digest);
  }

  private async finished(res: HttpResponse, digest: string): Promise<{ result: PushBlobResult }> {
    if (res.status !== 201 && res.status !== 204) throw await responseError(res, `PUT blob upload ${digest}`);
    discard(res);
    const got = header(res, 'docker-content-digest');
    if (got !== undefined && got !== digest)
      throw new BerthError('BERTH_REGISTRY_PROTOCOL', `blob upload ${digest}: the registry stored digest ${got}`, { details: { expected: digest, actual: got } });
    return { result: 'pushed' };
  }

  /** `PUT /v2/<name>/manifests/<tag>`; answers the manifest's digest. */
  async putManifest(reference: string, mediaType: string, raw: Buffer): Promise<string> {
    const p = this.path('manifests', reference);
    const res = await this.request('PUT', p, { headers: { 'content-type': mediaType }, body: raw });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await responseError(res, `PUT ${p}`);
    discard(res);
    const digest = sha256Of(raw);
    const got = header(res, 'docker-content-digest');
    if (got !== undefined && got !== digest)
      throw new BerthError('BERTH_REGISTRY_PROTOCOL', `PUT ${p}: the registry stored digest ${got}, not ${digest}`, { details: { expected: digest, actual: got } });
    return digest;
  }
}
