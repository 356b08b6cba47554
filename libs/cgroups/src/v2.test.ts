import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isInvalidArgument } from '@berth/errors';
import { createCgroupManager } from './manager.js';
import { fakeHost, type FakeHostOptions } from './testing.js';

const CG = '/sys/fs/cgroup';
const LEAF = `${CG}/berth/c1`;
const MiB = 1024 * 1024;

async function setup(opts: FakeHostOptions = {}) {
  const host = fakeHost('v2', opts);
  const manager = await createCgroupManager({ fs: host.fs, killer: host.killer });
  host.fs.clearOps();
  return { ...host, manager };
}

const leafWrites = (host: Awaited<ReturnType<typeof setup>>) =>
  host.fs.writes().filter((w) => w.path.startsWith(`${LEAF}/`)).map((w) => `${w.path.slice(LEAF.length + 1)}=${w.data}`);

test('v2: one procs file, controllers enabled from the root down once per manager', async () => {
  const host = await setup();
  assert.equal(host.manager.version, 2);
  const g = await host.manager.create('berth/c1');
  assert.deepEqual(g.procsFiles(), [`${LEAF}/cgroup.procs`]);
  assert.deepEqual(g.paths(), { unified: LEAF });
  const all = '+cpuset +cpu +io +memory +hugetlb +pids';
  assert.deepEqual(host.fs.writes('cgroup.subtree_control'), [
    { path: `${CG}/cgroup.subtree_control`, data: all },
    { path: `${CG}/berth/cgroup.subtree_control`, data: all },
  ]);
  // The leaf got every controller's files because the parents were enabled first.
  assert.equal(host.fs.content(`${LEAF}/memory.max`), 'max\n');
  host.fs.clearOps();
  await host.manager.create('berth/c2');
  assert.deepEqual(host.fs.writes('cgroup.subtree_control'), []);
});

test('v2: a controller the parent lacks is skipped, and a resource needing it is a named warning', async () => {
  const host = await setup();
  host.fs.files.set(`${CG}/cgroup.controllers`, 'cpu memory pids\n');
  host.fs.clearOps();
  const g = await host.manager.create('berth/c1', { blockIO: { weight: 500 } });
  // The full line failed at the root; then one by one.
  assert.equal(host.fs.content(`${CG}/cgroup.subtree_control`), 'cpu memory pids\n');
  assert.deepEqual(g.warnings.map((w) => w.item), ['blockIO.weight']);
});

test('v2: --cpu-quota=50000 writes cpu.max = "50000 100000"', async () => {
  const host = await setup();
  await host.manager.create('berth/c1', { cpu: { quota: 50000 } });
  assert.deepEqual(leafWrites(host), ['cpu.max=50000 100000']);
});

test('v2: live quota keeps the period; period alone keeps the quota', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { cpu: { quota: 50000, period: 200000 } });
  host.fs.clearOps();
  await g.apply({ cpu: { quota: 20000 } });
  await g.apply({ cpu: { period: 50000 } });
  await g.apply({ cpu: { quota: -1 } });
  assert.deepEqual(leafWrites(host), ['cpu.max=20000', 'cpu.max=20000 50000', 'cpu.max=max']);
});

test('v2: shares -> cpu.weight, cpuset files', async () => {
  const host = await setup();
  await host.manager.create('berth/c1', { cpu: { shares: 1024, cpus: '0-1', mems: '0' } });
  assert.deepEqual(leafWrites(host).sort(), ['cpu.weight=39', 'cpuset.cpus=0-1', 'cpuset.mems=0']);
});

test('v2: memory.max, swap converted to swap-only, memory.low', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { memory: { limit: 64 * MiB, swap: 128 * MiB, reservation: 32 * MiB } });
  assert.deepEqual(leafWrites(host), [`memory.max=${64 * MiB}`, `memory.swap.max=${64 * MiB}`, `memory.low=${32 * MiB}`]);
  host.fs.clearOps();
  await g.apply({ memory: { swap: 96 * MiB } }); // reads memory.max for the conversion
  assert.deepEqual(leafWrites(host), [`memory.swap.max=${32 * MiB}`]);
  host.fs.clearOps();
  await g.apply({ memory: { limit: -1 } });
  assert.deepEqual(leafWrites(host), ['memory.max=max', 'memory.swap.max=max']);
});

test('v2: pids.max', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { pids: { limit: 32 } });
  await g.apply({ pids: { limit: -1 } });
  assert.deepEqual(leafWrites(host), ['pids.max=32', 'pids.max=max']);
});

test('v2: io.weight converted, io.max one line per device', async () => {
  const host = await setup();
  await host.manager.create('berth/c1', {
    blockIO: {
      weight: 500,
      weightDevice: [{ major: 8, minor: 0, weight: 1000 }],
      throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
      throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
      throttleWriteBpsDevice: [{ major: 8, minor: 16, rate: 0 }],
    },
  });
  assert.deepEqual(leafWrites(host), [
    'io.bfq.weight=500', // ENOENT: no BFQ here
    'io.weight=4950',
    'io.weight=8:0 10000',
    'io.max=8:0 rbps=1048576 wiops=100',
    'io.max=8:16 wbps=max',
  ]);
});

test('v2: devices and v1-only knobs are named warnings, nothing written for them', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', {
    devices: [{ allow: false, access: 'rwm' }],
    memory: { swappiness: 10, kernel: 1, disableOOMKiller: true },
    cpu: { realtimeRuntime: 1000 },
  });
  assert.deepEqual(g.warnings.map((w) => w.item).sort(), ['cpu.realtimeRuntime', 'devices', 'memory.disableOOMKiller', 'memory.kernel', 'memory.swappiness']);
  assert.match(g.warnings.find((w) => w.item === 'devices')!.reason, /eBPF/);
  assert.deepEqual(leafWrites(host), []);
});

test('v2: unified keys are written last and win; an unknown key fails naming it', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { memory: { limit: 64 * MiB }, unified: { 'memory.max': '1G' } });
  assert.deepEqual(leafWrites(host), [`memory.max=${64 * MiB}`, 'memory.max=1G']);
  await assert.rejects(g.apply({ unified: { 'rdma.max': 'x' } }), (err: Error) => isInvalidArgument(err) && /unified\["rdma\.max"\]/.test(err.message));
});

test('v2: hugetlb.<size>.max', async () => {
  const host = await setup();
  await host.manager.create('berth/c1', { hugepageLimits: [{ pageSize: '2MB', limit: 2 * MiB }] });
  assert.deepEqual(leafWrites(host), [`hugetlb.2MB.max=${2 * MiB}`]);
});

test('v2: freeze waits for cgroup.events frozen 1; thaw', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1');
  await g.freeze();
  assert.match(await host.fs.readFile(`${LEAF}/cgroup.events`), /frozen 1/);
  await g.thaw();
  assert.deepEqual(host.fs.writes('cgroup.freeze').map((w) => w.data), ['1', '0']);
});

test('v2: destroy with kill uses cgroup.kill and waits for populated 0', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1');
  await host.fs.writeFile(`${LEAF}/cgroup.procs`, '600');
  await g.destroy({ kill: true });
  assert.deepEqual(host.fs.writes('cgroup.kill'), [{ path: `${LEAF}/cgroup.kill`, data: '1' }]);
  assert.deepEqual(host.killer.calls, []);
  assert.equal(host.fs.dirs.has(LEAF), false);
  await g.destroy({ kill: true });
});

test('v2: without cgroup.kill, destroy freezes and signals each process', async () => {
  const host = await setup({ cgroupKill: false });
  const g = await host.manager.create('berth/c1');
  await host.fs.writeFile(`${LEAF}/cgroup.procs`, '600');
  host.fs.seed(`${LEAF}/inner`, { 'cgroup.procs': '601\n' });
  await g.destroy({ kill: true });
  assert.deepEqual(host.killer.calls.map((c) => c.pid), [600, 601]);
  assert.equal(host.fs.dirs.has(LEAF), false);
});

test('v2: stats', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { memory: { limit: 64 * MiB } });
  host.fs.files.set(`${LEAF}/memory.current`, '4096\n');
  host.fs.files.set(`${LEAF}/cpu.stat`, 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n');
  host.fs.files.set(`${LEAF}/memory.events`, 'low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n');
  host.fs.files.set(`${LEAF}/io.stat`, '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n');
  const s = await g.stats();
  assert.deepEqual(s.memory, { usage: 4096, limit: 64 * MiB, maxUsage: 0, oomKills: 1, stat: { anon: 0, file: 0, inactive_file: 0 } });
  assert.deepEqual(s.blkio, {
    serviceBytes: [
      { major: 8, minor: 0, op: 'read', value: 4096 },
      { major: 8, minor: 0, op: 'write', value: 8192 },
      { major: 8, minor: 0, op: 'discard', value: 0 },
    ],
    serviced: [
      { major: 8, minor: 0, op: 'read', value: 1 },
      { major: 8, minor: 0, op: 'write', value: 2 },
      { major: 8, minor: 0, op: 'discard', value: 0 },
    ],
  });
  assert.deepEqual(s.pids, { current: 0, limit: null });
  assert.deepEqual(s.cpu, { usageNanos: 1500000, userNanos: 1000000, systemNanos: 500000, periods: 4, throttledPeriods: 1, throttledNanos: 20000 });
});

test('v2: an absolute filesystem path under the mount is accepted, one outside refused', async () => {
  const host = await setup();
  assert.equal(host.manager.normalizePath('/sys/fs/cgroup/berth/c1'), 'berth/c1');
  assert.throws(() => host.manager.normalizePath('/sys/kernel/mm/x'), { code: 'BERTH_INVALID_ARGUMENT' });
});
