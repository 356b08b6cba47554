/**
 * Docker's default IPAM (specs/plugin-protocol.md §6.3): address spaces LocalDefault and
 * GlobalDefault, the default pools split into subnets, first-free (or serial) addresses.
 *
 * State: memory only, and `RequiresRequestReplay: true` — exactly Docker's choice. The
 * controller's store is the single truth: at daemon start it replays RequestPool (with the
 * stored Pool/SubPool), the gateway RequestAddress and one RequestAddress per endpoint. Pool
 * ids are deterministic (`LocalDefault/172.18.0.0/16[/172.18.5.0/24]`), so a replay gives the
 * same ids as the first run, and nothing can leak between the two stores after a crash.
 */
import { BerthError } from '@berth/errors';
import {
  IpamSerialOption,
  RequestAddressType,
  type AddressSpaces,
  type DriverLogger,
  type IpamCapabilities,
  type IpamDriver,
  type PoolRef,
  type ReleaseAddressRequest,
  type RequestAddressRequest,
  type RequestAddressResponse,
  type RequestPoolRequest,
  type RequestPoolResponse,
} from '@berth/plugin-api';
import { bitsOf, containsIp, formatIp, formatPrefix, lastOf, mustPrefix, overlaps, parseIp, split, within, type Prefix } from './cidr.js';

export const LocalDefault = 'LocalDefault';
export const GlobalDefault = 'GlobalDefault';
/** The value of `RequestAddressType` for the network's gateway. */
export const GatewayAddressType = 'com.docker.network.gateway';
/** RequestPool option: comma-separated CIDRs a pool picked from the defaults must not overlap (host routes). */
export const AvoidOption = 'berth.ipam.avoid';
/** Daemon option (deps.options): JSON `[{"base":"10.10.0.0/16","size":24}, ...]` like daemon.json's default-address-pools. */
export const DefaultAddressPoolsOption = 'default-address-pools';

/** A base prefix split into subnets of `size` bits (daemon.json's `default-address-pools` entry). */
export interface PoolSpec {
  base: string;
  size: number;
}

/** Docker's local defaults: 172.17-19/16, 172.20/14, 172.24/14, 172.28/14 in /16s, 192.168/16 in /20s. */
export const defaultLocalPools: readonly PoolSpec[] = [
  { base: '172.17.0.0/16', size: 16 },
  { base: '172.18.0.0/16', size: 16 },
  { base: '172.19.0.0/16', size: 16 },
  { base: '172.20.0.0/14', size: 16 },
  { base: '172.24.0.0/14', size: 16 },
  { base: '172.28.0.0/14', size: 16 },
  { base: '192.168.0.0/16', size: 20 },
];
export const defaultGlobalPools: readonly PoolSpec[] = [{ base: '10.0.0.0/8', size: 24 }];
/** IPv6 pools for `--ipv6` without `--subnet`: unique-local /64s. */
export const defaultV6Pools: readonly PoolSpec[] = [{ base: 'fd00::/8', size: 64 }];

export interface DefaultIpamOptions {
  localPools?: readonly PoolSpec[];
  globalPools?: readonly PoolSpec[];
  v6Pools?: readonly PoolSpec[];
  logger?: DriverLogger;
}

interface Pool {
  id: string;
  space: string;
  prefix: Prefix;
  sub: Prefix | undefined;
  /** Range handed out by "any" requests: the sub-pool (or pool) without reserved addresses. */
  first: bigint;
  last: bigint;
  used: Set<bigint>;
  /** Serial allocation: where the next search starts. */
  cursor: bigint;
  serial: boolean;
}

const isTrue = (v: string | undefined): boolean => v !== undefined && ['1', 't', 'true'].includes(v.toLowerCase());

/** Network address always; IPv4 broadcast too (except /31 and /32, where every address is a host). */
function reserved(p: Prefix, value: bigint): boolean {
  const hostBits = bitsOf(p.v6) - p.len;
  if (hostBits <= 1) return false;
  return value === p.base || (!p.v6 && value === lastOf(p));
}

export class DefaultIpam implements IpamDriver {
  readonly name = 'default';
  readonly #pools = new Map<string, Pool>();
  readonly #predefined: Record<string, readonly PoolSpec[]>;
  readonly #v6: readonly PoolSpec[];
  readonly #log: DriverLogger | undefined;

  constructor(opts: DefaultIpamOptions = {}) {
    this.#predefined = { [LocalDefault]: opts.localPools ?? defaultLocalPools, [GlobalDefault]: opts.globalPools ?? defaultGlobalPools };
    this.#v6 = opts.v6Pools ?? defaultV6Pools;
    this.#log = opts.logger;
    for (const spec of [...Object.values(this.#predefined).flat(), ...this.#v6]) mustPrefix(spec.base, 'default address pool');
  }

  async getCapabilities(): Promise<IpamCapabilities> {
    return { RequiresMACAddress: false, RequiresRequestReplay: true };
  }

  async getDefaultAddressSpaces(): Promise<AddressSpaces> {
    return { LocalDefaultAddressSpace: LocalDefault, GlobalDefaultAddressSpace: GlobalDefault };
  }

  async requestPool(req: RequestPoolRequest): Promise<RequestPoolResponse> {
    const space = req.AddressSpace === '' || req.AddressSpace === undefined ? LocalDefault : req.AddressSpace;
    if (!(space in this.#predefined)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid address space ${JSON.stringify(space)}: this IPAM knows ${LocalDefault} and ${GlobalDefault}`);
    const v6 = req.V6 === true;
    const opts = req.Options ?? {};
    const poolText = req.Pool ?? '';
    const subText = req.SubPool ?? '';
    if (poolText === '' && subText !== '') throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid address subpool ${subText}: a sub-pool (--ip-range) needs a pool (--subnet)`);

    let prefix: Prefix;
    let sub: Prefix | undefined;
    if (poolText !== '') {
      prefix = mustPrefix(poolText, 'pool');
      if (prefix.v6 !== v6) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid pool ${poolText}: an ${v6 ? 'IPv6' : 'IPv4'} pool was requested`);
      if (subText !== '') {
        sub = mustPrefix(subText, 'sub-pool');
        if (!within(sub, prefix)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid address subpool ${subText}: it is not inside the pool ${formatPrefix(prefix)}`);
      }
      if (this.#overlapping(space, prefix) !== undefined) throw new BerthError('BERTH_IPAM_POOL_OVERLAP', 'Pool overlaps with other one on this address space', { details: { pool: formatPrefix(prefix) } });
    } else {
      const avoid = (opts[AvoidOption] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map((s) => mustPrefix(s, `${AvoidOption} entry`))
        .filter((p) => p.len > 0); // a default route overlaps everything and is no reason to skip a pool
      const found = this.#firstFree(space, v6, v6 ? this.#v6 : this.#predefined[space]!, avoid);
      if (found === undefined) throw new BerthError('BERTH_IPAM_NO_POOL', `all predefined address pools have been fully subnetted${v6 ? ' (IPv6)' : ''}`);
      prefix = found;
    }

    const id = `${space}/${formatPrefix(prefix)}${sub === undefined ? '' : `/${formatPrefix(sub)}`}`;
    const range = sub ?? prefix;
    let first = range.base;
    let last = lastOf(range);
    while (first <= last && reserved(prefix, first)) first++;
    while (last >= first && reserved(prefix, last)) last--;
    this.#pools.set(id, { id, space, prefix, sub, first, last, used: new Set(), cursor: first, serial: isTrue(opts[IpamSerialOption]) });
    this.#log?.debug({ poolId: id }, 'pool allocated');
    return { PoolID: id, Pool: formatPrefix(prefix), Data: {} };
  }

  async releasePool(req: PoolRef): Promise<void> {
    this.#pool(req.PoolID);
    this.#pools.delete(req.PoolID);
    this.#log?.debug({ poolId: req.PoolID }, 'pool released');
  }

  async requestAddress(req: RequestAddressRequest): Promise<RequestAddressResponse> {
    const pool = this.#pool(req.PoolID);
    const opts = req.Options ?? {};
    const wanted = req.Address ?? '';
    let value: bigint;
    if (wanted !== '') {
      // A static address (--ip, --gateway, --aux-address): anywhere in the pool, also outside
      // the sub-pool (as Docker), but not the network or broadcast address.
      const ip = parseIp(wanted.includes('/') ? wanted.slice(0, wanted.indexOf('/')) : wanted);
      if (ip === undefined) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid address ${JSON.stringify(wanted)}: not an IP address`);
      if (!containsIp(pool.prefix, ip.v6, ip.value)) {
        throw new BerthError('BERTH_INVALID_ARGUMENT', `requested address is out of range: ${wanted} is not in ${formatPrefix(pool.prefix)}`, { details: { address: wanted, pool: formatPrefix(pool.prefix) } });
      }
      if (reserved(pool.prefix, ip.value) || pool.used.has(ip.value)) {
        throw new BerthError('BERTH_IPAM_ADDRESS_IN_USE', 'Address already in use', { details: { address: wanted, pool: formatPrefix(pool.prefix) } });
      }
      value = ip.value;
    } else {
      const gateway = opts[RequestAddressType] === GatewayAddressType;
      const found = this.#nextFree(pool, pool.serial || isTrue(opts[IpamSerialOption]), gateway);
      if (found === undefined) {
        throw new BerthError('BERTH_IPAM_NO_ADDRESS', `no available addresses on this pool: ${formatPrefix(pool.sub ?? pool.prefix)}`, { details: { poolId: pool.id } });
      }
      value = found;
    }
    pool.used.add(value);
    return { Address: `${formatIp(value, pool.prefix.v6)}/${pool.prefix.len}`, Data: {} };
  }

  async releaseAddress(req: ReleaseAddressRequest): Promise<void> {
    const pool = this.#pool(req.PoolID);
    const text = req.Address.includes('/') ? req.Address.slice(0, req.Address.indexOf('/')) : req.Address;
    const ip = parseIp(text);
    if (ip === undefined) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid address ${JSON.stringify(req.Address)}: not an IP address`);
    if (!containsIp(pool.prefix, ip.v6, ip.value)) {
      throw new BerthError('BERTH_INVALID_ARGUMENT', `requested address is out of range: ${text} is not in ${formatPrefix(pool.prefix)}`);
    }
    // Releasing a free address is not an error (Docker's bitmap unset).
    pool.used.delete(ip.value);
  }

  /** The pools held now (for tests and `berth network inspect` debugging). */
  pools(): { id: string; pool: string; subPool: string; allocated: string[] }[] {
    return [...this.#pools.values()].map((p) => ({
      id: p.id,
      pool: formatPrefix(p.prefix),
      subPool: p.sub === undefined ? '' : formatPrefix(p.sub),
      allocated: [...p.used].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((v) => formatIp(v, p.prefix.v6)),
    }));
  }

  #pool(id: string): Pool {
    const pool = this.#pools.get(id);
    if (pool === undefined) throw new BerthError('BERTH_IPAM_POOL_NOT_FOUND', `cannot find address pool for poolID: ${id}`);
    return pool;
  }

  #overlapping(space: string, p: Prefix): Pool | undefined {
    for (const pool of this.#pools.values()) if (pool.space === space && overlaps(pool.prefix, p)) return pool;
    return undefined;
  }

  #firstFree(space: string, v6: boolean, specs: readonly PoolSpec[], avoid: Prefix[]): Prefix | undefined {
    const taken = [...this.#pools.values()].filter((p) => p.space === space).map((p) => p.prefix);
    for (const spec of specs) {
      const base = mustPrefix(spec.base, 'default address pool');
      if (base.v6 !== v6) continue;
      for (const candidate of split(base, spec.size)) {
        const clash = taken.find((t) => overlaps(t, candidate)) ?? avoid.find((a) => overlaps(a, candidate));
        if (clash === undefined) return candidate;
        // Skip the whole clashing prefix at once when it is larger than a subnet (e.g. 10/8 in /24s).
        if (clash.len < candidate.len && lastOf(clash) >= lastOf(base)) break;
      }
    }
    return undefined;
  }

  #nextFree(pool: Pool, serial: boolean, gateway: boolean): bigint | undefined {
    const { first, last, used } = pool;
    if (first > last) return undefined;
    const start = serial && !gateway && pool.cursor >= first && pool.cursor <= last ? pool.cursor : first;
    for (let v = start; v <= last; v++) {
      if (!used.has(v)) return this.#took(pool, v, serial);
    }
    for (let v = first; v < start; v++) {
      if (!used.has(v)) return this.#took(pool, v, serial);
    }
    return undefined;
  }

  #took(pool: Pool, v: bigint, serial: boolean): bigint {
    if (serial) pool.cursor = v + 1n > pool.last ? pool.first : v + 1n;
    return v;
  }
}

/** Parses the daemon option `default-address-pools` (JSON array of {base, size}). */
export function parsePoolSpecs(text: string): PoolSpec[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${DefaultAddressPoolsOption}: ${(err as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${DefaultAddressPoolsOption}: expected a JSON array of {"base","size"}`);
  return parsed.map((e: unknown, i) => {
    const o = e as { base?: unknown; size?: unknown };
    if (typeof o?.base !== 'string' || typeof o.size !== 'number') throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${DefaultAddressPoolsOption}[${i}]: expected {"base": CIDR, "size": number}`);
    const base = mustPrefix(o.base, `${DefaultAddressPoolsOption}[${i}].base`);
    if (!Number.isInteger(o.size) || o.size < base.len || o.size > bitsOf(base.v6)) {
      throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${DefaultAddressPoolsOption}[${i}].size ${o.size}: must be between ${base.len} and ${bitsOf(base.v6)}`);
    }
    return { base: o.base, size: o.size };
  });
}
