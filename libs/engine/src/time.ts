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

/** Go's units.HumanDuration, to the word. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(seconds / 3600);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(Math.floor(ms / 3_600_000) / 24 / 365)} years`;
}
