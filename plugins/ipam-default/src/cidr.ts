/**
 * Address arithmetic for the IPAM: IPv4 and IPv6 addresses as bigints, prefixes as
 * (base, length) pairs. Text in and out follows Go's net/netip forms (dotted quad, RFC 5952).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { BerthError } from '@berth/errors';

export interface Prefix {
  v6: boolean;
  /** The network address (host bits cleared). */
  base: bigint;
  len: number;
}

export const bitsOf = (v6: boolean): number => (v6 ? 128 : 32);

export function parseIp(text: string): { v6: boolean; value: bigint } | undefined {
  if (isIPv4(text)) {
    const [a, b, c, d] = text.split('.').map(Number) as [number, number, number, number];
    return { v6: false, value: BigInt(((a << 24) >>> 0) + (b << 16) + (c << 8) + d) };
  }
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = parseIp(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tailV4 = v4.value;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.includes('::') ? head.split('::') as [string, string] : [head, undefined];
  const l = left === '' ? [] : left.split(':');
  const r = right === undefined || right === '' ? [] : right.split(':');
  const groups = right === undefined ? l : [...l, ...Array<string>(8 - l.length - r.length).fill('0'), ...r];
  if (groups.length !== 8) return undefined;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  if (tailV4 !== undefined) value = (value & ~0xffffffffn) | tailV4;
  return { v6: true, value };
}

export function formatIp(value: bigint, v6: boolean): string {
  if (!v6) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: the longest run (>= 2) of zero groups becomes '::', the first on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

const mask = (len: number, v6: boolean): bigint => {
  const bits = BigInt(bitsOf(v6));
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(len))) - 1n);
};

/** Parses "a.b.c.d/n" or "x::/n"; host bits are cleared (Go's ParseCIDR network). */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (ip === undefined || !/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > bitsOf(ip.v6)) return undefined;
  return { v6: ip.v6, base: ip.value & mask(len, ip.v6), len };
}

/** parsePrefix, or a BerthError InvalidArgument naming what was wrong. */
export function mustPrefix(text: string, what: string): Prefix {
  const p = parsePrefix(text);
  if (p === undefined) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${what} ${JSON.stringify(text)}: not a CIDR`);
  return p;
}

export const formatPrefix = (p: Prefix): string => `${formatIp(p.base, p.v6)}/${p.len}`;

export const sizeOf = (p: Prefix): bigint => 1n << BigInt(bitsOf(p.v6) - p.len);
export const lastOf = (p: Prefix): bigint => p.base + sizeOf(p) - 1n;

export const containsIp = (p: Prefix, v6: boolean, value: bigint): boolean => p.v6 === v6 && value >= p.base && value <= lastOf(p);

/** `inner` lies completely inside `outer`. */
export const within = (inner: Prefix, outer: Prefix): boolean => inner.v6 === outer.v6 && inner.len >= outer.len && containsIp(outer, inner.v6, inner.base);

export const overlaps = (a: Prefix, b: Prefix): boolean => a.v6 === b.v6 && a.base <= lastOf(b) && b.base <= lastOf(a);

/** The prefixes of length `len` that make up `p`, in address order (lazily: 10/8 in /24s is 65 536). */
export function* split(p: Prefix, len: number): Generator<Prefix> {
  if (len < p.len) {
    yield p;
    return;
  }
  const step = 1n << BigInt(bitsOf(p.v6) - len);
  for (let base = p.base; base <= lastOf(p); base += step) yield { v6: p.v6, base, len };
}
