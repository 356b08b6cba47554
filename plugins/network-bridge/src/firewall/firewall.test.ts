import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeIptables } from '@berth/iptables/testing';
import type { PortBinding } from '@berth/plugin-api';
import { createFirewall } from './firewall.js';
import { FakeProc } from './testing-proc.js';
import type { FirewallNetwork, PortMapping } from './types.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'berth-fw-unit-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));
const goldenDir = fileURLToPath(new URL('../../../src/firewall/golden/', import.meta.url));
const silent = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child() { return silent; } };

const base: FirewallNetwork = { id: 'n1', bridge: 'br-0123456789ab', subnet: '172.18.0.0/16', gateway: '172.18.0.1', internal: false, icc: true, masquerade: true, hostIp: '0.0.0.0' };
const C = '172.18.0.2';
const tcp = (port: number, hostPort = port, hostIp = ''): PortBinding => ({ Proto: 6, IP: '', Port: port, HostIP: hostIp, HostPort: hostPort, HostPortEnd: hostPort });
const range = (proto: number, from: number, to: number, hostFrom = from): PortBinding[] => {
  const out: PortBinding[] = [];
  for (let p = from; p <= to; p++) out.push({ Proto: proto, IP: '', Port: p, HostIP: '', HostPort: hostFrom + p - from, HostPortEnd: hostFrom + p - from });
  return out;
};

function setup(opts: { userlandProxy?: boolean } = {}) {
  const iptables = new FakeIptables();
  const proc = new FakeProc();
  proc.links.add(base.bridge);
  const stateDir = mkdtempSync(join(tmpRoot, 'state-'));
  const proxies: string[] = [];
  const startProxy = async (m: PortMapping) => {
    const key = `${m.proto} ${m.hostIp}:${m.hostPort}-${m.hostPortEnd} -> ${m.containerIp}:${m.containerPort}`;
    proxies.push(key);
    return { close: async () => void proxies.splice(proxies.indexOf(key), 1) };
  };
  const fw = createFirewall({ iptables, logger: silent, stateDir, proc, startProxy, ...(opts.userlandProxy ? { userlandProxy: true } : {}) });
  return { iptables, proc, stateDir, fw, proxies };
}

/** Compares with golden/<name>.txt; UPDATE_GOLDEN=1 rewrites it. */
function golden(name: string, text: string): void {
  const file = join(goldenDir, `${name}.txt`);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) writeFileSync(file, text);
  assert.equal(text, readFileSync(file, 'utf8'), `golden ${name}.txt (UPDATE_GOLDEN=1 to rewrite)`);
}

interface Scenario {
  name: string;
  net?: Partial<FirewallNetwork>;
  bindings: PortBinding[];
  userlandProxy?: boolean;
}

const scenarios: Scenario[] = [
  { name: 'default', bindings: [tcp(80, 8080)] },
  { name: 'icc-off', net: { icc: false }, bindings: [tcp(80, 8080)] },
  { name: 'internal', net: { internal: true }, bindings: [tcp(80, 8080)] },
  { name: 'masquerade-off', net: { masquerade: false }, bindings: [tcp(80, 8080)] },
  { name: 'host-ip', net: { hostIp: '192.0.2.10' }, bindings: [tcp(80, 8080), tcp(443, 8443, '127.0.0.1')] },
  { name: 'udp-range', bindings: range(17, 41000, 41999) },
  { name: 'shifted-range', bindings: range(6, 9000, 9009, 42000) },
  { name: 'sctp', bindings: [{ Proto: 132, IP: '', Port: 5000, HostIP: '', HostPort: 5000, HostPortEnd: 5000 }] },
];

for (const s of scenarios) {
  test(`golden payloads: ${s.name}`, async () => {
    const { iptables, fw } = setup(s.userlandProxy ? { userlandProxy: true } : {});
    const n = { ...base, ...s.net };
    const out: string[] = [];
    const step = async (label: string, fn: () => Promise<unknown>): Promise<void> => {
      const before = iptables.payloads.length;
      await fn();
      out.push(`# ${label}\n${iptables.payloads.slice(before).join('') || '(nothing)\n'}`);
    };
    await step('init', () => fw.init());
    const afterInit = [iptables.dump('filter'), iptables.dump('nat'), iptables.dump('mangle')];
    await step('addNetwork', () => fw.addNetwork(n));
    await step('addNetwork again', () => fw.addNetwork(n));
    await step('publish', () => fw.publish(n, 'ep1', C, s.bindings));
    await step('unpublish', () => fw.unpublish(n, 'ep1'));
    await step('removeNetwork', () => fw.removeNetwork(n));
    golden(s.name, out.join('\n'));
    assert.deepEqual([iptables.dump('filter'), iptables.dump('nat'), iptables.dump('mangle')], afterInit, 'removeNetwork leaves only the base chains');
  });
}

test('golden payloads: userland proxy mode; one proxy per mapping, stopped on unpublish', async () => {
  const { iptables, fw, proxies } = setup({ userlandProxy: true });
  await fw.init();
  await fw.addNetwork(base);
  await fw.publish(base, 'ep1', C, [tcp(80, 8080), ...range(17, 41000, 41009)]);
  assert.deepEqual(proxies, ['tcp 0.0.0.0:8080-8080 -> 172.18.0.2:80', 'udp 0.0.0.0:41000-41009 -> 172.18.0.2:41000']);
  await fw.unpublish(base, 'ep1');
  assert.deepEqual(proxies, []);
  await fw.removeNetwork(base);
  golden('userland-proxy', iptables.payloads.join('\n'));
});

test('dockerd coexists: its chains and jumps stay, ours go on top, policy DROP kept', async () => {
  const { iptables, fw } = setup();
  iptables.setPolicy('filter', 'FORWARD', 'DROP');
  for (const l of ['-N DOCKER', '-N DOCKER-USER', '-A DOCKER-USER -j RETURN', '-A FORWARD -j DOCKER-USER', '-A FORWARD -o docker0 -j DOCKER']) iptables.inject('filter', l);
  await fw.init();
  await fw.addNetwork(base);
  const fwd = iptables.rules('filter', 'FORWARD')!;
  assert.deepEqual(fwd.slice(0, 2), ['-j BERTH-USER', '-j BERTH-ISOLATION-STAGE-1']);
  assert.deepEqual(fwd.slice(-2), ['-j DOCKER-USER', '-o docker0 -j DOCKER']);
  assert.ok(iptables.dump('filter').includes('-P FORWARD DROP'));
});

test('init enables ip_forward when off and then sets FORWARD policy DROP, as dockerd', async () => {
  const { iptables, proc, fw } = setup();
  proc.files.set('/proc/sys/net/ipv4/ip_forward', '0\n');
  await fw.init();
  assert.equal(proc.files.get('/proc/sys/net/ipv4/ip_forward'), '1');
  assert.ok(iptables.dump('filter').includes('-P FORWARD DROP'));
  const { iptables: i2, fw: f2 } = setup();
  await f2.init();
  assert.ok(i2.dump('filter').includes('-P FORWARD ACCEPT'), 'forwarding already on: policy untouched');
});

test('route_localnet is set on the bridge only, and not for internal networks or with the proxy', async () => {
  const a = setup();
  await a.fw.addNetwork(base);
  assert.deepEqual(a.proc.writes, [[`/proc/sys/net/ipv4/conf/${base.bridge}/route_localnet`, '1']]);
  const b = setup();
  await b.fw.addNetwork({ ...base, internal: true });
  assert.deepEqual(b.proc.writes, []);
  const c = setup({ userlandProxy: true });
  await c.fw.addNetwork(base);
  assert.deepEqual(c.proc.writes, []);
});

test('conflicts: Berth holds the port, another program listens, a duplicate in one request; nothing installed, 409', async () => {
  const { iptables, proc, fw } = setup();
  await fw.init();
  await fw.addNetwork(base);
  await fw.publish(base, 'ep1', C, [tcp(6379)]);
  const count = iptables.payloads.length;
  const conflict = (e: Error & { code?: string; kind?: string }, msg: string): boolean => {
    assert.equal(e.code, 'BERTH_PORT_ALLOCATED');
    assert.equal(e.kind, 'Conflict');
    assert.equal(e.message, msg);
    return true;
  };
  await assert.rejects(fw.publish(base, 'ep2', '172.18.0.3', [tcp(6379)]), (e: Error) => conflict(e, 'Bind for 0.0.0.0:6379 failed: port is already allocated'));
  await assert.rejects(fw.publish(base, 'ep2', '172.18.0.3', [tcp(6379, 6379, '127.0.0.1')]), (e: Error) => conflict(e, 'Bind for 127.0.0.1:6379 failed: port is already allocated'));
  proc.listen('tcp', '127.0.0.1', 5432);
  await assert.rejects(fw.publish(base, 'ep2', '172.18.0.3', [tcp(80, 8080), tcp(5432)]), (e: Error) => conflict(e, 'Bind for 0.0.0.0:5432 failed: port is already allocated'));
  // a listener on 127.0.0.1 does not block another specific address
  proc.listen('udp', '0.0.0.0', 41500);
  await assert.rejects(fw.publish(base, 'ep2', '172.18.0.3', range(17, 41000, 41999)), (e: Error) => conflict(e, 'Bind for 0.0.0.0:41500 failed: port is already allocated'));
  await assert.rejects(fw.publish(base, 'ep2', '172.18.0.3', [tcp(80, 9000), tcp(81, 9000)]), (e: Error) => conflict(e, 'Bind for 0.0.0.0:9000 failed: port is already allocated'));
  assert.equal(iptables.payloads.length, count, 'no payload for a refused publish');
  assert.deepEqual(fw.published('ep2'), []);
  // udp and tcp do not collide; a different host IP than a 127.0.0.1 listener is fine
  const ok = await fw.publish(base, 'ep2', '172.18.0.3', [{ Proto: 17, IP: '', Port: 6379, HostIP: '', HostPort: 6379, HostPortEnd: 6379 }, tcp(5432, 5432, '192.0.2.1')]);
  assert.equal(ok.length, 2);
});

test('ephemeral ports come from ip_local_port_range, skip taken ones, and are released on unpublish', async () => {
  const { proc, fw } = setup();
  proc.files.set('/proc/sys/net/ipv4/ip_local_port_range', '40000 40003\n');
  proc.listen('tcp', '0.0.0.0', 40001);
  await fw.addNetwork(base);
  const a = await fw.publish(base, 'a', C, [tcp(80, 0), tcp(81, 0)]);
  assert.deepEqual(a.map((m) => m.hostPort), [40000, 40002]);
  const b = await fw.publish(base, 'b', '172.18.0.3', [tcp(80, 0)]);
  assert.deepEqual(b.map((m) => m.hostPort), [40003]);
  await assert.rejects(fw.publish(base, 'c', '172.18.0.4', [tcp(80, 0)]), /all ports are allocated/);
  await fw.unpublish(base, 'a');
  const c = await fw.publish(base, 'c', '172.18.0.4', [tcp(80, 0)]);
  assert.ok([40000, 40002].includes(c[0]!.hostPort));
});

test('a host range for one container port takes the first free port of the range', async () => {
  const { proc, fw } = setup();
  await fw.addNetwork(base);
  proc.listen('tcp', '0.0.0.0', 8000);
  await fw.publish(base, 'a', C, [tcp(80, 8001)]);
  const m = await fw.publish(base, 'b', '172.18.0.3', [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8000, HostPortEnd: 8010 }]);
  assert.equal(m[0]!.hostPort, 8002);
  await assert.rejects(fw.publish(base, 'c', '172.18.0.4', [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8000, HostPortEnd: 8002 }]), /Bind for 0.0.0.0:8000 failed: port is already allocated/);
});

test('bad bindings are InvalidArgument and install nothing', async () => {
  const { iptables, fw } = setup();
  await fw.addNetwork(base);
  const n = iptables.payloads.length;
  for (const b of [
    { ...tcp(80), HostPort: 70000, HostPortEnd: 70000 },
    { ...tcp(80), Port: 0 },
    { ...tcp(80), Proto: 1 },
    { ...tcp(80, 9000), HostPortEnd: 8000 },
    { ...tcp(80), HostIP: 'abc' },
  ]) {
    await assert.rejects(fw.publish(base, 'x', C, [b]), (e: Error & { code?: string }) => e.code === 'BERTH_INVALID_ARGUMENT');
  }
  await assert.rejects(fw.addNetwork({ ...base, subnet: '300.1.0.0/16' }), (e: Error & { code?: string }) => e.code === 'BERTH_INVALID_ARGUMENT');
  await assert.rejects(fw.addNetwork({ ...base, bridge: 'x y' }), (e: Error & { code?: string }) => e.code === 'BERTH_INVALID_ARGUMENT');
  assert.equal(iptables.payloads.length, n);
});

test('a subnet given with host bits is written as iptables prints it (no duplicate on a second add)', async () => {
  const { iptables, fw } = setup();
  await fw.addNetwork({ ...base, subnet: '172.18.5.1/16' });
  await fw.addNetwork({ ...base, subnet: '172.18.5.1/16' });
  assert.deepEqual(iptables.rules('nat', 'POSTROUTING')!.filter((r) => r.includes('172.18')), ['-s 172.18.0.0/16 ! -o br-0123456789ab -j MASQUERADE']);
});

test('a failed restore leaves no allocation and no record', async () => {
  const { iptables, fw } = setup();
  await fw.addNetwork(base);
  iptables.failRestore('line 2 failed', 4); // the optimistic try and the three read-then-apply plans
  await assert.rejects(fw.publish(base, 'a', C, [tcp(80)]), /publish ports of endpoint a: iptables-restore: line 2 failed/);
  assert.deepEqual(fw.published('a'), []);
  assert.equal((await fw.publish(base, 'b', C, [tcp(80)])).length, 1, 'port 80 free again');
});

test('publishing again replaces the ports; with the proxy, its own old sockets do not block the same port', async () => {
  const { fw, proxies } = setup({ userlandProxy: true });
  await fw.addNetwork(base);
  await fw.publish(base, 'a', C, [tcp(80)]);
  await fw.publish(base, 'a', C, [tcp(80), tcp(81)]);
  assert.deepEqual(proxies, ['tcp 0.0.0.0:80-81 -> 172.18.0.2:80']);
  await assert.rejects(fw.publish(base, 'a', C, [{ ...tcp(80), Proto: 99 }]), /protocol 99/);
  assert.deepEqual(fw.published('a').map((m) => m.hostPort), [80]);
});

test('publishing again for an endpoint replaces its ports', async () => {
  const { iptables, fw } = setup();
  await fw.addNetwork(base);
  await fw.publish(base, 'a', C, [tcp(80)]);
  await fw.publish(base, 'a', C, [tcp(81)]);
  assert.deepEqual(fw.published('a').map((m) => m.hostPort), [81]);
  assert.ok(!iptables.dump('nat').some((l) => l.includes('--dport 80 ')));
});

test('state survives a restart; reconcile drops what is not kept and re-adds what is', async () => {
  const { iptables, proc, stateDir, fw } = setup();
  await fw.init();
  const other: FirewallNetwork = { ...base, id: 'n2', bridge: 'br-ba9876543210', subnet: '172.19.0.0/16', gateway: '172.19.0.1' };
  proc.links.add(other.bridge);
  await fw.addNetwork(base);
  await fw.addNetwork(other);
  await fw.publish(base, 'keep', C, [tcp(80)]);
  await fw.publish(other, 'gone', '172.19.0.2', [tcp(81)]);
  // someone flushed our DNAT chain (firewalld reload) and left junk in it: a stale rule to one
  // of our subnets, and another daemon's rule (same prefix, a subnet we do not know)
  await iptables.restore('*nat\n-F BERTH\n-A BERTH -p tcp -m tcp --dport 9 -j DNAT --to-destination 172.18.0.77:9\n-A BERTH -p tcp -m tcp --dport 10 -j DNAT --to-destination 1.2.3.4:10\nCOMMIT\n');
  const fw2 = createFirewall({ iptables, logger: silent, stateDir, proc });
  assert.equal(fw2.published('gone').length, 1);
  await fw2.reconcile([base], [{ networkId: base.id, endpointId: 'keep', containerIp: C, mappings: fw2.published('keep') }]);
  const all = [...iptables.dump('filter'), ...iptables.dump('nat')].join('\n');
  assert.ok(!all.includes(other.bridge), 'stale network gone');
  assert.ok(!all.includes('--dport 81'), 'stale endpoint gone');
  assert.ok(!all.includes('172.18.0.77'), 'stale rule about our subnet gone');
  assert.ok(all.includes('1.2.3.4:10'), "a rule about someone else's subnet stays");
  assert.ok(all.includes(`-A BERTH -p tcp -m tcp --dport 80 -j DNAT --to-destination ${C}:80`), 'kept endpoint re-added');
  assert.deepEqual(fw2.published('gone'), []);
  // the port of the dropped endpoint is free again, the kept one is not
  await fw2.publish(base, 'x', '172.18.0.9', [tcp(81)]);
  await assert.rejects(fw2.publish(base, 'y', '172.18.0.9', [tcp(80)]), /port is already allocated/);
  assert.equal(await iptables.apply([]), '');
});
