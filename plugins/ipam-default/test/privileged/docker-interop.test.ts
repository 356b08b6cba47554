/**
 * Interop: Berth's default IPAM and a network driver, served with Berth's SDK in
 * /run/docker/plugins, used by a real dockerd (the reference one at /run/docker-ref.sock;
 * skipped when it is not reachable). dockerd finds them by name, activates them, and creates
 * and removes networks through them; no container is started and no kernel object is made
 * (the network driver is the in-memory fake).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { serveIpamPlugin, serveNetworkPlugin, type PluginServer } from '@berth/plugin';
import { FakeNetworkDriver } from '@berth/plugin-testkit';
import { DefaultIpam } from '@berth/ipam-default';

const DOCKER = process.env.BERTH_DOCKER_CLI ?? '/usr/local/bin/docker';
const REF_SOCK = process.env.BERTH_REF_DOCKER_SOCK ?? '/run/docker-ref.sock';
const isRoot = process.getuid?.() === 0;

function docker(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(DOCKER, ['-H', `unix://${REF_SOCK}`, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });
}

async function reachable(): Promise<boolean> {
  if (!isRoot || !existsSync(REF_SOCK) || !existsSync(DOCKER)) return false;
  return (await docker(['version', '--format', '{{.Server.Version}}'])).code === 0;
}

const skip = !(await reachable()) && `reference dockerd not reachable at ${REF_SOCK} (or not root)`;
const tag = `${process.pid % 10000}${randomBytes(3).toString('hex')}`;
const ipamName = `berth-ipam-${tag}`;
const netName = `berth-net-${tag}`;

describe('a Berth-served IPAM and network driver under dockerd', { skip }, () => {
  const ipam = new DefaultIpam();
  const net = new FakeNetworkDriver(netName);
  const servers: PluginServer[] = [];
  const networks: string[] = [];

  before(async () => {
    servers.push(await serveIpamPlugin(ipam, { name: ipamName, dirs: ['/run/docker/plugins'] }));
    servers.push(await serveNetworkPlugin(net, { name: netName, dirs: ['/run/docker/plugins'] }));
  });

  after(async () => {
    for (const n of networks) await docker(['network', 'rm', n]);
    for (const s of servers) await s.close();
  });

  test('network create with --subnet/--ip-range/--gateway: dockerd takes the pool and gateway from our IPAM', async () => {
    const name = `bnet-${tag}-a`;
    const r = await docker(['network', 'create', '-d', netName, '--ipam-driver', ipamName, '--subnet', '10.251.0.0/24', '--ip-range', '10.251.0.128/25', '--gateway', '10.251.0.1', name]);
    assert.equal(r.code, 0, r.stderr);
    networks.push(name);
    const inspect = JSON.parse((await docker(['network', 'inspect', name])).stdout) as { Driver: string; IPAM: { Driver: string; Config: { Subnet: string; IPRange?: string; Gateway: string }[] } }[];
    assert.equal(inspect[0]!.Driver, netName);
    assert.equal(inspect[0]!.IPAM.Driver, ipamName);
    assert.deepEqual(inspect[0]!.IPAM.Config, [{ Subnet: '10.251.0.0/24', IPRange: '10.251.0.128/25', Gateway: '10.251.0.1' }]);
    assert.deepEqual(ipam.pools(), [{ id: 'LocalDefault/10.251.0.0/24/10.251.0.128/25', pool: '10.251.0.0/24', subPool: '10.251.0.128/25', allocated: ['10.251.0.1'] }]);
    assert.deepEqual(net.calls.filter((c) => c !== 'GetCapabilities'), ['CreateNetwork']);

    // Our 403 reaches the docker CLI with Docker's words.
    const dup = await docker(['network', 'create', '-d', netName, '--ipam-driver', ipamName, '--subnet', '10.251.0.0/25', `bnet-${tag}-dup`]);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /Pool overlaps with other one on this address space/);

    const rm = await docker(['network', 'rm', name]);
    assert.equal(rm.code, 0, rm.stderr);
    networks.splice(networks.indexOf(name), 1);
    assert.deepEqual(ipam.pools(), []);
    assert.ok(net.calls.includes('DeleteNetwork'));
  });

  test('network create without --subnet: a default pool that overlaps no host route (dockerd asks again)', async () => {
    const name = `bnet-${tag}-b`;
    const r = await docker(['network', 'create', '-d', netName, '--ipam-driver', ipamName, name]);
    assert.equal(r.code, 0, r.stderr);
    networks.push(name);
    const inspect = JSON.parse((await docker(['network', 'inspect', name])).stdout) as { IPAM: { Config: { Subnet: string; Gateway: string }[] } }[];
    const cfg = inspect[0]!.IPAM.Config[0]!;
    assert.match(cfg.Subnet, /^(172\.(1[7-9]|2\d|3[01])\.0\.0\/16|192\.168\.\d+\.0\/20)$/);
    // The leases dockerd refused were given back: only the kept pool is held.
    assert.equal(ipam.pools().length, 1);
    assert.equal(ipam.pools()[0]!.pool, cfg.Subnet);
    assert.equal(`${ipam.pools()[0]!.allocated[0]}`, cfg.Gateway);
    const rm = await docker(['network', 'rm', name]);
    assert.equal(rm.code, 0, rm.stderr);
    networks.splice(networks.indexOf(name), 1);
    assert.deepEqual(ipam.pools(), []);
  });
});
