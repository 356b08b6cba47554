import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kindOf } from '@berth/errors';
import { DefaultIpam, createDefaultIpam, defaultIpam, formatIp, parseIp, parsePrefix } from './index.js';

const gw = { RequestAddressType: 'com.docker.network.gateway' };
const pool = (ipam: DefaultIpam, Pool = '', SubPool = '', Options: Record<string, string> | null = null, V6 = false) =>
  ipam.requestPool({ AddressSpace: 'LocalDefault', Pool, SubPool, Options, V6 });
const addr = (ipam: DefaultIpam, PoolID: string, Address = '', Options: Record<string, string> | null = null) =>
  ipam.requestAddress({ PoolID, Address, Options });

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: Error & { code?: string }) => {
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

test('addresses parse and print like Go (dotted quad, RFC 5952)', () => {
  assert.equal(formatIp(parseIp('172.18.0.1')!.value, false), '172.18.0.1');
  for (const [i, o] of [['fd00::', 'fd00::'], ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], ['::ffff:1.2.3.4', '::ffff:102:304'], ['0:0:0:0:0:0:0:0', '::'], ['1:0:2:0:3:0:4:0', '1:0:2:0:3:0:4:0']]) {
    assert.equal(formatIp(parseIp(i!)!.value, true), o);
  }
  assert.equal(parseIp('300.1.1.1'), undefined);
  assert.equal(parsePrefix('172.18.3.4/16')!.base, parseIp('172.18.0.0')!.value);
  assert.equal(parsePrefix('10.0.0.0/33'), undefined);
  assert.equal(parsePrefix('10.0.0.0'), undefined);
});

test('capabilities and address spaces are Docker\'s', async () => {
  const ipam = new DefaultIpam();
  assert.deepEqual(await ipam.getCapabilities(), { RequiresMACAddress: false, RequiresRequestReplay: true });
  assert.deepEqual(await ipam.getDefaultAddressSpaces(), { LocalDefaultAddressSpace: 'LocalDefault', GlobalDefaultAddressSpace: 'GlobalDefault' });
});

test('default pools: 172.17..172.31 /16, then 192.168/16 in /20s, then exhausted; release makes a pool free again', async () => {
  const ipam = new DefaultIpam();
  const got: string[] = [];
  for (let i = 0; i < 31; i++) got.push((await pool(ipam)).Pool);
  assert.deepEqual(got.slice(0, 15), Array.from({ length: 15 }, (_, i) => `172.${17 + i}.0.0/16`));
  assert.deepEqual(got.slice(15), Array.from({ length: 16 }, (_, i) => `192.168.${i * 16}.0/20`));
  await rejects(pool(ipam), 'BERTH_IPAM_NO_POOL', /all predefined address pools have been fully subnetted/);
  await ipam.releasePool({ PoolID: 'LocalDefault/172.20.0.0/16' });
  assert.equal((await pool(ipam)).Pool, '172.20.0.0/16');
});

test('the avoid option skips host routes; a default route is not a reason to skip', async () => {
  const ipam = new DefaultIpam();
  const r = await pool(ipam, '', '', { 'berth.ipam.avoid': '172.17.0.0/16, 172.18.5.0/24,0.0.0.0/0,fd00::/8' });
  assert.equal(r.Pool, '172.19.0.0/16');
  assert.equal(r.PoolID, 'LocalDefault/172.19.0.0/16');
  await rejects(pool(ipam, '', '', { 'berth.ipam.avoid': 'nonsense' }), 'BERTH_INVALID_ARGUMENT', /berth\.ipam\.avoid/);
  // The controller's loop: a lease kept while asking again gives the next pool.
  assert.equal((await pool(ipam)).Pool, '172.17.0.0/16');
  assert.equal((await pool(ipam)).Pool, '172.18.0.0/16');
});

test('global space: 10.0.0.0/8 in /24s', async () => {
  const ipam = new DefaultIpam();
  const a = await ipam.requestPool({ AddressSpace: 'GlobalDefault', Pool: '', SubPool: '', Options: null, V6: false });
  const b = await ipam.requestPool({ AddressSpace: 'GlobalDefault', Pool: '', SubPool: '', Options: { 'berth.ipam.avoid': '10.0.1.0/24' }, V6: false });
  assert.deepEqual([a.Pool, b.Pool], ['10.0.0.0/24', '10.0.2.0/24']);
  await rejects(ipam.requestPool({ AddressSpace: 'Elsewhere', Pool: '', SubPool: '', Options: null, V6: false }), 'BERTH_INVALID_ARGUMENT', /invalid address space/);
});

test('explicit pools: overlap is 403 with Docker\'s words, a sub-pool must lie inside, family must match', async () => {
  const ipam = new DefaultIpam();
  const r = await pool(ipam, '10.5.0.7/16');
  assert.deepEqual(r, { PoolID: 'LocalDefault/10.5.0.0/16', Pool: '10.5.0.0/16', Data: {} });
  for (const p of ['10.5.0.0/16', '10.5.3.0/24', '10.0.0.0/8']) {
    const err = await pool(ipam, p).then(() => undefined, (e: unknown) => e as Error);
    assert.ok(err, p);
    assert.equal(err.message, 'Pool overlaps with other one on this address space');
    assert.equal(kindOf(err), 'PermissionDenied');
  }
  // Another address space is another world.
  await ipam.requestPool({ AddressSpace: 'GlobalDefault', Pool: '10.5.0.0/16', SubPool: '', Options: null, V6: false });
  // The picker skips explicitly allocated pools.
  await pool(ipam, '172.17.0.0/16');
  assert.equal((await pool(ipam)).Pool, '172.18.0.0/16');
  await rejects(pool(ipam, '10.6.0.0/16', '10.7.0.0/24'), 'BERTH_INVALID_ARGUMENT', /not inside the pool 10\.6\.0\.0\/16/);
  await rejects(pool(ipam, '', '10.7.0.0/24'), 'BERTH_INVALID_ARGUMENT', /needs a pool/);
  await rejects(pool(ipam, 'abc'), 'BERTH_INVALID_ARGUMENT', /not a CIDR/);
  await rejects(pool(ipam, 'fd10::/64'), 'BERTH_INVALID_ARGUMENT', /IPv4 pool was requested/);
  await rejects(ipam.releasePool({ PoolID: 'LocalDefault/1.2.3.0/24' }), 'BERTH_IPAM_POOL_NOT_FOUND', /cannot find address pool/);
});

test('a /30 has two host addresses: gateway, one container, then exhausted; release and reuse', async () => {
  const ipam = new DefaultIpam();
  const { PoolID } = await pool(ipam, '192.0.2.0/30');
  assert.equal((await addr(ipam, PoolID, '', gw)).Address, '192.0.2.1/30');
  assert.equal((await addr(ipam, PoolID)).Address, '192.0.2.2/30');
  const err = await addr(ipam, PoolID).then(() => undefined, (e: unknown) => e as Error);
  assert.match(String(err?.message), /^no available addresses on this pool: 192\.0\.2\.0\/30$/);
  assert.equal(kindOf(err), 'Unavailable');
  await ipam.releaseAddress({ PoolID, Address: '192.0.2.2' });
  await ipam.releaseAddress({ PoolID, Address: '192.0.2.2' }); // releasing a free address is fine
  assert.equal((await addr(ipam, PoolID)).Address, '192.0.2.2/30');
  await rejects(ipam.releaseAddress({ PoolID, Address: '192.0.3.2' }), 'BERTH_INVALID_ARGUMENT', /out of range/);
  await rejects(addr(ipam, 'LocalDefault/9.9.9.0/24'), 'BERTH_IPAM_POOL_NOT_FOUND', /cannot find address pool for poolID: LocalDefault\/9\.9\.9\.0\/24/);
});

test('static addresses: in the pool and free; network and broadcast are reserved; gateway given by the user', async () => {
  const ipam = new DefaultIpam();
  const { PoolID } = await pool(ipam, '172.30.0.0/16', '172.30.5.0/24');
  assert.equal(PoolID, 'LocalDefault/172.30.0.0/16/172.30.5.0/24');
  assert.equal((await addr(ipam, PoolID, '172.30.0.254', gw)).Address, '172.30.0.254/16');
  // --ip outside the --ip-range but inside the subnet is allowed (as Docker).
  assert.equal((await addr(ipam, PoolID, '172.30.9.9')).Address, '172.30.9.9/16');
  await rejects(addr(ipam, PoolID, '172.30.9.9'), 'BERTH_IPAM_ADDRESS_IN_USE', /^Address already in use$/);
  await rejects(addr(ipam, PoolID, '172.31.0.5'), 'BERTH_INVALID_ARGUMENT', /^requested address is out of range: 172\.31\.0\.5 is not in 172\.30\.0\.0\/16$/);
  await rejects(addr(ipam, PoolID, '172.30.0.0'), 'BERTH_IPAM_ADDRESS_IN_USE', /in use/);
  await rejects(addr(ipam, PoolID, '172.30.255.255'), 'BERTH_IPAM_ADDRESS_IN_USE', /in use/);
  await rejects(addr(ipam, PoolID, 'zz'), 'BERTH_INVALID_ARGUMENT', /not an IP address/);
  // "Any" comes from the sub-pool: its first address (the pool's network address is not in it).
  assert.equal((await addr(ipam, PoolID)).Address, '172.30.5.0/16');
  assert.equal((await addr(ipam, PoolID)).Address, '172.30.5.1/16');
  const err = await addr(ipam, PoolID, '172.30.9.9').catch((e: unknown) => e);
  assert.equal(kindOf(err), 'PermissionDenied');
});

test('a sub-pool fills up while the rest of the pool is free', async () => {
  const ipam = new DefaultIpam();
  const { PoolID } = await pool(ipam, '10.9.0.0/24', '10.9.0.0/30');
  const got = [(await addr(ipam, PoolID, '', gw)).Address, (await addr(ipam, PoolID)).Address, (await addr(ipam, PoolID)).Address];
  assert.deepEqual(got, ['10.9.0.1/24', '10.9.0.2/24', '10.9.0.3/24']);
  await rejects(addr(ipam, PoolID), 'BERTH_IPAM_NO_ADDRESS', /10\.9\.0\.0\/30/);
  assert.equal((await addr(ipam, PoolID, '10.9.0.100')).Address, '10.9.0.100/24');
});

test('serial allocation goes round the pool instead of reusing the lowest free address', async () => {
  const ipam = new DefaultIpam();
  const { PoolID } = await pool(ipam, '10.8.0.0/29', '', { 'com.docker.network.ipam.serial': 'true' });
  const a = await addr(ipam, PoolID, '', gw);
  const b = await addr(ipam, PoolID);
  const c = await addr(ipam, PoolID);
  assert.deepEqual([a.Address, b.Address, c.Address], ['10.8.0.1/29', '10.8.0.2/29', '10.8.0.3/29']);
  await ipam.releaseAddress({ PoolID, Address: '10.8.0.2' });
  assert.equal((await addr(ipam, PoolID)).Address, '10.8.0.4/29');
  // The option on a single request works too (first-free pool).
  const other = await pool(ipam, '10.7.0.0/29');
  await addr(ipam, other.PoolID);
  await addr(ipam, other.PoolID);
  await ipam.releaseAddress({ PoolID: other.PoolID, Address: '10.7.0.1' });
  assert.equal((await addr(ipam, other.PoolID)).Address, '10.7.0.1/29');
});

test('IPv6: explicit subnet and the ULA default /64s; no broadcast reservation', async () => {
  const ipam = new DefaultIpam();
  const a = await pool(ipam, '2001:db8:1::/64', '', null, true);
  assert.deepEqual(a, { PoolID: 'LocalDefault/2001:db8:1::/64', Pool: '2001:db8:1::/64', Data: {} });
  assert.equal((await addr(ipam, a.PoolID, '', gw)).Address, '2001:db8:1::1/64');
  assert.equal((await addr(ipam, a.PoolID)).Address, '2001:db8:1::2/64');
  assert.equal((await addr(ipam, a.PoolID, '2001:db8:1::ffff:ffff:ffff:ffff')).Address, '2001:db8:1:0:ffff:ffff:ffff:ffff/64');
  await rejects(addr(ipam, a.PoolID, '2001:db8:2::1'), 'BERTH_INVALID_ARGUMENT', /out of range/);
  await rejects(addr(ipam, a.PoolID, '10.0.0.1'), 'BERTH_INVALID_ARGUMENT', /out of range/);
  const d1 = await pool(ipam, '', '', null, true);
  const d2 = await pool(ipam, '', '', null, true);
  assert.deepEqual([d1.Pool, d2.Pool], ['fd00::/64', 'fd00:0:0:1::/64']);
  // IPv4 and IPv6 pools of one address space do not collide.
  assert.equal((await pool(ipam)).Pool, '172.17.0.0/16');
  await rejects(pool(ipam, '2001:db8:1::/48', '', null, true), 'BERTH_IPAM_POOL_OVERLAP', /Pool overlaps/);
  const small = await pool(ipam, '2001:db8:9::/126', '', null, true);
  const all = [];
  for (let i = 0; i < 3; i++) all.push((await addr(ipam, small.PoolID)).Address);
  assert.deepEqual(all, ['2001:db8:9::1/126', '2001:db8:9::2/126', '2001:db8:9::3/126']);
  await rejects(addr(ipam, small.PoolID), 'BERTH_IPAM_NO_ADDRESS', /no available addresses/);
});

test('replay after a restart gives the same pool ids and addresses (RequiresRequestReplay)', async () => {
  const first = new DefaultIpam();
  const p = await pool(first);
  const g = await addr(first, p.PoolID, '', gw);
  const e = await addr(first, p.PoolID);
  const again = new DefaultIpam();
  const q = await pool(again, p.Pool);
  assert.equal(q.PoolID, p.PoolID);
  assert.equal((await addr(again, q.PoolID, g.Address.split('/')[0], gw)).Address, g.Address);
  assert.equal((await addr(again, q.PoolID, e.Address.split('/')[0])).Address, e.Address);
  assert.equal((await addr(again, q.PoolID)).Address, '172.17.0.3/16');
});

test('descriptor and daemon option default-address-pools', async () => {
  const silent = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silent };
  assert.equal(defaultIpam.name, 'default');
  assert.equal(defaultIpam.kind, 'ipam');
  const made = await defaultIpam.create({ stateDir: '/nonexistent', logger: silent });
  assert.equal((made as DefaultIpam).name, 'default');
  const custom = createDefaultIpam({ stateDir: '/x', logger: silent, options: { 'default-address-pools': '[{"base":"10.10.0.0/16","size":24},{"base":"fd42::/48","size":64}]' } });
  assert.equal((await pool(custom)).Pool, '10.10.0.0/24');
  assert.equal((await pool(custom, '', '', null, true)).Pool, 'fd42::/64');
  assert.throws(() => createDefaultIpam({ stateDir: '/x', logger: silent, options: { 'default-address-pools': '[{"base":"10.10.0.0/16","size":8}]' } }), /size 8/);
});
