/** The history `created_by` texts of config steps, in the forms dockerd's Go code prints. */
import type { ImageRuntimeConfig } from '@berth/api';

/**
 * History texts as dockerd prints them with Go's fmt: `%q` of a string list (`["a" "b"]`) and
 * `%v` of a HealthConfig (`&{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x02'}`).
 */
export function goQuotedList(v: readonly string[]): string {
  return `[${v.map((x) => JSON.stringify(x)).join(' ')}]`;
}

export function goDuration(ns: number | undefined): string {
  let n = ns ?? 0;
  if (n === 0) return '0s';
  if (n < 1e3) return `${n}ns`;
  if (n < 1e6) return `${n / 1e3}µs`;
  if (n < 1e9) return `${n / 1e6}ms`;
  let out = '';
  const h = Math.floor(n / 3600e9);
  if (h > 0) out += `${h}h`;
  n -= h * 3600e9;
  const m = Math.floor(n / 60e9);
  if (h > 0 || m > 0) out += `${m}m`;
  n -= m * 60e9;
  return `${out}${n / 1e9}s`;
}

export function goRune(r: number): string {
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };
  if (named[r] !== undefined) return `'${named[r]}'`;
  if (r >= 32 && r < 127) return `'${String.fromCharCode(r)}'`;
  return r < 256 ? `'\\x${r.toString(16).padStart(2, '0')}'` : `'\\u${r.toString(16).padStart(4, '0')}'`;
}

export function goHealthcheck(h: NonNullable<ImageRuntimeConfig['Healthcheck']>): string {
  return `&{${goQuotedList(h.Test ?? [])} "${goDuration(h.Interval)}" "${goDuration(h.Timeout)}" "${goDuration(h.StartPeriod)}" ${goRune(h.Retries ?? 0)}}`;
}

