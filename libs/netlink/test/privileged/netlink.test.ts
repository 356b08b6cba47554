// Real rtnetlink inside namespaces this test makes; the host's links are only read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { openNetlink, openNetlinkIn } from '@berth/netlink';
import { createNetns, deleteNetns, netnsExists, inNetns } from '@berth/native';

const skip: string | false = process.getuid?.() !== 0 ? 'needs root' : false;
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
const dir = `/run/berth-test/netlink-${tag}`;
const nsA = `${dir}/a`;
const nsB = `${dir}/b`;

function ipIn(ns: string, ...args: string[]): string {
  return execFileSync('nsenter', [`--net=${ns}`, 'ip', ...args], { encoding: 'utf8' });
}
function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(prefix));
}

test('netlink in fresh namespaces: bridge, veth with its peer in another netns, addresses, routes, move+rename, hairpin, delete; nothing left', { skip }, async () => {
  const host = openNetlink();
  const hostLinksBefore = (await host.links()).map((l) => `${l.index}:${l.name}`).sort();
  createNetns(nsA);
  createNetns(nsB);
  try {
    assert.equal(netnsExists(nsA), true);
    assert.equal(netnsExists(dir), false);
    assert.throws(() => createNetns(nsA), { code: 'EEXIST' });
    const a = openNetlinkIn(nsA, inNetns);
    const b = openNetlinkIn(nsB, inNetns);
    try {
      assert.deepEqual((await a.links()).map((l) => l.name), ['lo'], 'a fresh namespace has only lo');
      await a.setLink('lo', { up: true });
      await a.createBridge('br0', { mtu: 1450 });
      await assert.rejects(a.createBridge('br0'), { code: 'EEXIST', message: 'create bridge br0: EEXIST' });
      await a.addAddress('br0', '198.51.100.1/24');
      await a.addAddress('br0', '198.51.100.1/24'); // already there: resolves
      await a.setLink('br0', { up: true });
      // veth whose peer is born inside B
      await a.createVeth('vh0', 'eth7', { master: 'br0', mtu: 1450, peerNetnsPath: nsB });
      await a.setLink('vh0', { up: true });
      await a.setHairpin('vh0', true);
      assert.match(ipIn(nsA, '-d', 'link', 'show', 'vh0'), /hairpin on/);
      await a.setHairpin('vh0', false);
      assert.match(ipIn(nsA, '-d', 'link', 'show', 'vh0'), /hairpin off/);
      const br = (await a.link('br0'))!;
      const vh = (await a.link('vh0'))!;
      assert.equal(br.kind, 'bridge');
      assert.equal(vh.kind, 'veth');
      assert.equal(vh.masterIndex, br.index);
      assert.equal(vh.mtu, 1450);
      assert.equal((await b.link('eth7'))?.mtu, 1450);
      // each end names the other's index (IFLA_LINK), across the namespaces
      assert.equal((await b.link('eth7'))?.peerIndex, vh.index);
      assert.equal(vh.peerIndex, (await b.link('eth7'))?.index);
      assert.equal(br.peerIndex, undefined);
      // a second pair made in A, its end moved into B and renamed in one call
      await a.createVeth('vh1', 'vc1', { master: 'br0' });
      await a.setLink('vc1', { netnsPath: nsB, name: 'eth8', mac: '02:42:c6:33:64:03', mtu: 1400, up: true });
      assert.equal(await a.link('vc1'), undefined);
      const eth8 = (await b.link('eth8'))!;
      assert.deepEqual([eth8.mac, eth8.mtu, eth8.up], ['02:42:c6:33:64:03', 1400, true]);
      await b.setLink('eth7', { up: true });
      await b.addAddress('eth7', '198.51.100.2/24');
      await b.addAddress('eth7', 'fd00:5::2/64');
      await b.addRoute({ dst: 'default', gateway: '198.51.100.1' });
      await b.addRoute({ dst: '203.0.113.0/24', dev: 'eth7' });
      await assert.rejects(b.addRoute({ dst: '192.0.2.0/24', gateway: '10.255.255.1' }), { code: 'ENETUNREACH' });
      assert.deepEqual(
        (await b.addresses('eth7')).map((x) => x.cidr).filter((c) => !c.startsWith('fe80:')),
        ['198.51.100.2/24', 'fd00:5::2/64'],
      );
      const routes = await b.routes(4);
      assert.deepEqual(routes.find((r) => r.dst === 'default'), { dst: 'default', gateway: '198.51.100.1', dev: 'eth7', table: 254, family: 4 });
      assert.ok(routes.some((r) => r.dst === '203.0.113.0/24' && r.dev === 'eth7' && r.gateway === undefined));
      assert.ok(routes.some((r) => r.dst === '198.51.100.0/24' && r.dev === 'eth7'), 'connected route');
      assert.match(ipIn(nsB, 'route', 'show', 'default'), /default via 198\.51\.100\.1 dev eth7/);
      // traffic over the bridge between the two namespaces
      // iputils is not installed here; busybox's ping is (raw socket, root)
      execFileSync('nsenter', [`--net=${nsB}`, 'busybox', 'ping', '-c1', '-W2', '198.51.100.1'], { stdio: 'ignore' });
      await b.delRoute({ dst: '203.0.113.0/24', dev: 'eth7' });
      await b.delRoute({ dst: '203.0.113.0/24', dev: 'eth7' }); // absent: resolves
      await b.delRoute({ dst: 'default', gateway: '198.51.100.1' });
      assert.deepEqual((await b.routes(4)).map((r) => r.dst), ['198.51.100.0/24']);
      await b.delAddress('eth7', '198.51.100.2/24');
      await b.delAddress('eth7', '198.51.100.2/24'); // absent: resolves
      assert.deepEqual((await b.addresses('eth7')).map((x) => x.cidr).filter((c) => !c.startsWith('fe80:')), ['fd00:5::2/64']);
      // deleting a veth end deletes its peer in the other namespace
      await a.deleteLink('vh0');
      await a.deleteLink('vh0'); // absent: resolves
      assert.equal(await b.link('eth7'), undefined);
      await b.deleteLink('eth8');
      assert.equal(await a.link('vh1'), undefined);
      await a.setLink('br0', { master: null, up: false });
      await a.deleteLink('br0');
      assert.deepEqual((await a.links()).map((l) => l.name), ['lo']);
      assert.deepEqual((await b.links()).map((l) => l.name), ['lo']);
    } finally {
      a.close();
      b.close();
    }
  } finally {
    deleteNetns(nsA);
    deleteNetns(nsB);
    deleteNetns(nsB); // absent: no error
    try {
      rmdirSync(dir);
    } catch {
      // not empty: the checks below say why
    }
  }
  assert.equal(netnsExists(nsA), false);
  assert.equal(existsSync(nsA) || existsSync(nsB), false);
  assert.deepEqual(mountsUnder(dir), []);
  // Other programs (and tests) may add links to the machine's namespace meanwhile; none of ours may be there.
  const ours = ['br0', 'vh0', 'vh1', 'vc1', 'eth7', 'eth8'];
  const appeared = (await host.links()).map((l) => l.name).filter((n) => ours.includes(n) && !hostLinksBefore.some((b) => b.endsWith(`:${n}`)));
  assert.deepEqual(appeared, [], 'the host namespace was not touched');
  host.close();
});
