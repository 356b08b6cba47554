import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createIptables } from '@berth/iptables';
import { createFirewall, procFiles, type Firewall, type FirewallNetwork } from '../../src/firewall/index.js';

/*
 * Isolation, icc and --internal in the kernel: a "host" namespace H with four bridges
 * (A, B, E with icc off, D internal), containers as namespaces on them, and O outside.
 * br_netfilter's per-namespace bridge-nf-call-iptables is 1, so bridged traffic meets FORWARD
 * (policy DROP here). The real host is never touched.
 */
const tag = `${process.pid % 1000}${Math.random().toString(16).slice(2, 5)}`;
const nsH = `bih${tag}`;
const nsO = `bio${tag}`;
const hPath = `/run/netns/${nsH}`;
const dir = mkdtempSync(join(tmpdir(), 'berth-fwi-'));
const namespaces: string[] = [];
const servers: ChildProcess[] = [];
const silent = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child() { return silent; } };

function mk(id: string, octet: number, opts: Partial<FirewallNetwork> = {}): FirewallNetwork {
  return { id, bridge: `b${id}${tag}`, subnet: `10.${octet}.0.0/24`, gateway: `10.${octet}.0.1`, internal: false, icc: true, masquerade: true, hostIp: '0.0.0.0', ...opts };
}
const A = mk('a', 78);
const B = mk('b', 79);
const E = mk('e', 81, { icc: false });
const D = mk('d', 80, { internal: true });

const serverJs = `
const net = require('node:net');
net.createServer((s) => s.end('hello from ' + s.remoteAddress)).listen(Number(process.argv[2]), '0.0.0.0');
setTimeout(() => console.log('ready'), 200);
`;
const clientJs = `
const net = require('node:net');
const [host, port] = process.argv.slice(2);
const done = (s) => { console.log(s); process.exit(0); };
setTimeout(() => done('timeout'), 1000);
let b = ''; const s = net.connect(Number(port), host); s.on('data', (d) => (b += d)); s.on('end', () => done(b)); s.on('error', (e) => done(e.code));
`;
const serverFile = join(dir, 'server.cjs');
const clientFile = join(dir, 'client.cjs');

function sh(...argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

function container(name: string, n: FirewallNetwork, host: number): { ns: string; ip: string } {
  const ns = `bi${name}${tag}`;
  const ip = n.subnet.replace('0/24', String(host));
  sh('ip', 'netns', 'add', ns);
  namespaces.push(ns);
  sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  const veth = `v${name}${tag}`;
  sh('ip', '-n', nsH, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  sh('ip', '-n', nsH, 'link', 'set', veth, 'master', n.bridge, 'up');
  sh('ip', '-n', nsH, 'link', 'set', veth, 'type', 'bridge_slave', 'hairpin', 'on'); // as the driver does without a proxy
  sh('ip', '-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
  sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up');
  if (!n.internal) sh('ip', '-n', ns, 'route', 'add', 'default', 'via', n.gateway);
  return { ns, ip };
}

async function serve(ns: string, port: number): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, serverFile, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(child);
  await once(child.stdout!, 'data');
}

function ask(ns: string, host: string, port: number): string {
  return sh('ip', 'netns', 'exec', ns, process.execPath, clientFile, host, String(port)).trim();
}

let fw: Firewall;
let a1: { ns: string; ip: string }, a2: { ns: string; ip: string }, b1: { ns: string; ip: string };
let e1: { ns: string; ip: string }, e2: { ns: string; ip: string }, d1: { ns: string; ip: string }, d2: { ns: string; ip: string };

before(async () => {
  writeFileSync(serverFile, serverJs);
  writeFileSync(clientFile, clientJs);
  for (const ns of [nsH, nsO]) {
    sh('ip', 'netns', 'add', ns);
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  }
  sh('ip', '-n', nsH, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsO);
  sh('ip', '-n', nsH, 'addr', 'add', '192.0.2.1/24', 'dev', 'up0');
  sh('ip', '-n', nsH, 'link', 'set', 'up0', 'up');
  sh('ip', '-n', nsO, 'addr', 'add', '192.0.2.2/24', 'dev', 'eth0');
  sh('ip', '-n', nsO, 'link', 'set', 'eth0', 'up');
  sh('ip', 'netns', 'exec', nsH, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  sh('ip', 'netns', 'exec', nsH, 'iptables', '-P', 'FORWARD', 'DROP');
  assert.equal(sh('ip', 'netns', 'exec', nsH, 'cat', '/proc/sys/net/bridge/bridge-nf-call-iptables').trim(), '1');
  for (const n of [A, B, E, D]) {
    sh('ip', '-n', nsH, 'link', 'add', n.bridge, 'type', 'bridge');
    sh('ip', '-n', nsH, 'addr', 'add', `${n.gateway}/24`, 'dev', n.bridge);
    sh('ip', '-n', nsH, 'link', 'set', n.bridge, 'up');
  }
  a1 = container('a1', A, 2);
  a2 = container('a2', A, 3);
  b1 = container('b1', B, 2);
  e1 = container('e1', E, 2);
  e2 = container('e2', E, 3);
  d1 = container('d1', D, 2);
  d2 = container('d2', D, 3);
  await Promise.all([serve(a1.ns, 80), serve(e1.ns, 80), serve(d1.ns, 80), serve(nsO, 80)]);
  fw = createFirewall({ iptables: createIptables({ netnsPath: hPath }), logger: silent, stateDir: join(dir, 'state'), proc: procFiles(hPath) });
  await fw.init();
  for (const n of [A, B, E, D]) await fw.addNetwork(n);
});

after(() => {
  for (const s of servers) s.kill();
  for (const ns of [...namespaces, nsO, nsH]) execFileSync('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
  // other sessions may program the host's tables meanwhile: nothing of ours may be there
  const host = `${sh('iptables', '-S')}${sh('iptables', '-t', 'nat', '-S')}`;
  assert.deepEqual(host.split('\n').filter((l) => l.includes(tag)), [], 'no rule of this test in the host tables');
});

test('containers on one network reach each other (icc on); across networks they do not', () => {
  assert.equal(ask(a2.ns, a1.ip, 80), `hello from ${a2.ip}`);
  assert.equal(ask(b1.ns, a1.ip, 80), 'timeout');
});

test('outbound traffic is masqueraded to the host address where FORWARD policy is DROP', () => {
  assert.equal(ask(a2.ns, '192.0.2.2', 80), 'hello from 192.0.2.1');
  assert.equal(ask(b1.ns, '192.0.2.2', 80), 'hello from 192.0.2.1');
});

test('icc off: containers on the same bridge cannot talk; they still reach the outside', () => {
  assert.equal(ask(e2.ns, e1.ip, 80), 'timeout');
  assert.equal(ask(e2.ns, '192.0.2.2', 80), 'hello from 192.0.2.1');
});

test('internal: members talk to each other, nothing leaves, other networks cannot get in', () => {
  assert.equal(ask(d2.ns, d1.ip, 80), `hello from ${d2.ip}`);
  assert.equal(sh('ip', 'netns', 'exec', d2.ns, 'ip', 'route', 'add', 'default', 'via', D.gateway), ''); // even with a route out
  assert.equal(ask(d2.ns, '192.0.2.2', 80), 'timeout');
  assert.equal(ask(a2.ns, d1.ip, 80), 'timeout');
});

test('published port: a sibling and the container itself reach it through the host address (hairpin NAT)', async () => {
  await fw.publish(A, 'p1', a1.ip, [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }]);
  assert.match(ask(a2.ns, '192.0.2.1', 8080), /^hello from /);
  assert.match(ask(a1.ns, '192.0.2.1', 8080), /^hello from /);
  // from another Berth network the DNATed packet meets the isolation chains and is dropped,
  // as in Docker v27 without its userland proxy (the proxy would carry it from the host)
  assert.equal(ask(b1.ns, '192.0.2.1', 8080), 'timeout');
  assert.equal(ask(nsO, '192.0.2.1', 8080), 'hello from 192.0.2.2'); // the client's address is kept from outside
  await fw.unpublish(A, 'p1');
  assert.equal(ask(nsO, '192.0.2.1', 8080), 'ECONNREFUSED');
});

test('removing a network opens nothing and leaves the other networks working', async () => {
  await fw.removeNetwork(B);
  assert.equal(ask(b1.ns, '192.0.2.2', 80), 'timeout'); // no FORWARD accept any more (policy DROP)
  assert.equal(ask(a2.ns, '192.0.2.2', 80), 'hello from 192.0.2.1');
  assert.equal(ask(a2.ns, a1.ip, 80), `hello from ${a2.ip}`);
});
