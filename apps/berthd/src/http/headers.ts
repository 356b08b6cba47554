import { API_VERSION } from '@berth/api/wire';

/**
 * The headers Docker's middleware puts on every response. The docker CLI parses the OS out of
 * the parentheses of `Server` (it picks the stats formulas by it), so keep `(linux)` there.
 */
export function commonHeaders(serverVersion: string): Record<string, string> {
  return {
    'api-version': API_VERSION,
    'docker-experimental': 'false',
    ostype: 'linux',
    server: `Berth/${serverVersion} (linux)`,
  };
}

/** Canonical header spelling (Go writes `Api-Version`), for responses written by hand. */
export function canonicalHeaderName(name: string): string {
  return name
    .split('-')
    .map((p) => (p.length ? p[0]!.toUpperCase() + p.slice(1).toLowerCase() : p))
    .join('-');
}
