import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

/*
 * userlandProxy: true. The proxy's sockets live in the namespace of the process that runs the
 * firewall, so here the firewall runs in a child process started inside the "host" namespace
 * H (its own iptables, FORWARD DROP); C is a container on H's bridge, O a machine outside.
 */
const tag = `${process.pid % 1000}${Math.random().toString(16).slice(2, 5)}`;
const nsH = `bph${tag}`;
const nsC = `bpc${tag}`;
const nsO = `bpo${tag}`;
const bridge = `bp${tag}`;
const dir = mkdtempSync(join(tmpdir(), 'berth-fwp-'));
const children: ChildProcess[] = [];
const firewallJs = new URL('../../src/firewall/index.js', import.meta.url).href;
const iptablesJs = import.meta.resolve('@berth/iptables');

function sh(...argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

const serverJs = `
const net = require('node:net');
net.createServer((s) => s.end('hello from ' + s.remoteAddress)).listen(80, '0.0.0.0');
setTimeout(() => console.log('ready'), 200);
`;
const clientJs = `
const net = require('node:net');
const [host, port] = process.argv.slice(2);
const done = (s) => { console.log(s); process.exit(0); };
setTimeout(() => done('timeout'), 1000);
let b = ''; const s = net.connect(Number(port), host); s.on('data', (d) => (b += d)); s.on('end', () => done(b)); s.on('error', (e) => done(e.code));
`;
// the daemon side: publish on start, unpublish and remove the network when stdin closes
const daemonJs = `
import { createFirewall } from ${JSON.stringify(firewallJs)};
import { createIptables } from ${JSON.stringify(iptablesJs)};
const silent = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child() { return silent; } };
const net = { id: 'n', bridge: ${JSON.stringify(bridge)}, subnet: '10.82.0.0/24', gateway: '10.82.0.1', internal: false, icc: true, masquerade: true, hostIp: '0.0.0.0' };
const fw = createFirewall({ iptables: createIptables(), logger: silent, stateDir: ${JSON.stringify(join(dir, 'state'))}, userlandProxy: true });
await fw.init();
await fw.addNetwork(net);
const m = await fw.publish(net, 'ep', '10.82.0.2', [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }]);
console.log(JSON.stringify(m));
process.stdin.resume();
process.stdin.on('end', async () => {
  await fw.unpublish(net, 'ep');
  await fw.removeNetwork(net);
  console.log('done');
  process.exit(0);
});
`;

function ask(ns: string, host: string, port: number): string {
  return sh('ip', 'netns', 'exec', ns, process.execPath, join(dir, 'client.cjs'), host, String(port)).trim();
}

let daemon: ChildProcess;

before(async () => {
  writeFileSync(join(dir, 'server.cjs'), serverJs);
  writeFileSync(join(dir, 'client.cjs'), clientJs);
  writeFileSync(join(dir, 'daemon.mjs'), daemonJs);
  for (const ns of [nsH, nsC, nsO]) {
    sh('ip', 'netns', 'add', ns);
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  }
  sh('ip', '-n', nsH, 'link', 'add', bridge, 'type', 'bridge');
  sh('ip', '-n', nsH, 'addr', 'add', '10.82.0.1/24', 'dev', bridge);
  sh('ip', '-n', nsH, 'link', 'set', bridge, 'up');
  sh('ip', '-n', nsH, 'link', 'add', 'vc', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsC);
  sh('ip', '-n', nsH, 'link', 'set', 'vc', 'master', bridge, 'up');
  sh('ip', '-n', nsC, 'addr', 'add', '10.82.0.2/24', 'dev', 'eth0');
  sh('ip', '-n', nsC, 'link', 'set', 'eth0', 'up');
  sh('ip', '-n', nsC, 'route', 'add', 'default', 'via', '10.82.0.1');
  sh('ip', '-n', nsH, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsO);
  sh('ip', '-n', nsH, 'addr', 'add', '192.0.2.1/24', 'dev', 'up0');
  sh('ip', '-n', nsH, 'link', 'set', 'up0', 'up');
  sh('ip', '-n', nsO, 'addr', 'add', '192.0.2.2/24', 'dev', 'eth0');
  sh('ip', '-n', nsO, 'link', 'set', 'eth0', 'up');
  sh('ip', 'netns', 'exec', nsH, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  sh('ip', 'netns', 'exec', nsH, 'iptables', '-P', 'FORWARD', 'DROP');
  const server = spawn('ip', ['netns', 'exec', nsC, process.execPath, join(dir, 'server.cjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(server);
  await once(server.stdout!, 'data');
  daemon = spawn('ip', ['netns', 'exec', nsH, process.execPath, join(dir, 'daemon.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(daemon);
  const [line] = (await once(daemon.stdout!, 'data')) as [Buffer];
  assert.match(String(line), /"hostPort":8080/);
});

after(() => {
  for (const c of children) c.kill();
  for (const ns of [nsC, nsO, nsH]) execFileSync('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
  const host = `${sh('iptables', '-S')}${sh('iptables', '-t', 'nat', '-S')}`;
  assert.deepEqual(host.split('\n').filter((l) => l.includes(tag)), [], 'no rule of this test in the host tables');
});

test('userland proxy: loopback goes through the proxy, outside through DNAT, route_localnet stays off', () => {
  const nat = sh('ip', 'netns', 'exec', nsH, 'iptables', '-t', 'nat', '-S');
  assert.ok(nat.includes('-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BERTH'));
  assert.ok(nat.includes(`-A BERTH ! -i ${bridge} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.82.0.2:80`));
  assert.ok(nat.includes(`-A BERTH -i ${bridge} -j RETURN`));
  assert.equal(sh('ip', 'netns', 'exec', nsH, 'cat', `/proc/sys/net/ipv4/conf/${bridge}/route_localnet`).trim(), '0');
  // the proxy connects from the bridge address; DNAT keeps the outside client's address
  assert.equal(ask(nsH, '127.0.0.1', 8080), 'hello from 10.82.0.1');
  assert.equal(ask(nsO, '192.0.2.1', 8080), 'hello from 192.0.2.2');
  // the container itself through the host address: not DNATed (RETURN), the proxy carries it
  assert.equal(ask(nsC, '192.0.2.1', 8080), 'hello from 10.82.0.1');
});

test('unpublish closes the proxy and removes the rules', async () => {
  daemon.stdin!.end();
  const [line] = (await once(daemon.stdout!, 'data')) as [Buffer];
  assert.equal(String(line).trim(), 'done');
  assert.equal(ask(nsH, '127.0.0.1', 8080), 'ECONNREFUSED');
  const all = sh('ip', 'netns', 'exec', nsH, 'iptables-save');
  assert.ok(!all.includes(bridge) && !all.includes('10.82.0.2'));
});
