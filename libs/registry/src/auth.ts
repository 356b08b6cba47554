import { BerthError } from '@berth/errors';
import { loginDomain } from './login.js';

/** Docker's AuthConfig, as sent base64url-encoded JSON in `X-Registry-Auth`. */
export interface AuthConfig {
  username?: string;
  password?: string;
  /** base64 of `user:password`, as stored in the CLI's config.json. */
  auth?: string;
  email?: string;
  serveraddress?: string;
  /** An OAuth refresh token from a login (not supported yet: see README). */
  identitytoken?: string;
  /** A bearer token to send as is. */
  registrytoken?: string;
}

/** Decodes an `X-Registry-Auth` header; absent or empty means anonymous. Malformed: 400. */
export function decodeRegistryAuth(value: string | undefined): AuthConfig {
  const parsed = decodeHeaderJson(value, 'X-Registry-Auth');
  if (parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new BerthError('BERTH_INVALID_ARGUMENT', 'invalid X-Registry-Auth header: not a JSON object', { details: { field: 'X-Registry-Auth' } });
  return authConfigOf(parsed as Record<string, unknown>);
}

/**
 * `X-Registry-Config` (a build): every registry's credentials, keyed as the client's config.json
 * keys them (`https://index.docker.io/v1/`, `localhost:5000`); a missing or empty header is none.
 */
export function decodeRegistryConfig(value: string | undefined): Record<string, AuthConfig> {
  const parsed = decodeHeaderJson(value, 'X-Registry-Config');
  if (parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new BerthError('BERTH_INVALID_ARGUMENT', 'invalid X-Registry-Config header: not a JSON object', { details: { field: 'X-Registry-Config' } });
  const out: Record<string, AuthConfig> = {};
  for (const [key, entry] of Object.entries(parsed as Record<string, unknown>))
    if (entry !== null && typeof entry === 'object' && !Array.isArray(entry)) out[key] = authConfigOf(entry as Record<string, unknown>);
  return out;
}

/** The credentials of `configs` for a registry domain: the entry whose key names it (a key's scheme and path do not count; Docker Hub's names are one). */
export function authForDomain(configs: Record<string, AuthConfig>, domain: string): AuthConfig {
  const want = loginDomain(domain);
  for (const [key, auth] of Object.entries(configs)) if (loginDomain(key) === want) return auth;
  return {};
}

/** A base64url (or base64) JSON header value; null when absent, empty or `null`. */
function decodeHeaderJson(value: string | undefined, field: string): unknown {
  if (value === undefined || value.trim() === '' || value.trim() === 'null') return null;
  try {
    const json = Buffer.from(value.trim().replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    return JSON.parse(json) as unknown;
  } catch (err) {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${field} header: not base64url-encoded JSON`, { cause: err, details: { field } });
  }
}

function authConfigOf(src: Record<string, unknown>): AuthConfig {
  const out: AuthConfig = {};
  for (const key of ['username', 'password', 'auth', 'email', 'serveraddress', 'identitytoken', 'registrytoken'] as const) {
    // The docker CLI sends these lower-case; some clients send Go's field names.
    const v = src[key] ?? src[key.charAt(0).toUpperCase() + key.slice(1)];
    if (typeof v === 'string' && v !== '') out[key] = v;
  }
  return out;
}

/** Encodes an AuthConfig for `X-Registry-Auth` (the CLI side). */
export function encodeRegistryAuth(auth: AuthConfig): string {
  return Buffer.from(JSON.stringify(auth), 'utf8').toString('base64url');
}

/** The user and password of an AuthConfig, from its fields or its `auth` blob. */
export function basicCredentials(auth: AuthConfig): { username: string; password: string } | undefined {
  if (auth.username !== undefined && auth.password !== undefined) return { username: auth.username, password: auth.password };
  if (auth.auth !== undefined) {
    const text = Buffer.from(auth.auth, 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i > 0) return { username: text.slice(0, i), password: text.slice(i + 1) };
  }
  return undefined;
}

export function basicHeader(c: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

/** One `WWW-Authenticate` challenge: scheme (lower-case) and its parameters. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses RFC 7235 challenges: `Bearer realm="...",service="...",scope="..."`, `Basic realm="..."`. */
export function parseChallenges(values: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  for (const value of values === undefined ? [] : Array.isArray(values) ? values : [values]) {
    let s = value.trim();
    let current: Challenge | undefined;
    while (s.length > 0) {
      const param = /^([A-Za-z0-9_.-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*)\s*,?\s*/.exec(s);
      if (param !== null && current !== undefined) {
        const raw = param[3] !== undefined ? param[3].replace(/\\(.)/g, '$1') : param[2]!;
        current.params[param[1]!.toLowerCase()] = raw;
        s = s.slice(param[0].length);
        continue;
      }
      const scheme = /^([A-Za-z0-9_.-]+)\s*,?\s*/.exec(s);
      if (scheme === null) break;
      current = { scheme: scheme[1]!.toLowerCase(), params: {} };
      out.push(current);
      s = s.slice(scheme[0].length);
    }
  }
  return out;
}
