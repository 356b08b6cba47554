import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SystemError } from '@berth/errors';
import { FakeNetworkKernel, HOST_NS } from './testing.js';

test('fake: bridge, veth on it, addresses and the connected route appear like the kernel shows them', async () => {
  const k = new FakeNetworkKernel();
  const nl = k.netlink();
  await nl.createBridge('br0', { mtu: 1400 });
  await nl.createVeth('v0', 'v0p', { master: 'br0', mtu: 1400 });
  await nl.addAddress('br0', '10.1.0.1/24');
  await nl.addAddress('br0', '10.1.0.1/24'); // idempotent
  assert.deepEqual(await nl.routes(4), []); // link down: no connected route
  await nl.setLink('br0', { up: true });
  assert.deepEqual(await nl.routes(4), [{ dst: '10.1.0.0/24', dev: 'br0', table: 254, family: 4 }]);
  const links = await nl.links();
  const br = links.find((l) => l.name === 'br0')!;
  assert.equal(links.find((l) => l.name === 'v0')!.masterIndex, br.index);
  assert.equal(br.mtu, 1400);
  assert.deepEqual(await nl.addresses('br0'), [{ link: 'br0', cidr: '10.1.0.1/24', family: 4 }]);
  await nl.addRoute({ dst: '10.2.0.0/16', gateway: '10.1.0.9' });
  await assert.rejects(nl.addRoute({ dst: '10.3.0.0/16', gateway: '192.0.2.1' }), { code: 'ENETUNREACH' });
  await assert.rejects(nl.addRoute({ dst: '10.2.0.0/16', gateway: '10.1.0.9' }), { code: 'EEXIST' });
  await nl.setHairpin('v0', true);
  assert.equal(k.snapshot().links.find((l) => l.name === 'v0')!.hairpin, true);
  await assert.rejects(nl.setHairpin('v0p', true), { code: 'EOPNOTSUPP' });
  await nl.deleteLink('br0');
  assert.deepEqual(await nl.routes(4), []);
  assert.equal((await nl.link('v0'))!.masterIndex, undefined);
  await nl.deleteLink('v0');
  assert.equal(await nl.link('v0p'), undefined, 'the peer goes with its veth');
  assert.deepEqual(k.snapshot().links.map((l) => l.name), ['lo']);
});

test('fake: moving and renaming a veth end into another namespace drops its addresses; deleting the netns kills the pair', async () => {
  const k = new FakeNetworkKernel();
  const host = k.netlink();
  k.createNetns('/run/x/sb');
  await host.createVeth('vh', 'vc');
  await host.addAddress('vc', '10.1.0.2/24');
  await host.setLink('vc', { netnsPath: '/run/x/sb', name: 'eth0', up: true });
  assert.equal(await host.link('vc'), undefined);
  const sb = k.netlink('/run/x/sb');
  assert.deepEqual((await sb.links()).map((l) => [l.name, l.up]), [['lo', false], ['eth0', true]]);
  assert.deepEqual(await sb.addresses(), []);
  k.deleteNetns('/run/x/sb');
  assert.equal(await host.link('vh'), undefined);
  assert.deepEqual(k.netnsPaths(), []);
});

test('fake: failOn throws the errno the kernel would, once, and changes nothing; calls are recorded', async () => {
  const k = new FakeNetworkKernel();
  const nl = k.netlink();
  await nl.createBridge('br0');
  k.failOn('addAddress', 'EADDRNOTAVAIL', { when: (name) => name === 'br0' });
  const err = await nl.addAddress('br0', '10.1.0.1/24').catch((e: unknown) => e);
  assert.ok(err instanceof SystemError);
  assert.equal(err.message, 'add address 10.1.0.1/24 to br0: EADDRNOTAVAIL');
  assert.deepEqual(await nl.addresses('br0'), []);
  await nl.addAddress('br0', '10.1.0.1/24');
  assert.deepEqual(
    k.calls.map((c) => [c.ns, c.method]),
    [
      [HOST_NS, 'createBridge'],
      [HOST_NS, 'addAddress'],
      [HOST_NS, 'addresses'],
      [HOST_NS, 'addAddress'],
    ],
  );
  await assert.rejects(nl.createBridge('br0'), { code: 'EEXIST', message: 'create bridge br0: EEXIST' });
  await assert.rejects(nl.setLink('nope', { up: true }), { code: 'ENODEV' });
});
