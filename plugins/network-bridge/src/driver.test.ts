import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeNetworkKernel, type RecordingNetlink } from '@berth/netlink/testing';
import type { DriverLogger, PortBinding } from '@berth/plugin-api';
import { BridgeDriver } from './driver.js';
import type { Firewall, FirewallNetwork, PortMapping, ProcFiles } from './firewall/types.js';
import { loadState } from './state.js';

const silent: DriverLogger = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silent };

/** A recording Firewall: what the driver asked for, and a publish that maps HostPort 0 to 40000+. */
class FakeFirewall implements Firewall {
  readonly calls: [string, ...unknown[]][] = [];
  readonly networks = new Map<string, FirewallNetwork>();
  readonly held = new Map<string, PortMapping[]>();
  fail: Partial<Record<'addNetwork' | 'removeNetwork' | 'publish', Error>> = {};
  async init() {
    this.calls.push(['init']);
  }
  async addNetwork(n: FirewallNetwork) {
    this.calls.push(['addNetwork', n]);
    if (this.fail.addNetwork) throw this.fail.addNetwork;
    this.networks.set(n.id, n);
  }
  async removeNetwork(n: FirewallNetwork) {
    this.calls.push(['removeNetwork', n.id]);
    if (this.fail.removeNetwork) throw this.fail.removeNetwork;
    this.networks.delete(n.id);
  }
  async publish(n: FirewallNetwork, ep: string, ip: string, bindings: PortBinding[]) {
    this.calls.push(['publish', n.id, ep, ip, bindings]);
    if (this.fail.publish) throw this.fail.publish;
    let next = 40000;
    const ms: PortMapping[] = bindings.map((b) => {
      const hp = b.HostPort || next++;
      const span = b.HostPort ? b.HostPortEnd - b.HostPort : 0;
      return { proto: b.Proto === 17 ? 'udp' : 'tcp', hostIp: b.HostIP || n.hostIp, hostPort: hp, hostPortEnd: hp + span, containerIp: ip, containerPort: b.Port, containerPortEnd: b.Port + span };
    });
    this.held.set(ep, ms);
    return ms;
  }
  async unpublish(_n: FirewallNetwork, ep: string) {
    this.calls.push(['unpublish', ep]);
    this.held.delete(ep);
  }
  published(ep: string) {
    return this.held.get(ep) ?? [];
  }
  async reconcile(networks: FirewallNetwork[], endpoints: { endpointId: string }[]) {
    this.calls.push(['reconcile', networks.map((n) => n.id), endpoints.map((e) => e.endpointId)]);
  }
}

function memProc(): ProcFiles & { files: Map<string, string> } {
  const files = new Map<string, string>([['/proc/sys/net/bridge/bridge-nf-call-iptables', '0\n']]);
  return {
    files,
    read: async (p) => {
      const v = files.get(p);
      if (v === undefined) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
      return v;
    },
    write: async (p, d) => void files.set(p, d),
  };
}

interface Rig {
  kernel: FakeNetworkKernel;
  nl: RecordingNetlink;
  fw: FakeFirewall;
  proc: ReturnType<typeof memProc>;
  dir: string;
  driver: BridgeDriver;
  [Symbol.dispose](): void;
}

function rig(opts: { kernel?: FakeNetworkKernel; dir?: string; fw?: FakeFirewall; options?: Record<string, string> } = {}): Rig {
  const kernel = opts.kernel ?? new FakeNetworkKernel();
  const nl = kernel.netlink();
  const fw = opts.fw ?? new FakeFirewall();
  const proc = memProc();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'bridge-unit-'));
  const driver = new BridgeDriver({ stateDir: dir, logger: silent, netlink: nl, firewall: fw, proc, ...(opts.options ? { options: opts.options } : {}) }, loadState(dir));
  return { kernel, nl, fw, proc, dir, driver, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

const NID = 'aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111';
const NID2 = 'bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222';
const EID = 'eeeeeeeeeeee3333333333333333333333333333333333333333333333333333';

function netReq(id: string, generic: Record<string, string> = {}, extra: Record<string, unknown> = {}) {
  return {
    NetworkID: id,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': generic, ...extra },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '172.30.0.0/16', Gateway: '172.30.0.1/16' }],
    IPv6Data: [],
  };
}

function epReq(mac = '') {
  return { NetworkID: NID, EndpointID: EID, Interface: { Address: '172.30.0.2/16', AddressIPv6: '', MacAddress: mac }, Options: {} };
}

test('createNetwork: bridge br-<id12> with the gateway address, MTU, up; firewall told; ip_forward/bridge-nf once; state persisted', async () => {
  using r = rig();
  await r.driver.createNetwork(netReq(NID, { 'com.docker.network.driver.mtu': '1400' }));
  const snap = r.kernel.snapshot();
  const br = snap.links.find((l) => l.name === 'br-aaaaaaaaaaaa')!;
  assert.deepEqual([br.kind, br.up, br.mtu], ['bridge', true, 1400]);
  assert.match(br.mac, /^02:42:/);
  assert.deepEqual(snap.addresses, [{ link: 'br-aaaaaaaaaaaa', cidr: '172.30.0.1/16', family: 4 }]);
  assert.deepEqual(r.fw.calls.map((c) => c[0]), ['init', 'addNetwork']);
  assert.deepEqual(r.fw.calls[1]![1], {
    id: NID, bridge: 'br-aaaaaaaaaaaa', subnet: '172.30.0.0/16', gateway: '172.30.0.1', internal: false, icc: true, masquerade: true, hostIp: '0.0.0.0',
  });
  assert.equal(r.proc.files.get('/proc/sys/net/bridge/bridge-nf-call-iptables'), '1');
  assert.equal(loadState(r.dir).networks[NID]!.bridge, 'br-aaaaaaaaaaaa');
  await r.driver.createNetwork(netReq(NID2));
  assert.deepEqual(r.fw.calls.map((c) => c[0]), ['init', 'addNetwork', 'addNetwork'], 'init only at the first network');
});

test('createNetwork: a bridge name another network of this driver uses is a Conflict; nothing changes', async () => {
  using r = rig();
  await r.driver.createNetwork(netReq(NID, { 'com.docker.network.bridge.name': 'brx' }));
  const before = JSON.stringify(r.kernel.snapshot());
  await assert.rejects(r.driver.createNetwork(netReq(NID2, { 'berth.bridge.name': 'brx' })), (err: Error & { kind?: string }) => err.kind === 'Conflict' && /same bridge name/.test(err.message));
  assert.equal(JSON.stringify(r.kernel.snapshot()), before);
  await assert.rejects(r.driver.createNetwork(netReq(NID)), { kind: 'Conflict' });
});

test('createNetwork: the gateway address failing unwinds: the new bridge is deleted, the firewall untouched, no state', async () => {
  using r = rig();
  r.kernel.failOn('addAddress', 'EADDRNOTAVAIL');
  const err = await r.driver.createNetwork(netReq(NID)).catch((e: unknown) => e as Error);
  assert.ok(err instanceof Error);
  assert.match(err.message, /^create network aaaa.* on bridge br-aaaaaaaaaaaa: add address 172\.30\.0\.1\/16 to br-aaaaaaaaaaaa: EADDRNOTAVAIL$/);
  assert.deepEqual(r.kernel.snapshot().links.map((l) => l.name), ['lo']);
  assert.deepEqual(r.fw.calls.map((c) => c[0]), ['init']);
  assert.deepEqual(loadState(r.dir).networks, {});
});

test('createNetwork: the firewall failing unwinds the bridge too', async () => {
  using r = rig();
  r.fw.fail.addNetwork = new Error('iptables-restore: line 3 failed');
  await assert.rejects(r.driver.createNetwork(netReq(NID)), /line 3 failed/);
  assert.deepEqual(r.kernel.snapshot().links.map((l) => l.name), ['lo']);
  assert.deepEqual(r.kernel.snapshot().addresses, []);
  assert.deepEqual(loadState(r.dir).networks, {});
});

test('createNetwork: bad input is InvalidArgument before anything is made', async () => {
  using r = rig();
  for (const req of [
    { ...netReq(NID), IPv4Data: [] },
    { ...netReq(NID), IPv4Data: [{ AddressSpace: 'x', Pool: '172.30.0.0/16', Gateway: 'nonsense' }] },
    netReq(NID, { 'com.docker.network.bridge.enable_icc': 'maybe' }),
  ]) {
    await assert.rejects(r.driver.createNetwork(req), { kind: 'InvalidArgument' });
  }
  assert.deepEqual(r.kernel.calls, []);
});

test('an existing bridge is adopted: kept at delete, only the gateway address we added is removed', async () => {
  using r = rig();
  await r.nl.createBridge('mybr');
  await r.driver.createNetwork(netReq(NID, { 'com.docker.network.bridge.name': 'mybr' }));
  assert.equal((await r.nl.link('mybr'))!.up, true);
  await r.driver.deleteNetwork({ NetworkID: NID });
  assert.ok(await r.nl.link('mybr'));
  assert.deepEqual(await r.nl.addresses('mybr'), []);
  await r.nl.createVeth('notabridge', 'peer');
  await assert.rejects(r.driver.createNetwork(netReq(NID, { 'com.docker.network.bridge.name': 'notabridge' })), /not a bridge/);
});

test('createEndpoint: veth<7 hex> on the bridge, up, hairpin, peer vethc<7 hex> with the MAC from the IPv4 address, answered only when not asked', async () => {
  using r = rig();
  await r.driver.createNetwork(netReq(NID, { 'com.docker.network.driver.mtu': '1400' }));
  const res = await r.driver.createEndpoint(epReq());
  assert.deepEqual(res, { Interface: { MacAddress: '02:42:ac:1e:00:02' } });
  // The pair is made at Join (here in this namespace: the sandbox key is not a live netns).
  assert.deepEqual(r.kernel.snapshot().links.map((l) => l.name), ['lo', 'br-aaaaaaaaaaaa']);
  const join = await r.driver.join({ NetworkID: NID, EndpointID: EID, SandboxKey: '/run/berth/netns/x', Options: {} });
  const snap = r.kernel.snapshot();
  const host = snap.links.find((l) => /^veth[0-9a-f]{7}$/.test(l.name))!;
  const peer = snap.links.find((l) => /^vethc[0-9a-f]{7}$/.test(l.name))!;
  assert.deepEqual([host.master, host.up, host.hairpin, host.mtu], ['br-aaaaaaaaaaaa', true, true, 1400]);
  assert.deepEqual([peer.mac, peer.mtu, peer.master], ['02:42:ac:1e:00:02', 1400, undefined]);
  assert.deepEqual(join, { InterfaceName: { SrcName: peer.name, DstPrefix: 'eth' }, Gateway: '172.30.0.1' });
  await assert.rejects(r.driver.createEndpoint(epReq()), { kind: 'Conflict' });
  await r.driver.leave({ NetworkID: NID, EndpointID: EID });
  await assert.rejects(r.driver.deleteNetwork({ NetworkID: NID }), (e: Error & { kind?: string }) => e.kind === 'PermissionDenied' && /active endpoints/.test(e.message));
  await r.driver.deleteEndpoint({ NetworkID: NID, EndpointID: EID });
  assert.deepEqual(r.kernel.snapshot().links.map((l) => l.name), ['lo', 'br-aaaaaaaaaaaa']);
  await r.driver.deleteNetwork({ NetworkID: NID });
  assert.deepEqual(r.kernel.snapshot().links.map((l) => l.name), ['lo']);
  assert.deepEqual(r.fw.calls.at(-1), ['removeNetwork', NID]);
  assert.deepEqual(loadState(r.dir), { version: 1, networks: {}, endpoints: {} });
});

test('createEndpoint: a requested MAC is used and not answered; with the userland proxy no hairpin', async () => {
  using r = rig({ options: { 'userland-proxy': 'true' } });
  await r.driver.createNetwork(netReq(NID));
  assert.deepEqual(await r.driver.createEndpoint(epReq('02:AA:BB:CC:DD:EE')), {});
  await r.driver.join({ NetworkID: NID, EndpointID: EID, SandboxKey: '/run/berth/netns/x', Options: {} });
  const snap = r.kernel.snapshot();
  assert.equal(snap.links.find((l) => /^vethc[0-9a-f]{7}$/.test(l.name))!.mac, '02:aa:bb:cc:dd:ee');
  assert.equal(snap.links.find((l) => /^veth[0-9a-f]{7}$/.test(l.name))!.hairpin, false);
});

test('join: a failing step unwinds the veth pair; a name clash (EEXIST) is retried with new names', async () => {
  using r = rig();
  await r.driver.createNetwork(netReq(NID));
  await r.driver.createEndpoint(epReq());
  const join = () => r.driver.join({ NetworkID: NID, EndpointID: EID, SandboxKey: '/run/berth/netns/x', Options: {} });
  r.kernel.failOn('setHairpin', 'EOPNOTSUPP');
  await assert.rejects(join(), /join endpoint eeee.*set hairpin on on veth[0-9a-f]{7}: EOPNOTSUPP/);
  assert.deepEqual(r.kernel.snapshot().links.map((l) => l.name), ['lo', 'br-aaaaaaaaaaaa']);
  r.kernel.failOn('createVeth', 'EEXIST', { times: 2 });
  await join();
  assert.equal(r.kernel.calls.filter((c) => c.method === 'createVeth').length, 4);
  await assert.rejects(r.driver.createEndpoint({ ...epReq(), EndpointID: 'other', Interface: { Address: '', AddressIPv6: '', MacAddress: '' } }), { kind: 'InvalidArgument' });
});

test('ports: ProgramExternalConnectivity publishes through the firewall, EndpointOperInfo reports them per port, Revoke unpublishes', async () => {
  using r = rig();
  await r.driver.createNetwork(netReq(NID));
  await r.driver.createEndpoint(epReq());
  const bindings: PortBinding[] = [
    { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 0, HostPortEnd: 0 },
    { Proto: 17, IP: '', Port: 5000, HostIP: '127.0.0.1', HostPort: 6000, HostPortEnd: 6002 },
  ];
  await r.driver.programExternalConnectivity({ NetworkID: NID, EndpointID: EID, Options: { 'com.docker.network.portmap': bindings, 'com.docker.network.endpoint.exposedports': [] } });
  assert.deepEqual(r.fw.calls.find((c) => c[0] === 'publish'), ['publish', NID, EID, '172.30.0.2', bindings]);
  const info = await r.driver.endpointOperInfo({ NetworkID: NID, EndpointID: EID });
  assert.deepEqual(info.Value, {
    'com.docker.network.portmap': [
      { Proto: 6, IP: '172.30.0.2', Port: 80, HostIP: '0.0.0.0', HostPort: 40000, HostPortEnd: 40000 },
      { Proto: 17, IP: '172.30.0.2', Port: 5000, HostIP: '127.0.0.1', HostPort: 6000, HostPortEnd: 6000 },
      { Proto: 17, IP: '172.30.0.2', Port: 5001, HostIP: '127.0.0.1', HostPort: 6001, HostPortEnd: 6001 },
      { Proto: 17, IP: '172.30.0.2', Port: 5002, HostIP: '127.0.0.1', HostPort: 6002, HostPortEnd: 6002 },
    ],
    'com.docker.network.endpoint.macaddress': '02:42:ac:1e:00:02',
  });
  assert.equal(loadState(r.dir).endpoints[EID]!.ports.length, 2);
  await r.driver.revokeExternalConnectivity({ NetworkID: NID, EndpointID: EID });
  assert.deepEqual(r.fw.calls.at(-1), ['unpublish', EID]);
  assert.deepEqual((await r.driver.endpointOperInfo({ NetworkID: NID, EndpointID: EID })).Value['com.docker.network.portmap'], []);
  // a failed publish leaves the endpoint unprogrammed
  r.fw.fail.publish = Object.assign(new Error('Bind for 0.0.0.0:80 failed: port is already allocated'), { kind: 'Conflict' });
  await assert.rejects(r.driver.programExternalConnectivity({ NetworkID: NID, EndpointID: EID, Options: { 'com.docker.network.portmap': bindings } }), /already allocated/);
  assert.equal(loadState(r.dir).endpoints[EID]!.programmed, false);
  // deleting a programmed endpoint unpublishes first
  delete r.fw.fail.publish;
  await r.driver.programExternalConnectivity({ NetworkID: NID, EndpointID: EID, Options: { 'com.docker.network.portmap': bindings } });
  await r.driver.deleteEndpoint({ NetworkID: NID, EndpointID: EID });
  assert.deepEqual(r.fw.calls.at(-1), ['unpublish', EID]);
});

test('internal network: Join gives no gateway and disables the gateway service; nothing is published', async () => {
  using r = rig();
  await r.driver.createNetwork(netReq(NID, {}, { 'com.docker.network.internal': true }));
  assert.equal((r.fw.calls[1]![1] as FirewallNetwork).internal, true);
  await r.driver.createEndpoint(epReq());
  const j = await r.driver.join({ NetworkID: NID, EndpointID: EID, SandboxKey: '/x', Options: {} });
  assert.equal(j.Gateway, undefined);
  assert.equal(j.DisableGatewayService, true);
  await r.driver.programExternalConnectivity({ NetworkID: NID, EndpointID: EID, Options: { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 0, HostPortEnd: 0 }] } });
  assert.equal(r.fw.calls.some((c) => c[0] === 'publish'), false);
});

test('unknown network or endpoint: NotFound', async () => {
  using r = rig();
  await assert.rejects(r.driver.deleteNetwork({ NetworkID: 'nope' }), { kind: 'NotFound' });
  await r.driver.createNetwork(netReq(NID));
  await assert.rejects(r.driver.join({ NetworkID: NID, EndpointID: 'nope', SandboxKey: '/x', Options: {} }), { kind: 'NotFound', code: 'BERTH_ENDPOINT_NOT_FOUND' });
  await assert.rejects(r.driver.createEndpoint({ ...epReq(), NetworkID: 'nope' }), { kind: 'NotFound' });
});

test('restore: a restarted driver re-creates a vanished bridge with its address and reconciles the firewall with what it knows', async () => {
  using r = rig();
  await r.driver.createNetwork(netReq(NID));
  await r.driver.createEndpoint(epReq());
  await r.nl.deleteLink('br-aaaaaaaaaaaa'); // e.g. a reboot
  const fw2 = new FakeFirewall();
  const r2 = rig({ kernel: r.kernel, dir: r.dir, fw: fw2 });
  await r2.driver.restore();
  const snap = r.kernel.snapshot();
  const br = snap.links.find((l) => l.name === 'br-aaaaaaaaaaaa')!;
  assert.equal(br.up, true);
  assert.deepEqual(snap.addresses.map((a) => a.cidr), ['172.30.0.1/16']);
  assert.deepEqual(fw2.calls, [['init'], ['reconcile', [NID], [EID]]]);
  // and it still knows the endpoint
  await r2.driver.deleteEndpoint({ NetworkID: NID, EndpointID: EID });
  await r2.driver.deleteNetwork({ NetworkID: NID });
  assert.deepEqual(r.kernel.snapshot().links.map((l) => l.name), ['lo']);
  assert.match(readFileSync(join(r.dir, 'bridge.json'), 'utf8'), /"networks": \{\}/);
});

test('inhibit_ipv4: no address on the bridge, the containers still get the gateway', async () => {
  using r = rig();
  await r.driver.createNetwork(netReq(NID, { 'com.docker.network.bridge.inhibit_ipv4': 'true' }));
  assert.deepEqual(r.kernel.snapshot().addresses, []);
  await r.driver.createEndpoint(epReq());
  assert.equal((await r.driver.join({ NetworkID: NID, EndpointID: EID, SandboxKey: '/x', Options: {} })).Gateway, '172.30.0.1');
});

test('restore: with no state at all the firewall is left alone', async () => {
  using r = rig();
  await r.driver.restore();
  assert.deepEqual(r.fw.calls, []);
  assert.deepEqual(r.kernel.calls, []);
});

test('IPv6: the v6 gateway goes on the bridge too, and Join answers GatewayIPv6 for an endpoint with a v6 address', async () => {
  using r = rig();
  await r.driver.createNetwork({
    ...netReq(NID, {}, { 'com.docker.network.enable_ipv6': true }),
    IPv6Data: [{ AddressSpace: 'LocalDefault', Pool: 'fd00:1::/64', Gateway: 'fd00:1::1/64' }],
  });
  assert.deepEqual(r.kernel.snapshot().addresses.map((a) => a.cidr), ['172.30.0.1/16', 'fd00:1::1/64']);
  await r.driver.createEndpoint({ ...epReq(), Interface: { Address: '172.30.0.2/16', AddressIPv6: 'fd00:1::2/64', MacAddress: '' } });
  const j = await r.driver.join({ NetworkID: NID, EndpointID: EID, SandboxKey: '/x', Options: {} });
  assert.deepEqual([j.Gateway, j.GatewayIPv6], ['172.30.0.1', 'fd00:1::1']);
  await r.driver.deleteEndpoint({ NetworkID: NID, EndpointID: EID });
  await r.driver.deleteNetwork({ NetworkID: NID });
  assert.deepEqual(r.kernel.snapshot().addresses, []);
});

test('a new default network takes the default bridge over from a default network the engine lost; other clashes stay Conflict', async () => {
  using r = rig();
  const dflt = { 'com.docker.network.bridge.name': 'berth0', 'com.docker.network.bridge.default_bridge': 'true' };
  await r.driver.createNetwork(netReq(NID, dflt));
  await r.driver.createEndpoint(epReq());
  await r.driver.createNetwork({ ...netReq(NID2, dflt), IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '172.29.0.0/16', Gateway: '172.29.0.1/16' }] });
  const st = loadState(r.dir);
  assert.deepEqual(Object.keys(st.networks), [NID2]);
  assert.deepEqual(st.endpoints, {});
  const snap = r.kernel.snapshot();
  assert.deepEqual(snap.links.map((l) => l.name), ['lo', 'berth0'], 'the old endpoint veth is gone, the bridge stays');
  assert.deepEqual(snap.addresses.map((a) => a.cidr), ['172.29.0.1/16'], 'the old gateway address went, the new one is there');
  assert.deepEqual(r.fw.calls.filter((c) => c[0] === 'removeNetwork'), [['removeNetwork', NID]]);
  await assert.rejects(r.driver.createNetwork(netReq('c'.repeat(64), { 'com.docker.network.bridge.name': 'berth0' })), { kind: 'Conflict' });
});
