import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createIptables, type Iptables } from '@berth/iptables';
import type { PortBinding } from '@berth/plugin-api';
import { createFirewall, procFiles, type Firewall, type FirewallNetwork } from '../../src/firewall/index.js';

/*
 * Three network namespaces made here: H (the "host": bridge, iptables, FORWARD policy DROP as
 * dockerd leaves it), C (a container on H's bridge with servers), O (a machine outside,
 * reaching H over a veth). The real host's rules and links are never touched.
 */
const tag = `${process.pid % 1000}${Math.random().toString(16).slice(2, 5)}`;
const nsH = `bfh${tag}`;
const nsC = `bfc${tag}`;
const nsO = `bfo${tag}`;
const bridge = `bt${tag}`;
const hPath = `/run/netns/${nsH}`;
const dir = mkdtempSync(join(tmpdir(), 'berth-fw-'));
const servers: ChildProcess[] = [];

const net: FirewallNetwork = { id: `n${tag}`, bridge, subnet: '10.77.0.0/24', gateway: '10.77.0.1', internal: false, icc: true, masquerade: true, hostIp: '0.0.0.0' };
const C = '10.77.0.2';

const silent = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child() { return silent; } };

function sh(...argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

const serverJs = `
const net = require('node:net'), dgram = require('node:dgram');
for (const a of process.argv.slice(2)) {
  const [proto, p] = a.split('/'); const port = Number(p);
  if (proto === 'tcp') net.createServer((s) => s.end('hello ' + port)).listen(port, '0.0.0.0');
  else { const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send('hello ' + port, r.port, r.address)); u.bind(port, '0.0.0.0'); }
}
setTimeout(() => console.log('ready'), 200);
`;
const clientJs = `
const net = require('node:net'), dgram = require('node:dgram');
const [proto, host, port] = process.argv.slice(2);
const done = (s) => { console.log(s); process.exit(0); };
setTimeout(() => done('timeout'), 1500);
if (proto === 'tcp') { let b = ''; const s = net.connect(Number(port), host); s.on('data', (d) => (b += d)); s.on('end', () => done(b)); s.on('error', (e) => done(e.code)); }
else { const u = dgram.createSocket('udp4'); u.on('message', (m) => done(String(m))); u.send('hi', Number(port), host); }
`;
const serverFile = join(dir, 'server.cjs');
const clientFile = join(dir, 'client.cjs');

async function startServer(ns: string, ports: string[]): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, serverFile, ...ports], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(child);
  await once(child.stdout!, 'data');
  return child;
}

function ask(ns: string, proto: 'tcp' | 'udp', host: string, port: number): string {
  return sh('ip', 'netns', 'exec', ns, process.execPath, clientFile, proto, host, String(port)).trim();
}

function rules(table: string): string[] {
  return sh('ip', 'netns', 'exec', nsH, 'iptables', '-t', table, '-S').split('\n').filter((l) => l !== '');
}

let ipt: Iptables;
let checks = 0;
function makeFirewall(): Firewall {
  return createFirewall({ iptables: ipt, logger: silent, stateDir: join(dir, 'state'), chainPrefix: `BT${tag}`, proc: procFiles(hPath) });
}

before(async () => {
  writeFileSync(serverFile, serverJs);
  writeFileSync(clientFile, clientJs);
  for (const ns of [nsH, nsC, nsO]) {
    sh('ip', 'netns', 'add', ns);
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  }
  sh('ip', '-n', nsH, 'link', 'add', bridge, 'type', 'bridge');
  sh('ip', '-n', nsH, 'addr', 'add', '10.77.0.1/24', 'dev', bridge);
  sh('ip', '-n', nsH, 'link', 'set', bridge, 'up');
  sh('ip', '-n', nsH, 'link', 'add', 'vc', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsC);
  sh('ip', '-n', nsH, 'link', 'set', 'vc', 'master', bridge, 'up');
  sh('ip', '-n', nsC, 'addr', 'add', `${C}/24`, 'dev', 'eth0');
  sh('ip', '-n', nsC, 'link', 'set', 'eth0', 'up');
  sh('ip', '-n', nsC, 'route', 'add', 'default', 'via', '10.77.0.1');
  sh('ip', '-n', nsH, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsO);
  sh('ip', '-n', nsH, 'addr', 'add', '192.0.2.1/24', 'dev', 'up0');
  sh('ip', '-n', nsH, 'link', 'set', 'up0', 'up');
  sh('ip', '-n', nsO, 'addr', 'add', '192.0.2.2/24', 'dev', 'eth0');
  sh('ip', '-n', nsO, 'link', 'set', 'eth0', 'up');
  sh('ip', 'netns', 'exec', nsH, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  // dockerd's leftovers on a host: FORWARD policy DROP and its own chains first in FORWARD
  sh('ip', 'netns', 'exec', nsH, 'iptables', '-P', 'FORWARD', 'DROP');
  sh('ip', 'netns', 'exec', nsH, 'iptables', '-N', 'DOCKER-USER');
  sh('ip', 'netns', 'exec', nsH, 'iptables', '-A', 'DOCKER-USER', '-j', 'RETURN');
  sh('ip', 'netns', 'exec', nsH, 'iptables', '-A', 'FORWARD', '-j', 'DOCKER-USER');
  await startServer(nsC, ['tcp/8080', 'tcp/8081', 'udp/41000', 'udp/41005', 'udp/41009', 'tcp/9000', 'tcp/9001']);
  const real = createIptables({ netnsPath: hPath });
  ipt = real;
  const exists = real.exists.bind(real);
  real.exists = async (...a) => {
    checks++;
    return exists(...a);
  };
});

after(() => {
  for (const s of servers) s.kill();
  for (const ns of [nsC, nsO, nsH]) execFileSync('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
  // other sessions may program the host's tables meanwhile: nothing of ours may be there
  const host = `${sh('iptables', '-S')}${sh('iptables', '-t', 'nat', '-S')}`;
  assert.deepEqual(host.split('\n').filter((l) => l.includes(tag)), [], 'no rule of this test in the host tables');
});

const P = `BT${tag}`;
const tcp = (port: number, hostPort = port, hostIp = ''): PortBinding => ({ Proto: 6, IP: '', Port: port, HostIP: hostIp, HostPort: hostPort, HostPortEnd: hostPort });

test('init and addNetwork install the v27 layout where FORWARD policy is DROP; a second run changes nothing', async () => {
  const fw = makeFirewall();
  await fw.init();
  await fw.addNetwork(net);
  const f = rules('filter');
  const forward = f.filter((l) => l.startsWith('-A FORWARD'));
  assert.deepEqual(forward.slice(0, 6), [
    `-A FORWARD -j ${P}-USER`,
    `-A FORWARD -j ${P}-ISOLATION-STAGE-1`,
    `-A FORWARD -o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A FORWARD -o ${bridge} -j ${P}`,
    `-A FORWARD -i ${bridge} ! -o ${bridge} -j ACCEPT`,
    `-A FORWARD -i ${bridge} -o ${bridge} -j ACCEPT`,
  ]);
  assert.ok(forward.includes('-A FORWARD -j DOCKER-USER'), "dockerd's jump kept");
  assert.ok(f.includes('-P FORWARD DROP'));
  assert.ok(f.includes(`-A ${P}-ISOLATION-STAGE-1 -i ${bridge} ! -o ${bridge} -j ${P}-ISOLATION-STAGE-2`));
  assert.ok(f.includes(`-A ${P}-ISOLATION-STAGE-2 -o ${bridge} -j DROP`));
  const n = rules('nat');
  assert.ok(n.includes(`-A PREROUTING -m addrtype --dst-type LOCAL -j ${P}`));
  assert.ok(n.includes(`-A OUTPUT -m addrtype --dst-type LOCAL -j ${P}`));
  assert.ok(n.includes(`-A POSTROUTING -s 10.77.0.0/24 ! -o ${bridge} -j MASQUERADE`));
  assert.ok(n.includes(`-A POSTROUTING -s 127.0.0.0/8 -o ${bridge} -j MASQUERADE`));
  assert.equal(sh('ip', 'netns', 'exec', nsH, 'cat', `/proc/sys/net/ipv4/conf/${bridge}/route_localnet`).trim(), '1');
  assert.equal(sh('ip', 'netns', 'exec', nsH, 'cat', '/proc/sys/net/ipv4/conf/all/route_localnet').trim(), '0');
  checks = 0;
  const before = [rules('filter'), rules('nat')];
  await fw.init();
  await fw.addNetwork(net);
  assert.deepEqual([rules('filter'), rules('nat')], before);
  assert.equal(checks, 0, 'every rule found by its -S text (written canonically)');
});

test('a published port answers on 127.0.0.1, on the host addresses, and from outside through FORWARD', async () => {
  const fw = makeFirewall();
  const m = await fw.publish(net, 'ep1', C, [tcp(8080)]);
  assert.deepEqual(m, [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, hostPortEnd: 8080, containerIp: C, containerPort: 8080, containerPortEnd: 8080 }]);
  assert.ok(rules('nat').includes(`-A ${P} -p tcp -m tcp --dport 8080 -j DNAT --to-destination ${C}:8080`));
  assert.equal(ask(nsH, 'tcp', '127.0.0.1', 8080), 'hello 8080');
  assert.equal(ask(nsH, 'tcp', '192.0.2.1', 8080), 'hello 8080');
  assert.equal(ask(nsH, 'tcp', '10.77.0.1', 8080), 'hello 8080');
  assert.equal(ask(nsO, 'tcp', '192.0.2.1', 8080), 'hello 8080');
  assert.equal(ask(nsC, 'tcp', '10.77.0.2', 8080), 'hello 8080'); // direct, for reference
  assert.deepEqual(fw.published('ep1'), m);
  checks = 0;
  await fw.unpublish(net, 'ep1');
  assert.equal(checks, 0);
  assert.ok(!rules('nat').some((l) => l.includes('8080')));
  assert.ok(!rules('filter').some((l) => l.includes('8080')));
  assert.equal(ask(nsH, 'tcp', '127.0.0.1', 8080), 'ECONNREFUSED');
  assert.deepEqual(fw.published('ep1'), []);
});

test('ranges: same ports as one rule, shifted ports keep their offset, udp range from outside, host range picks the first free', async () => {
  const fw = makeFirewall();
  const udp: PortBinding[] = [];
  for (let p = 41000; p <= 41009; p++) udp.push({ Proto: 17, IP: '', Port: p, HostIP: '', HostPort: p, HostPortEnd: p });
  const m = await fw.publish(net, 'ep2', C, [...udp, tcp(9000, 42000), tcp(9001, 42001), { Proto: 6, IP: '', Port: 8081, HostIP: '127.0.0.1', HostPort: 43000, HostPortEnd: 43010 }]);
  assert.deepEqual(
    m.map((x) => `${x.proto} ${x.hostIp}:${x.hostPort}-${x.hostPortEnd} ${x.containerPort}-${x.containerPortEnd}`),
    ['tcp 0.0.0.0:42000-42001 9000-9001', 'udp 0.0.0.0:41000-41009 41000-41009', 'tcp 127.0.0.1:43000-43000 8081-8081'],
  );
  const nat = rules('nat');
  assert.ok(nat.includes(`-A ${P} -p udp -m udp --dport 41000:41009 -j DNAT --to-destination ${C}:41000-41009`));
  assert.ok(nat.includes(`-A ${P} -p tcp -m tcp --dport 42000:42001 -j DNAT --to-destination ${C}:9000-9001/42000`));
  assert.ok(nat.includes(`-A ${P} -d 127.0.0.1/32 -p tcp -m tcp --dport 43000 -j DNAT --to-destination ${C}:8081`));
  assert.equal(ask(nsO, 'udp', '192.0.2.1', 41005), 'hello 41005');
  assert.equal(ask(nsH, 'udp', '127.0.0.1', 41009), 'hello 41009');
  assert.equal(ask(nsO, 'tcp', '192.0.2.1', 42001), 'hello 9001');
  assert.equal(ask(nsH, 'tcp', '127.0.0.1', 42000), 'hello 9000');
  assert.equal(ask(nsH, 'tcp', '127.0.0.1', 43000), 'hello 8081');
  assert.equal(ask(nsO, 'tcp', '192.0.2.1', 43000), 'ECONNREFUSED'); // bound to 127.0.0.1 only: no DNAT, nothing listens
  await fw.unpublish(net, 'ep2');
});

test('a port another program listens on, or one Berth holds, is 409 port is already allocated and installs nothing', async () => {
  const fw = makeFirewall();
  await startServer(nsH, ['tcp/7000']);
  const before = [rules('filter'), rules('nat')];
  await assert.rejects(fw.publish(net, 'ep3', C, [tcp(8080), tcp(7000)]), (e: Error & { code?: string; kind?: string }) => {
    assert.equal(e.code, 'BERTH_PORT_ALLOCATED');
    assert.equal(e.kind, 'Conflict');
    assert.equal(e.message, 'Bind for 0.0.0.0:7000 failed: port is already allocated');
    return true;
  });
  assert.deepEqual([rules('filter'), rules('nat')], before);
  assert.deepEqual(fw.published('ep3'), []);
  await fw.publish(net, 'ep3', C, [tcp(8080)]);
  await assert.rejects(fw.publish(net, 'ep4', C, [tcp(8080, 8080, '127.0.0.1')]), /Bind for 127.0.0.1:8080 failed: port is already allocated/);
  await fw.unpublish(net, 'ep3');
  assert.deepEqual([rules('filter'), rules('nat')], before);
});

test('10,000-port UDP range: publish and unpublish well under a second, a handful of rules', async () => {
  const fw = makeFirewall();
  const b: PortBinding[] = [];
  for (let p = 50000; p < 60000; p++) b.push({ Proto: 17, IP: '', Port: p, HostIP: '', HostPort: p, HostPortEnd: p });
  const before = rules('nat').length + rules('filter').length;
  let t = performance.now();
  const m = await fw.publish(net, 'ep5', C, b);
  const pub = performance.now() - t;
  assert.equal(m.length, 1);
  assert.equal(rules('nat').length + rules('filter').length - before, 3);
  t = performance.now();
  await fw.unpublish(net, 'ep5');
  const unpub = performance.now() - t;
  console.log(`# 10,000-port udp range: publish ${pub.toFixed(1)} ms, unpublish ${unpub.toFixed(1)} ms`);
  assert.ok(pub < 1000 && unpub < 1000, `publish ${pub} ms, unpublish ${unpub} ms`);
});

test('reconcile after a crash: stale endpoint and stray rules in our chains go, kept ones stay', async () => {
  let fw = makeFirewall();
  await fw.publish(net, 'keep', C, [tcp(8080)]);
  await fw.publish(net, 'stale', C, [tcp(8081)]);
  sh('ip', 'netns', 'exec', nsH, 'iptables', '-t', 'nat', '-A', P, '-p', 'tcp', '-m', 'tcp', '--dport', '1234', '-j', 'DNAT', '--to-destination', '10.77.0.9:1234');
  fw = makeFirewall(); // a restarted daemon: state from disk
  assert.equal(fw.published('stale').length, 1);
  await fw.reconcile([net], [{ networkId: net.id, endpointId: 'keep', containerIp: C, mappings: fw.published('keep') }]);
  const nat = rules('nat');
  assert.ok(!nat.some((l) => l.includes('8081') || l.includes('1234')));
  assert.equal(ask(nsH, 'tcp', '127.0.0.1', 8080), 'hello 8080');
  assert.equal(ask(nsH, 'tcp', '127.0.0.1', 8081), 'ECONNREFUSED');
  assert.deepEqual(fw.published('stale'), []);
  await fw.unpublish(net, 'keep');
});

test('removeNetwork removes every rule naming the bridge (ports of its endpoints too), chains stay', async () => {
  const fw = makeFirewall();
  await fw.publish(net, 'ep6', C, [tcp(8080)]);
  await fw.removeNetwork(net);
  const all = [...rules('filter'), ...rules('nat')];
  assert.deepEqual(all.filter((l) => l.includes(bridge) || l.includes(C)), []);
  assert.ok(all.includes(`-N ${P}`));
  assert.deepEqual(fw.published('ep6'), []);
});
