/**
 * `berth container kernel` (GET /containers/{id}/kernel): the report shows what the kernel
 * holds for a running container, checked here against the kernel itself: the namespace inodes
 * of /proc/<pid>/ns, the cgroup limit files, the veth's host end on the daemon's bridge, and
 * the DNAT rule of a published port.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { berthCli, busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
const cli = berthCli(() => daemon.host, { timeoutMs: 30_000 });
const port = 20000 + (process.pid % 20000);

/** The parts of GET /containers/{id}/kernel (libs/api kernel.ts) this file reads. */
interface ContainerKernelView {
  Id: string;
  Pid: number;
  Namespaces: { Type: string; Inode: number; SharedWith: string }[];
  Cgroups: { Hierarchy: string; Path: string; Files: Record<string, string> }[];
  Mounts: { Destination: string; Type: string }[];
  Network: {
    Namespace: string;
    Interfaces: { Name: string; Mac: string; Addresses: string[]; HostPeer?: { Name: string; Bridge: string } }[];
    Routes: { Dst: string; Gateway: string }[];
    Iptables: { Table: string; Rule: string }[];
  } | null;
  Process: { Seccomp: string; CapEff: string[]; Count: number };
}

const inode = (pid: number | 'self', t: string): number => Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/${t}`))![1]);

describe('berth container kernel', { timeout: 120_000 }, () => {
  before(async () => {
    daemon = await startDaemon();
    await cli.ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    await daemon.cleanup();
  });

  test('namespaces, cgroup limits, veth and bridge, DNAT rule and credentials, as the kernel has them', async () => {
    const id = (await cli.ok(['run', '-d', '--name', 'kv', '--cpu-quota', '50000', '-m', '64m', '--pids-limit', '100', '-p', `${port}:80`, '--cap-drop', 'NET_RAW', 'busybox', 'sleep', '100'])).trim();
    const v = JSON.parse(await cli.ok(['container', 'kernel', '--format', 'json', 'kv'])) as ContainerKernelView;
    assert.equal(v.Id, id);
    const pid = v.Pid;
    assert.ok(pid > 0);
    assert.equal(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), 'sleep\x00100\x00');

    for (const t of ['mnt', 'net', 'pid', 'uts', 'ipc', 'cgroup']) {
      const n = v.Namespaces.find((x) => x.Type === t);
      assert.equal(n?.Inode, inode(pid, t), t);
      assert.notEqual(n?.Inode, inode('self', t), `${t} is the container's own`);
      assert.equal(n?.SharedWith, '', t);
    }
    assert.equal(v.Namespaces.find((x) => x.Type === 'user')?.SharedWith, 'host');

    const cpu = v.Cgroups.find((c) => c.Hierarchy.split(',').includes('cpu') || c.Hierarchy === 'unified' && 'cpu.max' in c.Files);
    assert.ok(cpu, JSON.stringify(v.Cgroups.map((c) => c.Hierarchy)));
    assert.ok(cpu.Path.endsWith(id), cpu.Path);
    if ('cpu.cfs_quota_us' in cpu.Files) {
      assert.equal(cpu.Files['cpu.cfs_quota_us'], '50000');
      assert.equal(readFileSync(`${cpu.Path}/cpu.cfs_quota_us`, 'utf8').trim(), '50000');
    } else assert.match(cpu.Files['cpu.max']!, /^50000 /);
    const mem = v.Cgroups.find((c) => 'memory.limit_in_bytes' in c.Files || 'memory.max' in c.Files)!;
    assert.equal(mem.Files['memory.limit_in_bytes'] ?? mem.Files['memory.max'], String(64 << 20));
    assert.equal(v.Cgroups.find((c) => 'pids.max' in c.Files)?.Files['pids.max'], '100');

    assert.equal(v.Mounts[0]?.Destination, '/');
    assert.equal(v.Mounts[0]?.Type, 'overlay');
    assert.ok(v.Mounts.some((m) => m.Destination === '/proc' && m.Type === 'proc'));

    const ins = JSON.parse(await cli.ok(['inspect', 'kv']))[0];
    const ip = ins.NetworkSettings.IPAddress as string;
    assert.ok(v.Network);
    assert.equal(v.Network.Namespace, ins.NetworkSettings.SandboxKey);
    const eth0 = v.Network.Interfaces.find((i) => i.Name === 'eth0');
    assert.deepEqual(eth0?.Addresses.filter((a) => !a.includes(':')), [`${ip}/${ins.NetworkSettings.IPPrefixLen}`]);
    assert.equal(eth0?.Mac, ins.NetworkSettings.MacAddress);
    // The host end: a veth on the daemon's bridge, as `ip link` shows it.
    const peer = eth0?.HostPeer;
    assert.ok(peer, JSON.stringify(eth0));
    assert.equal(peer.Bridge, daemon.net!.bridge);
    assert.match(execFileSync('ip', ['-o', 'link', 'show', 'dev', peer.Name]).toString(), new RegExp(`master ${daemon.net!.bridge} `));
    assert.ok(v.Network.Routes.some((r) => r.Dst === 'default' && r.Gateway === ins.NetworkSettings.Gateway));
    assert.ok(v.Network.Iptables.some((r) => r.Table === 'nat' && r.Rule.includes(`--dport ${port} `) && r.Rule.includes(`--to-destination ${ip}:80`)), JSON.stringify(v.Network.Iptables));

    assert.equal(v.Process.Seccomp, 'filter');
    assert.ok(v.Process.CapEff.includes('CAP_CHOWN'));
    assert.ok(!v.Process.CapEff.includes('CAP_NET_RAW'), '--cap-drop NET_RAW is gone from the effective set');
    assert.equal(v.Process.Count, 1);

    // The readable report carries the same facts.
    const text = await cli.ok(['container', 'kernel', 'kv']);
    assert.match(text, /cpu\.cfs_quota_us = 50000|cpu\.max = 50000/);
    assert.match(text, new RegExp(`<-> ${peer.Name} on the host, bridge ${daemon.net!.bridge}`));
    await cli.ok(['rm', '-f', 'kv']);
  });

  test('--network host shares the host namespace and shows no sandbox; a stopped or missing container is refused', async () => {
    await cli.ok(['run', '-d', '--name', 'kh', '--network', 'host', 'busybox', 'sleep', '100']);
    const v = JSON.parse(await cli.ok(['container', 'kernel', '--format', 'json', 'kh'])) as ContainerKernelView;
    assert.equal(v.Namespaces.find((n) => n.Type === 'net')?.SharedWith, 'host');
    assert.equal(v.Network, null);
    await cli.ok(['run', '-d', '--name', 'kj', '--network', 'container:kh', 'busybox', 'sleep', '100']);
    const j = JSON.parse(await cli.ok(['container', 'kernel', '--format', 'json', 'kj'])) as ContainerKernelView;
    assert.equal(j.Namespaces.find((n) => n.Type === 'net')?.SharedWith, 'host');
    await cli.ok(['stop', '-t', '0', 'kh']);
    const stopped = await cli.run(['container', 'kernel', 'kh']);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /is not running/);
    const missing = await cli.run(['container', 'kernel', 'nosuch']);
    assert.match(missing.stderr, /No such container: nosuch/);
    await cli.ok(['rm', '-f', 'kh', 'kj']);
  });
});
