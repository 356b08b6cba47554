import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kindOf, type ErrorKind } from '@berth/errors';
import type { IpamDriver, RequestPoolRequest } from '@berth/plugin-api';
import { ipamOverSocket } from '../socket.js';
import { cidrOverlap, inCidr, parseCidr } from './addr.js';

export interface IpamDriverHarness {
  driver: IpamDriver;
  cleanup(): Promise<void>;
}

/** Capabilities a case needs; unclaimed ones register as named skips. */
export type IpamCapability =
  /** RequestPool with Pool '' picks a pool. */
  | 'dynamicPools'
  /** SubPool (--ip-range): "any" addresses come from inside it. */
  | 'subPool'
  /** V6 pools and addresses. */
  | 'v6'
  /** RequestPool with Pool '' and V6 picks an IPv6 pool. */
  | 'dynamicV6'
  /** Berth's `berth.ipam.avoid` RequestPool option (host routes to skip). */
  | 'avoidOption'
  /** `com.docker.network.ipam.serial`: round-robin instead of lowest free. */
  | 'serial'
  /** Docker's error kinds and words (overlap 403, in use 403, out of range 400, exhausted 503). */
  | 'dockerErrors';

export interface IpamDriverSuiteOptions {
  claims?: Partial<Record<IpamCapability, boolean>>;
  /** Address space used (default: the driver's LocalDefaultAddressSpace). */
  addressSpace?: string;
  transports?: readonly ('in-process' | 'socket')[];
  timeout?: number;
}

const gatewayOpt = { RequestAddressType: 'com.docker.network.gateway' };

async function failure(p: Promise<unknown>, what: string): Promise<Error> {
  const err = await p.then(() => undefined, (e: unknown) => e as Error);
  assert.ok(err instanceof Error, `${what} must fail`);
  assert.ok(err.message.length > 0, `${what}: the error has a message`);
  return err;
}

/**
 * Registers the IpamDriver contract under `describe(name)`, in-process and over the plugin
 * socket. `makeDriver` is called once per case (a fresh, empty IPAM).
 */
export function ipamDriverSuite(name: string, makeDriver: () => Promise<IpamDriverHarness>, opts: IpamDriverSuiteOptions = {}): void {
  const claims: Record<IpamCapability, boolean> = {
    dynamicPools: true,
    subPool: true,
    v6: true,
    dynamicV6: false,
    avoidOption: false,
    serial: false,
    dockerErrors: true,
    ...opts.claims,
  };
  const timeout = opts.timeout ?? 30_000;

  for (const transport of opts.transports ?? ['in-process', 'socket']) {
    const make = transport === 'socket' ? ipamOverSocket(makeDriver) : makeDriver;
    const run = (fn: (d: IpamDriver, pool: (p?: Partial<RequestPoolRequest>) => ReturnType<IpamDriver['requestPool']>) => Promise<void>) => async () => {
      const h = await make();
      try {
        const space = opts.addressSpace ?? (await h.driver.getDefaultAddressSpaces()).LocalDefaultAddressSpace;
        await fn(h.driver, (p = {}) => h.driver.requestPool({ AddressSpace: space, Pool: '', SubPool: '', Options: null, V6: false, ...p }));
      } finally {
        await h.cleanup();
      }
    };
    const claimed = (cap: IpamCapability, title: string, fn: Parameters<typeof run>[0]) =>
      claims[cap] ? it(title, { timeout }, run(fn)) : it(title, { skip: `not claimed: ${cap}` }, () => {});
    const kind = (err: Error, want: ErrorKind, what: string) => {
      if (claims.dockerErrors) assert.equal(kindOf(err), want, `${what}: kind of "${err.message}"`);
    };

    describe(`${name} IPAM driver contract (${transport})`, () => {
      it('capabilities and default address spaces', { timeout }, run(async (d) => {
        const caps = await d.getCapabilities();
        assert.equal(typeof caps.RequiresMACAddress, 'boolean');
        assert.equal(typeof caps.RequiresRequestReplay, 'boolean');
        const spaces = await d.getDefaultAddressSpaces();
        assert.ok(spaces.LocalDefaultAddressSpace.length > 0 && spaces.GlobalDefaultAddressSpace.length > 0);
      }));

      it('an explicit pool: request, release, request again', { timeout }, run(async (d, pool) => {
        const r = await pool({ Pool: '10.231.0.0/16' });
        assert.equal(r.Pool, '10.231.0.0/16');
        assert.ok(typeof r.PoolID === 'string' && r.PoolID.length > 0);
        assert.ok(typeof r.Data === 'object');
        await d.releasePool({ PoolID: r.PoolID });
        const again = await pool({ Pool: '10.231.0.0/16' });
        await d.releasePool({ PoolID: again.PoolID });
      }));

      it('an overlapping pool is refused (403, "Pool overlaps ...") and the first stays usable', { timeout }, run(async (d, pool) => {
        const r = await pool({ Pool: '10.232.0.0/16' });
        for (const p of ['10.232.0.0/16', '10.232.7.0/24', '10.0.0.0/8']) {
          const err = await failure(pool({ Pool: p }), `pool ${p} over 10.232.0.0/16`);
          assert.match(err.message, /overlap/i);
          kind(err, 'PermissionDenied', p);
        }
        const a = await d.requestAddress({ PoolID: r.PoolID, Address: '', Options: null });
        assert.ok(inCidr(parseCidr('10.232.0.0/16')!, a.Address.split('/')[0]!));
        const other = await pool({ Pool: '10.233.0.0/16' });
        await d.releasePool({ PoolID: other.PoolID });
        await d.releasePool({ PoolID: r.PoolID });
      }));

      claimed('dynamicPools', 'pools picked by the driver are valid and do not overlap each other or explicit ones', async (d, pool) => {
        const explicit = await pool({ Pool: '10.234.0.0/16' });
        const a = await pool();
        const b = await pool();
        const ca = parseCidr(a.Pool);
        const cb = parseCidr(b.Pool);
        assert.ok(ca && cb, `CIDRs: ${a.Pool}, ${b.Pool}`);
        assert.equal(ca.v6, false);
        assert.ok(!cidrOverlap(ca, cb), `${a.Pool} and ${b.Pool} overlap`);
        assert.ok(!cidrOverlap(ca, parseCidr('10.234.0.0/16')!) && !cidrOverlap(cb, parseCidr('10.234.0.0/16')!));
        await d.releasePool({ PoolID: a.PoolID });
        const c = await pool();
        assert.ok(!cidrOverlap(parseCidr(c.Pool)!, cb));
        for (const p of [b, c, explicit]) await d.releasePool({ PoolID: p.PoolID });
      });

      claimed('avoidOption', 'berth.ipam.avoid: a picked pool overlaps none of the given prefixes', async (d, pool) => {
        const first = await pool();
        await d.releasePool({ PoolID: first.PoolID });
        const r = await pool({ Options: { 'berth.ipam.avoid': first.Pool } });
        assert.ok(!cidrOverlap(parseCidr(r.Pool)!, parseCidr(first.Pool)!), `${r.Pool} avoids ${first.Pool}`);
        await d.releasePool({ PoolID: r.PoolID });
      });

      it('a /30 gives a gateway and one address, then it is exhausted; a release makes room', { timeout }, run(async (d, pool) => {
        const { PoolID } = await pool({ Pool: '192.0.2.0/30' });
        const gw = await d.requestAddress({ PoolID, Address: '', Options: gatewayOpt });
        const one = await d.requestAddress({ PoolID, Address: '', Options: null });
        assert.deepEqual([gw.Address, one.Address].sort(), ['192.0.2.1/30', '192.0.2.2/30']);
        const err = await failure(d.requestAddress({ PoolID, Address: '', Options: null }), 'a third address in a /30');
        kind(err, 'Unavailable', 'exhausted pool');
        await d.releaseAddress({ PoolID, Address: one.Address.split('/')[0]! });
        assert.equal((await d.requestAddress({ PoolID, Address: '', Options: null })).Address, one.Address);
      }));

      it('static addresses: answered with the pool\'s prefix length; in use 403; outside the pool 400', { timeout }, run(async (d, pool) => {
        const { PoolID } = await pool({ Pool: '10.235.0.0/16' });
        assert.equal((await d.requestAddress({ PoolID, Address: '10.235.3.4', Options: null })).Address, '10.235.3.4/16');
        const inUse = await failure(d.requestAddress({ PoolID, Address: '10.235.3.4', Options: null }), 'the same static address twice');
        kind(inUse, 'PermissionDenied', 'address in use');
        const outside = await failure(d.requestAddress({ PoolID, Address: '10.236.0.5', Options: null }), 'an address outside the pool');
        kind(outside, 'InvalidArgument', 'address out of range');
        // "Any" never hands out a static one.
        const any = await d.requestAddress({ PoolID, Address: '', Options: null });
        assert.notEqual(any.Address, '10.235.3.4/16');
        assert.ok(inCidr(parseCidr('10.235.0.0/16')!, any.Address.split('/')[0]!));
      }));

      it('gateway requests: the user\'s address, or one the driver picks inside the pool', { timeout }, run(async (d, pool) => {
        const a = await pool({ Pool: '10.237.0.0/24' });
        assert.equal((await d.requestAddress({ PoolID: a.PoolID, Address: '10.237.0.254', Options: gatewayOpt })).Address, '10.237.0.254/24');
        const b = await pool({ Pool: '10.238.0.0/24' });
        const g = await d.requestAddress({ PoolID: b.PoolID, Address: '', Options: gatewayOpt });
        const [ip, len] = g.Address.split('/');
        assert.equal(len, '24');
        assert.ok(inCidr(parseCidr('10.238.0.0/24')!, ip!) && ip !== '10.238.0.0' && ip !== '10.238.0.255', `gateway ${g.Address} is a host address of the pool`);
        const next = await d.requestAddress({ PoolID: b.PoolID, Address: '', Options: null });
        assert.notEqual(next.Address, g.Address);
      }));

      it('release and reuse: a released address can be taken again; releasing a free one is fine', { timeout }, run(async (d, pool) => {
        const { PoolID } = await pool({ Pool: '10.239.0.0/24' });
        const a = await d.requestAddress({ PoolID, Address: '10.239.0.10', Options: null });
        await d.releaseAddress({ PoolID, Address: '10.239.0.10' });
        assert.equal((await d.requestAddress({ PoolID, Address: '10.239.0.10', Options: null })).Address, a.Address);
        await d.releaseAddress({ PoolID, Address: '10.239.0.10' });
        await d.releaseAddress({ PoolID, Address: '10.239.0.10' });
        await d.releasePool({ PoolID });
      }));

      it('RequiresRequestReplay: a fresh driver given the same requests answers the same pool ids and addresses', { timeout }, async (t) => {
        const first = await make();
        const second = await make();
        try {
          if (!(await first.driver.getCapabilities()).RequiresRequestReplay) {
            t.skip('the driver keeps its own state (RequiresRequestReplay false)');
            return;
          }
          const space = opts.addressSpace ?? (await first.driver.getDefaultAddressSpaces()).LocalDefaultAddressSpace;
          const req = { AddressSpace: space, Pool: '10.245.0.0/16', SubPool: '10.245.1.0/24', Options: null, V6: false };
          const p1 = await first.driver.requestPool(req);
          const gw = await first.driver.requestAddress({ PoolID: p1.PoolID, Address: '', Options: gatewayOpt });
          const ep = await first.driver.requestAddress({ PoolID: p1.PoolID, Address: '', Options: null });
          // The engine's replay at start: the stored pool, the stored gateway, each stored address.
          const p2 = await second.driver.requestPool(req);
          assert.equal(p2.PoolID, p1.PoolID, 'replayed pool id');
          assert.equal((await second.driver.requestAddress({ PoolID: p2.PoolID, Address: gw.Address.split('/')[0]!, Options: gatewayOpt })).Address, gw.Address);
          assert.equal((await second.driver.requestAddress({ PoolID: p2.PoolID, Address: ep.Address.split('/')[0]!, Options: null })).Address, ep.Address);
          const next = await second.driver.requestAddress({ PoolID: p2.PoolID, Address: '', Options: null });
          assert.ok(next.Address !== gw.Address && next.Address !== ep.Address, 'replayed addresses are taken');
        } finally {
          await first.cleanup();
          await second.cleanup();
        }
      });

      it('unknown pool ids are errors', { timeout }, run(async (d) => {
        await failure(d.requestAddress({ PoolID: 'no-such-pool', Address: '', Options: null }), 'RequestAddress on an unknown pool');
        await failure(d.releasePool({ PoolID: 'no-such-pool' }), 'ReleasePool of an unknown pool');
      }));

      claimed('subPool', 'a sub-pool (--ip-range): "any" addresses come from it; one outside the pool is refused', async (d, pool) => {
        const { PoolID } = await pool({ Pool: '10.240.0.0/16', SubPool: '10.240.0.0/30' });
        const got = [];
        for (let i = 0; i < 3; i++) got.push((await d.requestAddress({ PoolID, Address: '', Options: null })).Address);
        for (const a of got) {
          assert.ok(inCidr(parseCidr('10.240.0.0/30')!, a.split('/')[0]!), `${a} in the sub-pool`);
          assert.ok(a.endsWith('/16'), `${a} carries the pool's length`);
        }
        await failure(d.requestAddress({ PoolID, Address: '', Options: null }), 'a full sub-pool');
        await failure(pool({ Pool: '10.241.0.0/16', SubPool: '10.242.0.0/24' }), 'a sub-pool outside its pool');
      });

      claimed('v6', 'IPv6: an explicit pool, a gateway, addresses; overlap refused', async (d, pool) => {
        const r = await pool({ Pool: '2001:db8:42::/64', V6: true });
        assert.equal(r.Pool, '2001:db8:42::/64');
        const gw = await d.requestAddress({ PoolID: r.PoolID, Address: '', Options: gatewayOpt });
        const a = await d.requestAddress({ PoolID: r.PoolID, Address: '', Options: null });
        const c = parseCidr(r.Pool)!;
        for (const x of [gw.Address, a.Address]) {
          assert.ok(x.endsWith('/64'), x);
          assert.ok(inCidr(c, x.split('/')[0]!), `${x} in ${r.Pool}`);
        }
        assert.notEqual(gw.Address, a.Address);
        const s = await d.requestAddress({ PoolID: r.PoolID, Address: '2001:db8:42::abcd', Options: null });
        assert.equal(s.Address, '2001:db8:42::abcd/64');
        await failure(d.requestAddress({ PoolID: r.PoolID, Address: '2001:db8:43::1', Options: null }), 'an IPv6 address outside the pool');
        const err = await failure(pool({ Pool: '2001:db8:42::/48', V6: true }), 'an overlapping IPv6 pool');
        kind(err, 'PermissionDenied', 'IPv6 overlap');
        // An IPv4 pool next to it is unaffected.
        const v4 = await pool({ Pool: '10.243.0.0/24' });
        for (const p of [v4, r]) await d.releasePool({ PoolID: p.PoolID });
      });

      claimed('dynamicV6', 'IPv6 pools picked by the driver', async (d, pool) => {
        const a = await pool({ V6: true });
        const b = await pool({ V6: true });
        const ca = parseCidr(a.Pool);
        const cb = parseCidr(b.Pool);
        assert.ok(ca?.v6 && cb?.v6, `${a.Pool}, ${b.Pool} are IPv6`);
        assert.ok(!cidrOverlap(ca, cb));
      });

      claimed('serial', 'serial allocation does not hand a released address out again at once', async (d, pool) => {
        const { PoolID } = await pool({ Pool: '10.244.0.0/29', Options: { 'com.docker.network.ipam.serial': 'true' } });
        const a = await d.requestAddress({ PoolID, Address: '', Options: null });
        await d.releaseAddress({ PoolID, Address: a.Address.split('/')[0]! });
        const b = await d.requestAddress({ PoolID, Address: '', Options: null });
        assert.notEqual(b.Address, a.Address);
      });
    });
  }
}
