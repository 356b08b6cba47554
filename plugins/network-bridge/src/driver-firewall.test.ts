// The driver with the real Firewall over the recording iptables fake: what one network, one
// endpoint and one published port put into the tables, and that deleting takes it all out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeIptables } from '@berth/iptables/testing';
import { FakeNetworkKernel } from '@berth/netlink/testing';
import type { DriverLogger } from '@berth/plugin-api';
import { createBridgeDriver } from './index.js';
import type { ProcFiles } from './firewall/types.js';

const silent: DriverLogger = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silent };

function memProc(): ProcFiles & { files: Map<string, string> } {
  const files = new Map<string, string>([
    ['/proc/sys/net/ipv4/ip_forward', '0\n'],
    ['/proc/sys/net/ipv4/ip_local_port_range', '32768\t60999\n'],
    ['/proc/sys/net/bridge/bridge-nf-call-iptables', '0\n'],
  ]);
  return {
    files,
    read: async (p) => {
      const v = files.get(p);
      if (v === undefined) {
        if (p.startsWith('/proc/net/')) return 'header\n';
        throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
      }
      return v;
    },
    write: async (p, d) => void files.set(p, d),
  };
}

test('driver + real firewall: network rules, a published port as DNAT to the endpoint, all gone after delete', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bridge-fw-unit-'));
  try {
    const kernel = new FakeNetworkKernel();
    const iptables = new FakeIptables();
    const proc = memProc();
    const driver = await createBridgeDriver({ stateDir: dir, logger: silent, netlink: kernel.netlink(), iptables, proc, loadBrNetfilter: async () => undefined });
    const NID = 'abcdefabcdef' + '0'.repeat(52);
    const EID = 'fedcbafedcba' + '1'.repeat(52);
    await driver.createNetwork({
      NetworkID: NID,
      Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '172.31.0.0/16', Gateway: '172.31.0.1/16' }],
      IPv6Data: [],
    });
    assert.equal(proc.files.get('/proc/sys/net/ipv4/ip_forward'), '1');
    assert.equal(proc.files.get('/proc/sys/net/bridge/bridge-nf-call-iptables'), '1');
    const nat = async () => (await iptables.list('nat')).join('\n');
    assert.match(await nat(), /-A POSTROUTING -s 172\.31\.0\.0\/16 ! -o br-abcdefabcdef -j MASQUERADE/);
    await driver.createEndpoint({ NetworkID: NID, EndpointID: EID, Interface: { Address: '172.31.0.2/16', AddressIPv6: '', MacAddress: '' }, Options: {} });
    await driver.programExternalConnectivity({
      NetworkID: NID,
      EndpointID: EID,
      Options: { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 6379, HostIP: '', HostPort: 6379, HostPortEnd: 6379 }] },
    });
    assert.match(await nat(), /--dport 6379 -j DNAT --to-destination 172\.31\.0\.2:6379/);
    const info = await driver.endpointOperInfo({ NetworkID: NID, EndpointID: EID });
    assert.deepEqual(info.Value['com.docker.network.portmap'], [{ Proto: 6, IP: '172.31.0.2', Port: 6379, HostIP: '0.0.0.0', HostPort: 6379, HostPortEnd: 6379 }]);
    await driver.deleteEndpoint({ NetworkID: NID, EndpointID: EID });
    assert.doesNotMatch(await nat(), /6379/);
    await driver.deleteNetwork({ NetworkID: NID });
    const all = `${await nat()}\n${(await iptables.list('filter')).join('\n')}`;
    assert.doesNotMatch(all, /172\.31|br-abcdefabcdef/);
    assert.deepEqual(kernel.snapshot().links.map((l) => l.name), ['lo']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
