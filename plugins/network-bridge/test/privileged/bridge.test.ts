// The real bridge driver inside a network namespace this test makes (its "host"), so links,
// sysctls and iptables of the machine are untouched; a second namespace plays the sandbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIptables } from '@berth/iptables';
import { openNetlink, openNetlinkIn } from '@berth/netlink';
import { createNetns, deleteNetns, inNetns } from '@berth/native';
import type { DriverLogger } from '@berth/plugin-api';
import { createBridgeDriver, procFiles } from '@berth/network-bridge';

const skip: string | false = process.getuid?.() !== 0 ? 'needs root' : false;
const silent: DriverLogger = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silent };
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
const dir = `/run/berth-test/bridge-${tag}`;
const hostNs = `${dir}/host`;
const sandbox = `${dir}/sandbox`;
const NID = `${randomBytes(6).toString('hex')}${'1'.repeat(52)}`;
const EID = `${randomBytes(6).toString('hex')}${'2'.repeat(52)}`;

function inNs(ns: string, ...argv: string[]): string {
  return execFileSync('nsenter', [`--net=${ns}`, ...argv], { encoding: 'utf8' });
}
function inNsAsync(ns: string, ...argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile('nsenter', [`--net=${ns}`, ...argv], { encoding: 'utf8', timeout: 10_000 }, (err, out) => (err ? reject(err) : resolve(out))));
}
function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(prefix));
}

test('bridge driver in a fresh netns: network, endpoint, join, sandbox pings the gateway, a published port answers on 127.0.0.1, all removed, nothing left', { skip }, async () => {
  const hostNl = openNetlink();
  const hostLinksBefore = (await hostNl.links()).map((l) => l.name).sort();
  const stateDir = mkdtempSync(join(tmpdir(), 'bridge-priv-'));
  createNetns(hostNs);
  createNetns(sandbox);
  const nl = openNetlinkIn(hostNs, inNetns);
  const sb = openNetlinkIn(sandbox, inNetns);
  const server = { kill: () => undefined as unknown };
  /** Names of the links this test makes (looked for in the machine's namespace at the end). */
  const ours: string[] = [`br-${NID.slice(0, 12)}`];
  try {
    await nl.setLink('lo', { up: true });
    const deps = {
      stateDir,
      logger: silent,
      netlink: nl,
      iptables: createIptables({ netnsPath: hostNs }),
      proc: procFiles(hostNs),
      loadBrNetfilter: async () => undefined,
    };
    const driver = await createBridgeDriver(deps);
    await driver.createNetwork({
      NetworkID: NID,
      Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': { 'com.docker.network.driver.mtu': '1400' } },
      IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.123.0.0/24', Gateway: '10.123.0.1/24' }],
      IPv6Data: [],
    });
    const bridge = `br-${NID.slice(0, 12)}`;
    const br = (await nl.link(bridge))!;
    assert.deepEqual([br.kind, br.up, br.mtu], ['bridge', true, 1400]);
    assert.match(inNs(hostNs, 'ip', '-4', 'addr', 'show', bridge), /inet 10\.123\.0\.1\/24/);
    assert.equal(inNs(hostNs, 'cat', '/proc/sys/net/ipv4/ip_forward').trim(), '1');
    assert.match(inNs(hostNs, 'iptables', '-t', 'nat', '-S', 'POSTROUTING'), /-s 10\.123\.0\.0\/24 ! -o br-\w+ -j MASQUERADE/);

    const created = await driver.createEndpoint({ NetworkID: NID, EndpointID: EID, Interface: { Address: '10.123.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: {} });
    assert.deepEqual(created, { Interface: { MacAddress: '02:42:0a:7b:00:02' } });
    const joined = await driver.join({ NetworkID: NID, EndpointID: EID, SandboxKey: sandbox, Options: {} });
    assert.equal(joined.Gateway, '10.123.0.1');
    const src = joined.InterfaceName!.SrcName;
    ours.push(src);
    const hostPort = (await nl.links()).find((l) => l.masterIndex === br.index)!;
    assert.match(hostPort.name, /^veth[0-9a-f]{7}$/);
    ours.push(hostPort.name);
    assert.match(inNs(hostNs, 'ip', '-d', 'link', 'show', hostPort.name), /hairpin on/);
    assert.match(inNs(hostNs, 'bridge', 'link'), new RegExp(`${hostPort.name}.*master ${bridge}`));

    // The container end was born inside the sandbox (a live netns); the engine names it eth0,
    // gives it the address and the route.
    assert.equal(await nl.link(src), undefined);
    await sb.setLink(src, { name: 'eth0' });
    await sb.setLink('lo', { up: true });
    await sb.addAddress('eth0', '10.123.0.2/24');
    await sb.setLink('eth0', { up: true });
    await sb.addRoute({ dst: 'default', gateway: joined.Gateway!, dev: 'eth0' });
    const eth0 = (await sb.link('eth0'))!;
    assert.deepEqual([eth0.mac, eth0.mtu], ['02:42:0a:7b:00:02', 1400]);
    inNs(sandbox, 'busybox', 'ping', '-c1', '-W2', '10.123.0.1');

    // a published port: 127.0.0.1:18080 in the driver's namespace -> the sandbox's :80
    const srv = spawn('nsenter', [`--net=${sandbox}`, 'busybox', 'nc', '-ll', '-p', '80', '-e', 'echo', 'hello-from-sandbox'], { stdio: 'ignore' });
    server.kill = () => srv.kill();
    await driver.programExternalConnectivity({
      NetworkID: NID,
      EndpointID: EID,
      Options: { 'com.docker.network.portmap': [{ Proto: 6, IP: '10.123.0.2', Port: 80, HostIP: '', HostPort: 18080, HostPortEnd: 18080 }], 'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 80 }] },
    });
    assert.match(inNs(hostNs, 'iptables', '-t', 'nat', '-S', 'BERTH'), /--dport 18080 -j DNAT --to-destination 10\.123\.0\.2:80/);
    const info = await driver.endpointOperInfo({ NetworkID: NID, EndpointID: EID });
    assert.deepEqual(info.Value['com.docker.network.portmap'], [{ Proto: 6, IP: '10.123.0.2', Port: 80, HostIP: '0.0.0.0', HostPort: 18080, HostPortEnd: 18080 }]);
    let reply = '';
    for (let i = 0; i < 20 && !reply.includes('hello'); i++) {
      reply = await inNsAsync(hostNs, 'busybox', 'nc', '-w', '2', '127.0.0.1', '18080').catch(() => '');
      if (!reply.includes('hello')) await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(reply, /hello-from-sandbox/, 'DNAT from 127.0.0.1 reaches the sandbox');
    // hairpin: the container reaches its own published port through the gateway address; the
    // packet leaves and re-enters the same bridge port (hairpin mode) and is masqueraded back
    const hairpin = await inNsAsync(sandbox, 'busybox', 'nc', '-w', '2', '10.123.0.1', '18080').catch((e: Error) => e.message);
    assert.match(hairpin, /hello-from-sandbox/, 'hairpin NAT to its own published port');

    // a restarted driver knows its network and puts back a bridge that vanished
    await driver.revokeExternalConnectivity({ NetworkID: NID, EndpointID: EID });
    assert.doesNotMatch(inNs(hostNs, 'iptables', '-t', 'nat', '-S', 'BERTH'), /18080/);
    await driver.leave({ NetworkID: NID, EndpointID: EID });
    await sb.deleteLink('eth0'); // the engine removes the interface from the sandbox
    await driver.deleteEndpoint({ NetworkID: NID, EndpointID: EID });
    assert.equal(await nl.link(hostPort.name), undefined);
    await nl.deleteLink(bridge);
    const again = await createBridgeDriver(deps);
    assert.equal((await nl.link(bridge))?.up, true);
    assert.match(inNs(hostNs, 'ip', '-4', 'addr', 'show', bridge), /inet 10\.123\.0\.1\/24/);
    await assert.rejects(again.deleteNetwork({ NetworkID: 'unknown' }), { kind: 'NotFound' });
    await again.deleteNetwork({ NetworkID: NID });
    assert.deepEqual((await nl.links()).map((l) => l.name), ['lo']);
    assert.doesNotMatch(inNs(hostNs, 'iptables-save'), /10\.123\.0\.0|br-/);
  } finally {
    server.kill();
    nl.close();
    sb.close();
    deleteNetns(sandbox);
    deleteNetns(hostNs);
    rmSync(stateDir, { recursive: true, force: true });
    try {
      rmdirSync(dir);
    } catch {
      // the checks below say what is left
    }
  }
  assert.deepEqual(mountsUnder(dir), []);
  // Other programs (and tests) may add links to the machine's namespace meanwhile; none of ours may be there.
  const appeared = (await hostNl.links()).map((l) => l.name).filter((n) => ours.includes(n) && !hostLinksBefore.includes(n));
  assert.deepEqual(appeared, [], 'the machine’s own namespace was not touched');
  hostNl.close();
});

test('bridge driver in a fresh netns: containers of one network reach each other, not across networks, and not at all with icc=false', { skip }, async () => {
  const base = `/run/berth-test/bridge-iso-${tag}`;
  const host = `${base}/host`;
  const stateDir = mkdtempSync(join(tmpdir(), 'bridge-priv-'));
  const sandboxes: string[] = [];
  createNetns(host);
  const nl = openNetlinkIn(host, inNetns);
  try {
    const driver = await createBridgeDriver({
      stateDir,
      logger: silent,
      netlink: nl,
      iptables: createIptables({ netnsPath: host }),
      proc: procFiles(host),
      loadBrNetfilter: async () => undefined,
    });
    const nets = [
      { id: `a${randomBytes(6).toString('hex')}`.padEnd(64, '3'), net: '10.124.1', generic: {} },
      { id: `b${randomBytes(6).toString('hex')}`.padEnd(64, '4'), net: '10.124.2', generic: {} },
      { id: `c${randomBytes(6).toString('hex')}`.padEnd(64, '5'), net: '10.124.3', generic: { 'berth.bridge.icc': 'false' } },
    ];
    for (const n of nets) {
      await driver.createNetwork({
        NetworkID: n.id,
        Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': n.generic },
        IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: `${n.net}.0/24`, Gateway: `${n.net}.1/24` }],
        IPv6Data: [],
      });
    }
    /** One "container": an endpoint of network n with address .host, moved into its own sandbox. */
    const attach = async (n: (typeof nets)[number], hostByte: number): Promise<string> => {
      const sbPath = `${base}/sb${sandboxes.length}`;
      createNetns(sbPath);
      sandboxes.push(sbPath);
      const eid = randomBytes(32).toString('hex');
      await driver.createEndpoint({ NetworkID: n.id, EndpointID: eid, Interface: { Address: `${n.net}.${hostByte}/24`, AddressIPv6: '', MacAddress: '' }, Options: {} });
      const j = await driver.join({ NetworkID: n.id, EndpointID: eid, SandboxKey: sbPath, Options: {} });
      const sb = openNetlinkIn(sbPath, inNetns);
      try {
        await sb.setLink(j.InterfaceName!.SrcName, { name: 'eth0' });
        await sb.addAddress('eth0', `${n.net}.${hostByte}/24`);
        await sb.setLink('eth0', { up: true });
        await sb.addRoute({ dst: 'default', gateway: j.Gateway! });
      } finally {
        sb.close();
      }
      return sbPath;
    };
    const pings = async (from: string, to: string): Promise<boolean> =>
      inNsAsync(from, 'busybox', 'ping', '-c1', '-W1', to).then(
        () => true,
        () => false,
      );
    const a1 = await attach(nets[0]!, 2);
    await attach(nets[0]!, 3);
    await attach(nets[1]!, 2);
    const c1 = await attach(nets[2]!, 2);
    await attach(nets[2]!, 3);
    assert.equal(await pings(a1, '10.124.1.3'), true, 'same network: reachable');
    assert.equal(await pings(a1, '10.124.2.2'), false, 'other network: isolated');
    assert.equal(await pings(c1, '10.124.3.3'), false, 'icc=false: containers of the network cannot talk');
    assert.equal(await pings(c1, '10.124.3.1'), true, 'icc=false: the gateway still answers');
  } finally {
    nl.close();
    for (const s of sandboxes) deleteNetns(s);
    deleteNetns(host);
    rmSync(stateDir, { recursive: true, force: true });
    try {
      rmdirSync(base);
    } catch {
      // reported below
    }
  }
  assert.deepEqual(mountsUnder(base), []);
});
