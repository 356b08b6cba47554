/**
 * Time as Docker shows it: RFC 3339 with nanoseconds, Go's zero time for "never", and
 * Go's units.HumanDuration for ps.
 */

export const ZERO_TIME = '0001-01-01T00:00:00Z';

const hrBase = process.hrtime.bigint();
const wallBase = BigInt(Date.now()) * 1_000_000n;

/** Wall-clock nanoseconds since the epoch, monotonic within the process. */
export function nowNanos(): bigint {
  return wallBase + (process.hrtime.bigint() - hrBase);
}

/** `2006-01-02T15:04:05.999999999Z` with exactly 9 fractional digits. */
export function rfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const iso = new Date(ms).toISOString(); // ...T..:..:..(.mmm)Z
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${frac}Z`;
}

/** Parses an RFC 3339 time (any number of fractional digits) to nanoseconds; null for the zero time or garbage. */
export function parseRfc3339Nano(text: string): bigint | null {
  if (!text || text.startsWith('0001-01-01')) return null;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) return null;
  const base = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(base)) return null;
  const frac = BigInt((m[2] ?? '').padEnd(9, '0') || '0');
  return BigInt(base) * 1_000_000n + frac;
}

export { humanDuration } from '@berth/api/wire';
