import { BerthError } from '@berth/errors';
import { API_VERSION, MIN_API_VERSION } from '@berth/api/wire';

/** Docker's path prefix: `/v1.47/containers/json` (regex `/v[0-9.]+`). */
const VERSION_PREFIX = /^\/v([0-9.]+)(?=\/|\?|$)/;

/** Splits `/v1.47/x?y` into the version (or undefined) and the url without the prefix. */
export function splitVersion(url: string): { version: string | undefined; url: string } {
  const m = VERSION_PREFIX.exec(url);
  if (!m) return { version: undefined, url };
  const rest = url.slice(m[0].length);
  return { version: m[1], url: rest === '' || rest.startsWith('?') ? '/' + rest : rest };
}

/** Compares dotted versions numerically, as Docker's `versions.Compare` does. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = Number.parseInt(pa[i] ?? '0', 10) || 0;
    const y = Number.parseInt(pb[i] ?? '0', 10) || 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export const versionAtLeast = (v: string, min: string): boolean => compareVersions(v, min) >= 0;

/** The version a request speaks; throws Docker's exact 400 texts outside [min, max]. */
export function checkVersion(version: string | undefined, min: string = MIN_API_VERSION, max: string = API_VERSION): string {
  if (version === undefined) return max;
  if (compareVersions(version, min) < 0)
    throw new BerthError(
      'BERTH_INVALID_ARGUMENT',
      `client version ${version} is too old. Minimum supported API version is ${min}, please upgrade your client to a newer version`,
      { details: { field: 'version' } },
    );
  if (compareVersions(version, max) > 0)
    throw new BerthError('BERTH_INVALID_ARGUMENT', `client version ${version} is too new. Maximum supported API version is ${max}`, {
      details: { field: 'version' },
    });
  return version;
}
