import { BerthError } from '@berth/errors';
import type { Filters } from './types.js';

/**
 * Parses Docker's `filters` query value: `{"key": {"value": true}}` (modern clients) or the
 * legacy `{"key": ["value"]}`. Absent or empty means no filter.
 */
export function parseFilters(raw: string | undefined | null): Filters {
  const out: Filters = new Map();
  if (raw === undefined || raw === null || raw === '') return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid filters: ${raw}`, { details: { field: 'filters' } });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid filters: ${raw}`, { details: { field: 'filters' } });
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const set = new Set<string>();
    if (Array.isArray(value)) for (const v of value) set.add(String(v));
    else if (value && typeof value === 'object') {
      for (const [v, on] of Object.entries(value as Record<string, unknown>)) if (on) set.add(v);
    } else throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid filter '${key}'`, { details: { field: `filters.${key}` } });
    out.set(key, set);
  }
  return out;
}

/** Serialises filters the way the Go client does (map of sets). */
export function encodeFilters(filters: Record<string, string[]>): string {
  const out: Record<string, Record<string, boolean>> = {};
  for (const [k, vs] of Object.entries(filters)) {
    if (vs.length === 0) continue;
    out[k] = {};
    for (const v of vs) out[k][v] = true;
  }
  return JSON.stringify(out);
}
