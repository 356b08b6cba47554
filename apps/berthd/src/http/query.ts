import { BerthError } from '@berth/errors';

export type Query = Record<string, string | string[] | undefined>;

/** The last value of a query key (Go's `Form.Get` takes the first; clients send one). */
export function str(q: Query, key: string): string | undefined {
  const v = q[key];
  return Array.isArray(v) ? v[0] : v;
}

export function all(q: Query, key: string): string[] {
  const v = q[key];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Docker's `httputils.BoolValue`: "", 0, no, false, none are false; anything else true. */
export function bool(q: Query, key: string, dflt = false): boolean {
  const v = str(q, key);
  if (v === undefined) return dflt;
  const s = v.trim().toLowerCase();
  return !(s === '' || s === '0' || s === 'no' || s === 'false' || s === 'none');
}

/** An integer query value; absent or empty gives `dflt`, anything else non-integer is a 400. */
export function int(q: Query, key: string, dflt: number): number;
export function int(q: Query, key: string, dflt?: undefined): number | undefined;
export function int(q: Query, key: string, dflt?: number): number | undefined {
  const v = str(q, key);
  if (v === undefined || v === '') return dflt;
  if (!/^[+-]?\d+$/.test(v.trim()))
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid value for ${key}: ${JSON.stringify(v)} is not an integer`, { details: { field: key } });
  return Number.parseInt(v, 10);
}

/**
 * A timestamp of `since`/`until`: `<seconds>` or `<seconds>.<nanoseconds>` as the Go client
 * sends, or an RFC 3339 date. Returns unix seconds (fractional); undefined when absent.
 */
export function timestamp(q: Query, key: string): number | undefined {
  const v = str(q, key);
  if (v === undefined || v === '') return undefined;
  const m = /^(-?\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (m) return Number(m[1]) + (m[2] ? Number(m[2].padEnd(9, '0')) / 1e9 : 0);
  const t = Date.parse(v);
  if (!Number.isNaN(t)) return t / 1000;
  throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid value for ${key}: ${JSON.stringify(v)} is not a timestamp`, { details: { field: key } });
}
