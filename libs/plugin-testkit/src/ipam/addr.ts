import { isIPv4, isIPv6 } from 'node:net';

/** Minimal address math for the IPAM suite and fake: IPs as bigints, CIDRs as [base, len, v6]. */
export interface Cidr {
  v6: boolean;
  base: bigint;
  len: number;
}

export function ipToBig(ip: string): { v6: boolean; value: bigint } | undefined {
  if (isIPv4(ip)) return { v6: false, value: ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n) };
  if (!isIPv6(ip) || ip.includes('.')) return undefined;
  const [l, r] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const left = l ? l.split(':') : [];
  const right = r ? r.split(':') : [];
  const groups = r === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return { v6: true, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

export function bigToIp(value: bigint, v6: boolean): string {
  if (!v6) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: the first longest run of two or more zero groups becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    if (j > i) i = j - 1;
  }
  const hex = g.map((x) => x.toString(16));
  return best < 0 ? hex.join(':') : `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function parseCidr(text: string): Cidr | undefined {
  const [ip, len] = text.split('/');
  const a = ip === undefined ? undefined : ipToBig(ip);
  if (a === undefined || len === undefined || !/^\d+$/.test(len)) return undefined;
  const bits = a.v6 ? 128 : 32;
  const n = Number(len);
  if (n > bits) return undefined;
  const host = (1n << BigInt(bits - n)) - 1n;
  return { v6: a.v6, base: a.value & ~host, len: n };
}

export const lastOf = (c: Cidr): bigint => c.base + (1n << BigInt((c.v6 ? 128 : 32) - c.len)) - 1n;
export const inCidr = (c: Cidr, ip: string): boolean => {
  const a = ipToBig(ip);
  return a !== undefined && a.v6 === c.v6 && a.value >= c.base && a.value <= lastOf(c);
};
export const cidrOverlap = (a: Cidr, b: Cidr): boolean => a.v6 === b.v6 && a.base <= lastOf(b) && b.base <= lastOf(a);
