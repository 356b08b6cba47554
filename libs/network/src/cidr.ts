/** Address arithmetic the controller needs to validate requests: parse, contain, overlap. */
import { Address4, Address6 } from 'ip-address';
import { BerthError } from '@berth/errors';

export interface Prefix {
  family: 4 | 6;
  /** First and last address as integers. */
  first: bigint;
  last: bigint;
  bits: number;
  /** Canonical text (network address/bits). */
  text: string;
}

function parse(text: string): Address4 | Address6 | undefined {
  try {
    if (Address4.isValid(text)) return new Address4(text);
    if (Address6.isValid(text)) return new Address6(text);
  } catch {
    return undefined;
  }
  return undefined;
}

/** A CIDR (`172.18.0.0/16`) or a plain address (a /32 or /128); throws 400 on garbage. */
export function prefixOf(text: string, what = 'address'): Prefix {
  const a = parse(text.trim());
  if (!a) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${what} ${text}: invalid CIDR address: ${text}`);
  const family = a instanceof Address4 ? 4 : 6;
  const first = a.startAddress().bigInt();
  const last = a.endAddress().bigInt();
  const bits = a.subnetMask;
  return { family, first, last, bits, text: `${a.startAddress().correctForm()}/${bits}` };
}

/** A CIDR that must carry a prefix length (`--subnet`, `--ip-range`). */
export function cidrOf(text: string, what: string): Prefix {
  if (!text.includes('/')) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${what} ${text}: invalid CIDR address: ${text}`);
  return prefixOf(text, what);
}

/** A plain address (`--ip`, `--gateway`). */
export function addressOf(text: string, what: string): Prefix {
  if (text.includes('/') || !parse(text)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${what}: ${text} is not an IP address`);
  return prefixOf(text, what);
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

export function contains(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && outer.first <= inner.first && inner.last <= outer.last;
}

/** `172.18.0.5/16` -> `172.18.0.5`. */
export function ipOfCidr(cidr: string): string {
  const i = cidr.indexOf('/');
  return i < 0 ? cidr : cidr.slice(0, i);
}

export function bitsOfCidr(cidr: string): number {
  const i = cidr.indexOf('/');
  return i < 0 ? 0 : Number(cidr.slice(i + 1));
}
