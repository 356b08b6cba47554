/**
 * `POST /auth` (docker login): checks credentials against a registry the way Docker's daemon
 * does (its loginV2): `GET /v2/`; no challenge means any credentials do; a Basic challenge is
 * answered with them; a Bearer challenge gets a token from the realm with them, and `/v2/` must
 * then accept that token. Nothing is stored here: the CLI keeps what it sent.
 */
import { BerthError } from '@berth/errors';
import { basicCredentials, basicHeader, parseChallenges, type AuthConfig } from './auth.js';
import { responseError } from './errors.js';
import { HUB_DOMAIN, isInsecureRegistry, registryHost } from './hosts.js';
import type { RegistryClientOptions } from './repository.js';
import { discard, nodeTransport, readBody, type HttpResponse, type Transport } from './transport.js';

/** The body of a successful `POST /auth`, in Docker's field names. */
export interface LoginResult {
  Status: string;
  IdentityToken: string;
}

/** Docker's default registry as the CLI names it in config.json and in `/auth` bodies. */
export const DEFAULT_SERVER_ADDRESS = 'https://index.docker.io/v1/';

/** The registry domain a login's `serveraddress` names: scheme and path dropped; Docker Hub's names are docker.io. */
export function loginDomain(serverAddress: string | undefined): string {
  let s = (serverAddress ?? '').trim();
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = s.indexOf('/');
  if (slash !== -1) s = s.slice(0, slash);
  if (s === '' || s === 'index.docker.io' || s === 'registry-1.docker.io' || s === HUB_DOMAIN) return HUB_DOMAIN;
  return s;
}

function unauthorized(message: string, status: number): BerthError {
  return new BerthError('BERTH_REGISTRY_UNAUTHORIZED', message, { details: { status } });
}

async function statusLine(res: HttpResponse): Promise<string> {
  return `${res.status} ${res.body.statusMessage ?? ''}`.trimEnd();
}

export async function login(auth: AuthConfig, opts: RegistryClientOptions = {}): Promise<LoginResult> {
  const domain = loginDomain(auth.serveraddress);
  const host = registryHost(domain);
  const insecure = isInsecureRegistry(domain, opts.insecureRegistries);
  const send: Transport = opts.transport ?? nodeTransport;
  const creds = basicCredentials(auth);
  const base = { 'user-agent': opts.userAgent ?? 'berth/0.1 (linux)', 'docker-distribution-api-version': 'registry/2.0' };
  const timeout = opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs };
  let lastErr: unknown;
  // As Docker: https first; plain http only for an insecure registry, when https does not answer.
  for (const scheme of insecure ? ['https:', 'http:'] : ['https:']) {
    const url = new URL(`${scheme}//${host}/v2/`);
    let res: HttpResponse;
    try {
      res = await send({ method: 'GET', url, headers: base, tlsInsecure: insecure, ...timeout });
    } catch (err) {
      lastErr = err;
      opts.logger?.debug({ err, url: url.href }, 'login: registry ping failed');
      continue;
    }
    discard(res);
    if (res.status === 200) return { Status: 'Login Succeeded', IdentityToken: '' };
    if (res.status !== 401) throw new BerthError('BERTH_REGISTRY_PROTOCOL', `login attempt to ${url.href} failed with status: ${await statusLine(res)}`, { details: { status: res.status } });
    const challenge = parseChallenges(res.headers['www-authenticate']).find((c) => c.scheme === 'bearer' || c.scheme === 'basic');
    if (creds === undefined) throw unauthorized(`Get "${url.href}": no basic auth credentials`, 401);
    if (challenge === undefined || challenge.scheme === 'basic') {
      const again = await send({ method: 'GET', url, headers: { ...base, authorization: basicHeader(creds) }, tlsInsecure: insecure, ...timeout });
      discard(again);
      if (again.status === 200) return { Status: 'Login Succeeded', IdentityToken: '' };
      const why = `login attempt to ${url.href} failed with status: ${await statusLine(again)}`;
      throw again.status === 401 || again.status === 403 ? unauthorized(why, again.status) : new BerthError('BERTH_REGISTRY_PROTOCOL', why, { details: { status: again.status } });
    }
    // Bearer: a token for the account, then /v2/ with it.
    const realm = challenge.params.realm;
    let tokenUrl: URL;
    try {
      tokenUrl = new URL(realm ?? '');
    } catch {
      throw new BerthError('BERTH_REGISTRY_PROTOCOL', `${host}: the token realm ${JSON.stringify(realm)} is not a URL`, {});
    }
    if (tokenUrl.protocol !== 'https:' && !(tokenUrl.protocol === 'http:' && (insecure || scheme === 'http:')))
      throw new BerthError('BERTH_REGISTRY_PROTOCOL', `${host}: refusing the token realm ${JSON.stringify(`${tokenUrl.origin}${tokenUrl.pathname}`)}: it is not https and ${host} is not an insecure registry`, {});
    if (challenge.params.service !== undefined) tokenUrl.searchParams.set('service', challenge.params.service);
    tokenUrl.searchParams.set('account', creds.username);
    tokenUrl.searchParams.set('client_id', 'berth');
    const tres = await send({ method: 'GET', url: tokenUrl, headers: { ...base, authorization: basicHeader(creds) }, tlsInsecure: insecure, ...timeout });
    if (tres.status !== 200) throw await responseError(tres, `Get "${tokenUrl.origin}${tokenUrl.pathname}"`);
    let token: unknown;
    try {
      const parsed = JSON.parse((await readBody(tres, 1024 * 1024, 'token response')).toString('utf8')) as Record<string, unknown>;
      token = parsed.token ?? parsed.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '')
      throw new BerthError('BERTH_REGISTRY_PROTOCOL', `${tokenUrl.origin}${tokenUrl.pathname}: the token service answered without a token`, {});
    const check = await send({ method: 'GET', url, headers: { ...base, authorization: `Bearer ${token}` }, tlsInsecure: insecure, ...timeout });
    discard(check);
    if (check.status !== 200) throw unauthorized(`login attempt to ${url.href} failed with status: ${await statusLine(check)}`, check.status);
    // No offline token is asked for: pulls and pushes use the user and password the CLI keeps
    // (they do not trade refresh tokens for access tokens).
    return { Status: 'Login Succeeded', IdentityToken: '' };
  }
  throw lastErr ?? new BerthError('BERTH_REGISTRY_UNAVAILABLE', `${host}: no way to reach the registry`, {});
}
