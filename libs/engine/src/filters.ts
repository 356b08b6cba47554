/** `docker ps` and `docker events` filters. */
import type { EventMessage, Filters, StringMap } from '@berth/api';
import { BerthError } from '@berth/errors';

export function invalidFilter(key: string, value?: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', value === undefined ? `invalid filter '${key}'` : `invalid filter '${key}=${value}'`, {
    details: { field: `filters.${key}` },
  });
}

export function checkFilterKeys(filters: Filters, allowed: readonly string[]): void {
  for (const k of filters.keys()) if (!allowed.includes(k)) throw invalidFilter(k);
}

/** Docker's filters.Match: any value, as a regexp searched in the source (a bad regexp compares literally). */
export function matchRegexp(values: Set<string> | undefined, source: string): boolean {
  if (!values || values.size === 0) return true;
  for (const v of values) {
    try {
      if (new RegExp(v).test(source)) return true;
    } catch {
      if (source === v) return true;
    }
  }
  return false;
}

/** Label filters: every value (`k` or `k=v`) must hold. */
/** An `until` value: unix seconds, RFC 3339, or a Go duration before now (`24h`, `10m`). */
export function untilOf(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const d = /^(\d+(?:\.\d+)?)(h|m|s)$/.exec(v);
  if (d) return Date.now() / 1000 - Number(d[1]) * { h: 3600, m: 60, s: 1 }[d[2] as 'h' | 'm' | 's'];
  const t = Date.parse(v);
  if (!Number.isNaN(t)) return t / 1000;
  throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid filter 'until=${v}'`, { details: { field: 'filters.until' } });
}

export function matchLabels(values: Set<string> | undefined, labels: StringMap | null | undefined): boolean {
  if (!values || values.size === 0) return true;
  const l = labels ?? {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq < 0) {
      if (!(v in l)) return false;
    } else if (l[v.slice(0, eq)] !== v.slice(eq + 1)) return false;
  }
  return true;
}

export const containerStates = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

export const psFilterKeys = ['ancestor', 'before', 'expose', 'exited', 'health', 'id', 'isolation', 'is-task', 'label', 'name', 'network', 'publish', 'since', 'status', 'volume'];

export const eventFilterKeys = ['container', 'daemon', 'event', 'image', 'label', 'network', 'node', 'plugin', 'scope', 'type', 'volume', 'config', 'secret', 'service'];

/** Whether an event passes `docker events` filters. */
export function matchEvent(e: EventMessage, f: Filters): boolean {
  const has = (k: string): Set<string> | undefined => {
    const s = f.get(k);
    return s && s.size ? s : undefined;
  };
  const types = has('type');
  if (types && !types.has(e.Type)) return false;
  const events = has('event');
  if (events) {
    const base = e.Action.includes(':') ? e.Action.slice(0, e.Action.indexOf(':')) : e.Action;
    if (!events.has(e.Action) && !events.has(base)) return false;
  }
  const scope = has('scope');
  if (scope && !scope.has(e.scope)) return false;
  const attrs = e.Actor.Attributes ?? {};
  const container = has('container');
  if (container) {
    if (e.Type !== 'container') return false;
    const ok = [...container].some((v) => v === e.Actor.ID || v === attrs.name || (v.length >= 1 && /^[0-9a-f]+$/.test(v) && e.Actor.ID.startsWith(v)));
    if (!ok) return false;
  }
  const image = has('image');
  if (image) {
    const candidates = e.Type === 'image' ? [e.Actor.ID, attrs.name ?? ''] : [attrs.image ?? ''];
    const ok = [...image].some((v) => candidates.some((c) => c === v || c === `${v}:latest` || c.replace(/^sha256:/, '').startsWith(v.replace(/^sha256:/, ''))));
    if (!ok) return false;
  }
  if (!matchLabels(has('label'), attrs)) return false;
  for (const k of ['network', 'volume', 'plugin', 'daemon', 'node', 'config', 'secret', 'service'] as const) {
    const vs = has(k);
    if (vs && (e.Type !== k || ![...vs].some((v) => v === e.Actor.ID || v === attrs.name))) return false;
  }
  return true;
}
