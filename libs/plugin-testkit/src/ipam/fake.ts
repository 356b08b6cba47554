import { BerthError } from '@berth/errors';
import type {
  AddressSpaces,
  IpamCapabilities,
  IpamDriver,
  PoolRef,
  ReleaseAddressRequest,
  RequestAddressRequest,
  RequestAddressResponse,
  RequestPoolRequest,
  RequestPoolResponse,
} from '@berth/plugin-api';
import { bigToIp, cidrOverlap, ipToBig, lastOf, parseCidr, type Cidr } from './addr.js';

interface FakePool {
  id: string;
  space: string;
  cidr: Cidr;
  range: Cidr;
  used: Set<bigint>;
  serial: boolean;
  cursor: bigint;
}

/**
 * An IPAM in memory that passes the IPAM suite with every claim: pools picked from 10.100+n.0.0/16
 * (IPv6: fd99:n::/64), Docker's error kinds, first-free or serial addresses. `calls` lists the
 * wire methods called.
 */
export class FakeIpamDriver implements IpamDriver {
  readonly calls: string[] = [];
  readonly #pools = new Map<string, FakePool>();
  #next = 0;

  constructor(readonly name = 'fake-ipam') {}

  async getCapabilities(): Promise<IpamCapabilities> {
    this.calls.push('GetCapabilities');
    return { RequiresMACAddress: false, RequiresRequestReplay: false };
  }

  async getDefaultAddressSpaces(): Promise<AddressSpaces> {
    this.calls.push('GetDefaultAddressSpaces');
    return { LocalDefaultAddressSpace: 'FakeLocal', GlobalDefaultAddressSpace: 'FakeGlobal' };
  }

  async requestPool(req: RequestPoolRequest): Promise<RequestPoolResponse> {
    this.calls.push('RequestPool');
    const taken = [...this.#pools.values()].filter((p) => p.space === req.AddressSpace).map((p) => p.cidr);
    let cidr: Cidr | undefined;
    if (req.Pool) {
      cidr = parseCidr(req.Pool);
      if (cidr === undefined || cidr.v6 !== req.V6) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid pool ${req.Pool}`);
      if (taken.some((t) => cidrOverlap(t, cidr!))) throw new BerthError('BERTH_IPAM_POOL_OVERLAP', 'Pool overlaps with other one on this address space');
    } else {
      if (req.SubPool) throw new BerthError('BERTH_INVALID_ARGUMENT', 'a sub-pool needs a pool');
      const avoid = (req.Options?.['berth.ipam.avoid'] ?? '').split(',').filter((s) => s.trim() !== '').map((s) => parseCidr(s.trim())).filter((c): c is Cidr => c !== undefined && c.len > 0);
      for (let i = 0; i < 100 && cidr === undefined; i++) {
        const c = parseCidr(req.V6 ? `fd99:${i.toString(16)}::/64` : `10.${100 + i}.0.0/16`)!;
        if (![...taken, ...avoid].some((t) => cidrOverlap(t, c))) cidr = c;
      }
      if (cidr === undefined) throw new BerthError('BERTH_IPAM_NO_POOL', 'all predefined address pools have been fully subnetted');
    }
    let range = cidr;
    if (req.SubPool) {
      const sub = parseCidr(req.SubPool);
      if (sub === undefined || sub.len < cidr.len || !cidrOverlap(sub, cidr)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid sub-pool ${req.SubPool}: not inside ${req.Pool}`);
      range = sub;
    }
    const id = `fake-${++this.#next}`;
    this.#pools.set(id, { id, space: req.AddressSpace, cidr, range, used: new Set(), serial: req.Options?.['com.docker.network.ipam.serial'] === 'true', cursor: range.base });
    return { PoolID: id, Pool: `${bigToIp(cidr.base, cidr.v6)}/${cidr.len}`, Data: {} };
  }

  async releasePool(req: PoolRef): Promise<void> {
    this.calls.push('ReleasePool');
    this.#pool(req.PoolID);
    this.#pools.delete(req.PoolID);
  }

  async requestAddress(req: RequestAddressRequest): Promise<RequestAddressResponse> {
    this.calls.push('RequestAddress');
    const p = this.#pool(req.PoolID);
    const reserved = (v: bigint): boolean => p.cidr.len < (p.cidr.v6 ? 127 : 31) && (v === p.cidr.base || (!p.cidr.v6 && v === lastOf(p.cidr)));
    let value: bigint | undefined;
    if (req.Address) {
      const a = ipToBig(req.Address);
      if (a === undefined || a.v6 !== p.cidr.v6 || a.value < p.cidr.base || a.value > lastOf(p.cidr)) throw new BerthError('BERTH_INVALID_ARGUMENT', 'requested address is out of range');
      if (reserved(a.value) || p.used.has(a.value)) throw new BerthError('BERTH_IPAM_ADDRESS_IN_USE', 'Address already in use');
      value = a.value;
    } else {
      const start = p.serial ? p.cursor : p.range.base;
      const end = lastOf(p.range);
      const candidates = function* (): Generator<bigint> {
        for (let v = start; v <= end; v++) yield v;
        for (let v = p.range.base; v < start; v++) yield v;
      };
      for (const v of candidates()) {
        if (!reserved(v) && !p.used.has(v)) {
          value = v;
          break;
        }
      }
      if (value === undefined) throw new BerthError('BERTH_IPAM_NO_ADDRESS', 'no available addresses on this pool');
      if (p.serial) p.cursor = value + 1n > end ? p.range.base : value + 1n;
    }
    p.used.add(value);
    return { Address: `${bigToIp(value, p.cidr.v6)}/${p.cidr.len}`, Data: {} };
  }

  async releaseAddress(req: ReleaseAddressRequest): Promise<void> {
    this.calls.push('ReleaseAddress');
    const p = this.#pool(req.PoolID);
    const a = ipToBig(req.Address.split('/')[0] ?? '');
    if (a !== undefined) p.used.delete(a.value);
  }

  #pool(id: string): FakePool {
    const p = this.#pools.get(id);
    if (p === undefined) throw new BerthError('BERTH_IPAM_POOL_NOT_FOUND', `cannot find address pool for poolID: ${id}`);
    return p;
  }
}

export const fakeIpamDriver = (name?: string): FakeIpamDriver => new FakeIpamDriver(name);
