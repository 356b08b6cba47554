// The descriptor with its defaults (netlink and iptables of "its own" namespace, /proc,
// modprobe): run in a child process started in a fresh network namespace (`unshare --net`),
// so what it programs is only there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const script = `
import { execFileSync } from 'node:child_process';
import { bridgeDriver } from '@berth/network-bridge';
const log = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child() { return log; } };
const sh = (...a) => execFileSync(a[0], a.slice(1), { encoding: 'utf8' });
const d = await bridgeDriver.create({ stateDir: process.env.STATE_DIR, logger: log });
if ('skip' in d) throw new Error('skipped: ' + d.skip);
const nid = 'd'.repeat(64), eid = 'e'.repeat(64);
await d.createNetwork({ NetworkID: nid, Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
  IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.125.0.0/24', Gateway: '10.125.0.1/24' }], IPv6Data: [] });
await d.createEndpoint({ NetworkID: nid, EndpointID: eid, Interface: { Address: '10.125.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: {} });
await d.join({ NetworkID: nid, EndpointID: eid, SandboxKey: '/run/berth/netns/not-a-netns', Options: {} });
const out = { links: sh('ip', '-br', 'link'), nat: sh('iptables', '-t', 'nat', '-S'), fwd: sh('cat', '/proc/sys/net/ipv4/ip_forward').trim() };
await d.deleteEndpoint({ NetworkID: nid, EndpointID: eid });
await d.deleteNetwork({ NetworkID: nid });
out.after = sh('ip', '-br', 'link');
d.close();
console.log(JSON.stringify(out));
`;

test('bridgeDriver.create with its defaults works in the namespace it runs in', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'bridge-desc-'));
  try {
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile('unshare', ['--net', process.execPath, '--input-type=module', '-e', script], { cwd: join(import.meta.dirname, '..', '..', '..'), env: { ...process.env, STATE_DIR: stateDir }, timeout: 30_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
      ),
    );
    const out = JSON.parse(stdout) as { links: string; nat: string; fwd: string; after: string };
    assert.match(out.links, /^br-dddddddddddd\s.*<[^>]*\bUP\b/m); // admin up (no carrier without a running peer)
    assert.match(out.links, /^veth[0-9a-f]{7}@vethc[0-9a-f]{7}\s.*<[^>]*\bUP\b/m);
    assert.match(out.links, /^vethc[0-9a-f]{7}@veth[0-9a-f]{7}\s+\S+\s+02:42:0a:7d:00:02/m);
    assert.match(out.nat, /-A POSTROUTING -s 10\.125\.0\.0\/24 ! -o br-dddddddddddd -j MASQUERADE/);
    assert.equal(out.fwd, '1');
    assert.doesNotMatch(out.after, /br-|veth/);
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});
