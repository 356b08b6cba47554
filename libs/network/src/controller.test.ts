/**
 * The controller's decisions on fakes: a fake kernel (namespaces, links, addresses, routes), the
 * testkit's fake network driver (made to hand over a real veth end) and fake IPAM. No root.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isInvalidArgument, kindOf, ErrorKind } from '@berth/errors';
import { createRootLogger } from '@berth/log';
import { FakeNetworkKernel, HOST_NS } from '@berth/netlink/testing';
import { FakeIpamDriver, FakeNetworkDriver } from '@berth/plugin-testkit';
import type { JoinRequest, JoinResponse } from '@berth/plugin-api';
import { NetworkController } from './controller.js';
import { compressBindings, expandBindings, portsView, wirePorts } from './ports.js';

/** The fake driver, but its Join also makes the veth whose end the controller moves in. */
class VethDriver extends FakeNetworkDriver {
  constructor(private readonly kernel: FakeNetworkKernel, name: string) {
    super(name);
  }
  override async join(req: JoinRequest): Promise<JoinResponse> {
    const res = await super.join(req);
    const src = res.InterfaceName!.SrcName;
    await this.kernel.netlink().createVeth(`h${src.slice(1)}`, src);
    return res;
  }
}

interface Rig {
  kernel: FakeNetworkKernel;
  driver: VethDriver;
  ipam: FakeIpamDriver;
  dir: string;
  /** Sandboxes with an embedded DNS running. */
  dns: string[];
  open(): Promise<NetworkController>;
  done(): void;
}

function rig(): Rig {
  const kernel = new FakeNetworkKernel();
  const driver = new VethDriver(kernel, 'bridge');
  const ipam = new FakeIpamDriver('default');
  const dir = mkdtempSync(join(tmpdir(), 'berth-ctl-'));
  const dns: string[] = [];
  const others = new Map([
    ['bridge', driver],
    ['host', new FakeNetworkDriver('host')],
    ['null', new FakeNetworkDriver('null')],
  ]);
  return {
    kernel, driver, ipam, dir, dns,
    open: () =>
      NetworkController.open({
        stateDir: join(dir, 'state'), netnsDir: join(dir, 'netns'), logger: createRootLogger('silent'), reapDelayMs: 0,
        drivers: others, ipams: new Map([['default', ipam]]),
        netlink: () => kernel.netlink(), netlinkIn: (p) => kernel.netlink(p),
        netns: { create: (p) => kernel.createNetns(p), remove: (p) => kernel.deleteNetns(p), exists: (p) => kernel.netnsExists(p) },
        startDns: async (o) => {
          dns.push(o.netnsPath);
          return { address: '127.0.0.11', close: async () => void dns.splice(dns.indexOf(o.netnsPath), 1) };
        },
      }),
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const sandboxReq = (id: string, network = 'bridge') => ({
  containerId: id.padEnd(64, '0'), containerName: `/c-${id}`, portBindings: [], exposed: [], networks: [{ network }],
});

describe('NetworkController', () => {
  test('makes the predefined networks once; bridge cannot be removed', async () => {
    const r = rig();
    try {
      const c = await r.open();
      assert.deepEqual(c.list().map((n) => `${n.Name}/${n.Driver}`).sort(), ['bridge/bridge', 'host/host', 'none/null']);
      const again = await r.open();
      assert.equal(again.list().length, 3);
      await assert.rejects(c.removeNetwork('bridge'), /bridge is a pre-defined network and cannot be removed/);
    } finally {
      r.done();
    }
  });

  test('an automatic pool skips subnets that host routes use', async () => {
    const r = rig();
    try {
      // The fake IPAM hands out 10.100.0.0/16, 10.101.0.0/16, ... in order.
      await r.kernel.netlink().createBridge('eth9');
      await r.kernel.netlink().setLink('eth9', { up: true });
      await r.kernel.netlink().addAddress('eth9', '10.100.3.4/16');
      await r.kernel.netlink().addAddress('eth9', '10.101.0.1/24');
      const c = await r.open();
      assert.equal(c.inspect('bridge').IPAM.Config[0]!.Subnet, '10.102.0.0/16');
      const { Id } = await c.createNetwork({ Name: 'n1' });
      assert.equal(c.inspect(Id).IPAM.Config[0]!.Subnet, '10.103.0.0/16');
      // The leases the controller turned down were given back: two pools held, bridge and n1.
      const count = (m: string): number => r.ipam.calls.filter((x) => x.startsWith(m)).length;
      assert.ok(count('ReleasePool') >= 2);
      assert.equal(count('RequestPool') - count('ReleasePool'), 2);
    } finally {
      r.done();
    }
  });

  test('the default bridge that is already there keeps its address as the network subnet and gateway', async () => {
    const r = rig();
    try {
      const nl = r.kernel.netlink();
      await nl.createBridge('berth0');
      await nl.setLink('berth0', { up: true });
      await nl.addAddress('berth0', '10.66.0.1/24');
      const c = await r.open();
      assert.deepEqual(c.inspect('bridge').IPAM.Config[0], { Subnet: '10.66.0.0/24', Gateway: '10.66.0.1' });
      assert.deepEqual((await nl.addresses('berth0')).map((a) => a.cidr), ['10.66.0.1/24']);
    } finally {
      r.done();
    }
  });

  test('bad requests: statuses by kind, and nothing is leased', async () => {
    const r = rig();
    try {
      const c = await r.open();
      const kind = async (p: Promise<unknown>): Promise<string> => {
        try {
          await p;
          return 'ok';
        } catch (err) {
          return kindOf(err);
        }
      };
      const used = c.inspect('bridge').IPAM.Config[0]!.Subnet!;
      assert.equal(await kind(c.createNetwork({ Name: 'bad cidr', IPAM: { Config: [{ Subnet: '10.9.0.0/16' }] } })), ErrorKind.InvalidArgument);
      assert.equal(await kind(c.createNetwork({ Name: 'b1', IPAM: { Config: [{ Subnet: '10.9.0.0/33' }] } })), ErrorKind.InvalidArgument);
      assert.equal(await kind(c.createNetwork({ Name: 'b2', IPAM: { Config: [{ Subnet: '10.9.0.0/16', Gateway: '10.8.0.1' }] } })), ErrorKind.InvalidArgument);
      assert.equal(await kind(c.createNetwork({ Name: 'b3', IPAM: { Config: [{ Subnet: '10.9.0.0/16', IPRange: '10.10.0.0/24' }] } })), ErrorKind.InvalidArgument);
      assert.equal(await kind(c.createNetwork({ Name: 'b4', IPAM: { Config: [{ Subnet: used }] } })), ErrorKind.PermissionDenied);
      assert.equal(await kind(c.createNetwork({ Name: 'b5', Driver: 'nosuch' })), ErrorKind.NotFound);
      assert.equal(await kind(c.createNetwork({ Name: 'b6', Driver: 'host' })), ErrorKind.PermissionDenied);
      // A predefined name: dockerd's 403 (operation is not permitted on predefined bridge network).
      assert.equal(await kind(c.createNetwork({ Name: 'bridge' })), ErrorKind.PermissionDenied);
      assert.equal(c.list().length, 3);
      assert.equal(r.ipam.calls.filter((x) => x.startsWith('RequestPool')).length - r.ipam.calls.filter((x) => x.startsWith('ReleasePool')).length, 1);
    } finally {
      r.done();
    }
  });

  test('a sandbox: netns with lo up, the driver interface moved in as eth0 with its address and default route; removal undoes all', async () => {
    const r = rig();
    try {
      const c = await r.open();
      const sb = await c.createSandbox(sandboxReq('a'));
      const snap = r.kernel.snapshot(sb.key);
      assert.deepEqual(snap.links.map((l) => `${l.name}:${l.up}`).sort(), ['eth0:true', 'lo:true']);
      const ep = sb.endpoints[0]!;
      assert.ok(snap.addresses.some((a) => a.link === 'eth0' && a.cidr === `${ep.ipAddress}/${ep.ipPrefixLen}`));
      assert.ok(snap.routes.some((rt) => rt.dst === 'default' && rt.gateway === ep.gateway));
      assert.equal(c.inspect('bridge').Containers[sandboxReq('a').containerId]?.IPv4Address, `${ep.ipAddress}/${ep.ipPrefixLen}`);
      await assert.rejects(c.removeNetwork('bridge'), /pre-defined/);
      await c.removeSandbox(sandboxReq('a').containerId);
      assert.deepEqual(r.kernel.netnsPaths(), [], 'the namespace goes at once');
      await c.settled();
      assert.deepEqual(r.kernel.netnsPaths(), []);
      assert.deepEqual(r.driver.state().flatMap((n) => n.endpoints), []);
      assert.deepEqual(r.kernel.snapshot(HOST_NS).links.map((l) => l.name), ['lo']);
      // The address went back to the pool: the next sandbox gets it again.
      const again = await c.createSandbox(sandboxReq('b'));
      assert.equal(again.endpoints[0]!.ipAddress, ep.ipAddress);
    } finally {
      r.done();
    }
  });

  test('a failed join rolls back: no netns, no endpoint, the address released, no record', async () => {
    const r = rig();
    try {
      const c = await r.open();
      r.kernel.failOn('addAddress', 'EINVAL');
      await assert.rejects(c.createSandbox(sandboxReq('f')), /attach container c-f to network bridge/);
      assert.deepEqual(r.kernel.netnsPaths(), []);
      assert.deepEqual(r.driver.state().flatMap((n) => n.endpoints), []);
      assert.equal(c.sandbox(sandboxReq('f').containerId), undefined);
      assert.deepEqual(r.kernel.snapshot(HOST_NS).links.map((l) => l.name), ['lo']);
      const ok = await c.createSandbox(sandboxReq('g'));
      assert.match(ok.endpoints[0]!.ipAddress, /\.2$/);
    } finally {
      r.done();
    }
  });

  test('after a restart, the sandbox of a container that is not running is torn down', async () => {
    const r = rig();
    try {
      const c = await r.open();
      const sb = await c.createSandbox(sandboxReq('k'));
      assert.ok(r.kernel.netnsExists(sb.key));
      const restarted = await r.open();
      assert.ok(restarted.sandbox(sandboxReq('k').containerId));
      await restarted.reconcile(() => false);
      await restarted.settled();
      assert.equal(restarted.sandbox(sandboxReq('k').containerId), undefined);
      assert.deepEqual(r.kernel.netnsPaths(), []);
      assert.deepEqual(r.driver.state().flatMap((n) => n.endpoints), []);
    } finally {
      r.done();
    }
  });

  test('a crash while a dropped sandbox is being reaped: the next start finishes it', async () => {
    const r = rig();
    try {
      const c = await r.open();
      await c.createSandbox(sandboxReq('r'));
      // Freeze the reaper at its first step: the driver cannot delete endpoints for now.
      r.driver.deleteEndpoint = () => new Promise(() => undefined);
      await c.removeSandbox(sandboxReq('r').containerId);
      await new Promise((res) => setTimeout(res, 20));
      assert.equal(r.driver.state().flatMap((n) => n.endpoints).length, 1);
      // "Crash": a new controller over the same state finishes the deletion.
      delete (r.driver as { deleteEndpoint?: unknown }).deleteEndpoint;
      const restarted = await r.open();
      await restarted.reconcile(() => false);
      assert.deepEqual(r.driver.state().flatMap((n) => n.endpoints), []);
      const again = await restarted.createSandbox(sandboxReq('s'));
      assert.match(again.endpoints[0]!.ipAddress, /\.2$/, 'the address came back');
    } finally {
      r.done();
    }
  });

  test('static addresses: only on user subnets, inside them, and free', async () => {
    const r = rig();
    try {
      const c = await r.open();
      await c.createNetwork({ Name: 'u', IPAM: { Config: [{ Subnet: '10.77.0.0/24' }] } });
      const want = (ip: string) => ({ ...sandboxReq(ip.replace(/\./g, '')), networks: [{ network: 'u', ipv4: ip }] });
      const sb = await c.createSandbox(want('10.77.0.9'));
      assert.equal(sb.endpoints[0]!.ipAddress, '10.77.0.9');
      const peer = await c.createSandbox({ ...sandboxReq('peer'), networks: [{ network: 'u', aliases: ['db'] }] });
      const records = (c as unknown as { records(id: string): { lookup(n: string): { a: string[] } | undefined } }).records(want('10.77.0.9').containerId);
      for (const n of ['c-peer', 'db', 'db.u', 'c-peer.u', 'peer00000000']) assert.deepEqual(records.lookup(n)?.a, [peer.endpoints[0]!.ipAddress], n);
      assert.equal(records.lookup('db.other'), undefined);
      await c.removeSandbox(sandboxReq('peer').containerId);
      assert.deepEqual(r.dns, [sb.key], 'a user network gets the embedded DNS');
      await assert.rejects(c.createSandbox(want('10.78.0.9')), (e) => isInvalidArgument(e) && /does not belong/.test((e as Error).message));
      await assert.rejects(c.createSandbox({ ...sandboxReq('x'), networks: [{ network: 'bridge', ipv4: '10.100.0.9' }] }), /user configured subnets/);
      await assert.rejects(c.createSandbox({ ...want('10.77.0.9'), containerId: 'dup'.padEnd(64, '0') }));
      assert.equal(r.kernel.netnsPaths().length, 1);
      await c.removeSandbox(want('10.77.0.9').containerId);
      await c.settled();
      assert.deepEqual(r.dns, []);
    } finally {
      r.done();
    }
  });
});

describe('ports', () => {
  test('API bindings to wire bindings: one per container port, publish-all adds the exposed ones', () => {
    const w = wirePorts({ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }], '53/udp': [{ HostIp: '', HostPort: '' }] }, { '443/tcp': {} }, true);
    assert.deepEqual(w.bindings, [
      { Proto: 6, IP: '', Port: 80, HostIP: '127.0.0.1', HostPort: 8080, HostPortEnd: 8080 },
      { Proto: 6, IP: '', Port: 443, HostIP: '', HostPort: 0, HostPortEnd: 0 },
      { Proto: 17, IP: '', Port: 53, HostIP: '', HostPort: 0, HostPortEnd: 0 },
    ]);
    assert.deepEqual(w.exposed, [{ Proto: 6, Port: 80 }, { Proto: 6, Port: 443 }, { Proto: 17, Port: 53 }]);
    assert.throws(() => wirePorts({ '70000/tcp': null }, null, false), /invalid containerPort/);
    assert.throws(() => wirePorts({ '80/xyz': null }, null, false), /invalid proto/);
  });

  test('a 10,000-port range is one run and expands back to the same bindings', () => {
    const api: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (let p = 41000; p < 51000; p++) api[`${p}/udp`] = [{ HostIp: '', HostPort: String(p) }];
    const w = wirePorts(api, null, false);
    const runs = compressBindings(w.bindings);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.Count, 10_000);
    assert.deepEqual(expandBindings(runs), w.bindings);
    const mixed = [...w.bindings.slice(0, 3), { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8000, HostPortEnd: 8010 }];
    assert.deepEqual(expandBindings(compressBindings(mixed)), mixed);
    assert.deepEqual(portsView([{ Proto: 6, Port: 80 }, { Proto: 6, Port: 443 }], [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }]), {
      '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }],
      '443/tcp': null,
    });
  });
});
