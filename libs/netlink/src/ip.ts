import { isIPv4, isIPv6 } from 'node:net';
import { BerthError } from '@berth/errors';

export function ipFamily(ip: string): 4 | 6 {
  if (isIPv4(ip)) return 4;
  if (isIPv6(ip)) return 6;
  throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid IP address ${JSON.stringify(ip)}`);
}

export function ipToBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid IP address ${JSON.stringify(ip)}`);
  let text = ip;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    const v = last.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((v[0]! << 8) | v[1]!).toString(16)}:${((v[2]! << 8) | v[3]!).toString(16)}`;
  }
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  let groups: number[];
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    const head = parse(text.slice(0, dbl));
    const rest = parse(text.slice(dbl + 2));
    const fill = 8 - head.length - rest.length;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  } else {
    groups = parse(text);
  }
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

export function bytesToIp(b: Buffer | Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) throw new BerthError('BERTH_INTERNAL', `address of ${b.length} bytes`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // RFC 5952: the longest run (>= 2) of zero groups becomes '::'.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

export interface Cidr {
  ip: string;
  prefix: number;
  family: 4 | 6;
}

export function parseCidr(cidr: string): Cidr {
  const slash = cidr.indexOf('/');
  const ip = slash < 0 ? cidr : cidr.slice(0, slash);
  const family = ipFamily(ip);
  const max = family === 4 ? 32 : 128;
  const prefix = slash < 0 ? max : Number(cidr.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (slash >= 0 && cidr.slice(slash + 1) === '')) {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid CIDR ${JSON.stringify(cidr)}`);
  }
  return { ip: bytesToIp(ipToBytes(ip)), prefix, family };
}

export function macToBytes(mac: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid MAC address ${JSON.stringify(mac)}`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function bytesToMac(b: Buffer | Uint8Array | undefined): string {
  if (b === undefined) return '';
  return Array.from(b)
    .map((x) => x.toString(16).padStart(2, '0'))
    .join(':');
}
