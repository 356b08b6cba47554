import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCgroupManager } from './manager.js';
import { fakeHost, type FakeHostMode, type FakeHostOptions } from './testing.js';
import type { CgroupHandle } from './types.js';

const CG = '/sys/fs/cgroup';
const MiB = 1024 * 1024;

async function setup(mode: FakeHostMode = 'hybrid', opts: FakeHostOptions = {}) {
  const host = fakeHost(mode, opts);
  const manager = await createCgroupManager({ fs: host.fs, killer: host.killer });
  host.fs.clearOps();
  return { ...host, manager };
}

/** Writes the pid to every procs file as berth-init does. */
async function join(host: { fs: { writeFile(p: string, d: string): Promise<void> } }, g: CgroupHandle, pid: number) {
  for (const f of g.procsFiles()) await host.fs.writeFile(f, String(pid));
}

test('the hybrid host gives version 1 with one procs file per hierarchy, name=systemd and the cgroup2 one included', async () => {
  const { manager } = await setup();
  assert.equal(manager.version, 1);
  assert.equal(manager.layout.mode, 'hybrid');
  const g = await manager.create('/berth/c1');
  assert.deepEqual(g.procsFiles(), [
    `${CG}/cpu/berth/c1/cgroup.procs`,
    `${CG}/cpuacct/berth/c1/cgroup.procs`,
    `${CG}/cpuset/berth/c1/cgroup.procs`,
    `${CG}/memory/berth/c1/cgroup.procs`,
    `${CG}/devices/berth/c1/cgroup.procs`,
    `${CG}/freezer/berth/c1/cgroup.procs`,
    `${CG}/blkio/berth/c1/cgroup.procs`,
    `${CG}/pids/berth/c1/cgroup.procs`,
    `${CG}/systemd/berth/c1/cgroup.procs`,
    `${CG}/unified/berth/c1/cgroup.procs`,
  ]);
  assert.equal(g.paths()['name=systemd'], `${CG}/systemd/berth/c1`);
  assert.equal(g.paths()['memory'], `${CG}/memory/berth/c1`);
  assert.equal(g.paths()['unified'], `${CG}/unified/berth/c1`);
  assert.equal(g.path, 'berth/c1');
  assert.equal(g.exists(), true);
});

test('plain v1 has no cgroup2 procs file', async () => {
  const { manager } = await setup('v1');
  const g = await manager.create('berth/c1');
  assert.equal(g.procsFiles().length, 9);
  assert.ok(!g.procsFiles().some((f) => f.includes('unified')));
});

test('cpuset is initialised from the parent all the way down, so the init can join', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1');
  // berth/ did not exist: the root's values go to berth/ then to berth/c1.
  assert.deepEqual(host.fs.writes('cpuset.cpus', 'cpuset.mems'), [
    { path: `${CG}/cpuset/berth/cpuset.mems`, data: '0' },
    { path: `${CG}/cpuset/berth/cpuset.cpus`, data: '0-1' },
    { path: `${CG}/cpuset/berth/c1/cpuset.mems`, data: '0' },
    { path: `${CG}/cpuset/berth/c1/cpuset.cpus`, data: '0-1' },
  ]);
  await join(host, g, 4242);
  assert.equal(host.fs.content(`${CG}/cpuset/berth/c1/cgroup.procs`), '4242\n');

  // Second container: berth/ exists and is initialised; only it is read, only the leaf written.
  host.fs.clearOps();
  await host.manager.create('berth/c2', { cpu: { cpus: '1' } });
  assert.deepEqual(
    host.fs.ops.filter((o) => o.path.includes('/cpuset/') && (o.op === 'read' || o.op === 'write')).map((o) => [o.op, o.path.slice(CG.length), o.data]),
    [
      ['read', '/cpuset/berth/cpuset.cpus', undefined],
      ['read', '/cpuset/berth/cpuset.mems', undefined],
      ['write', '/cpuset/berth/c2/cpuset.mems', '0'],
      ['write', '/cpuset/berth/c2/cpuset.cpus', '1'],
    ],
  );
});

test('an existing but empty cpuset parent is filled from its own parent', async () => {
  const host = await setup();
  host.fs.seed(`${CG}/cpuset/berth`, { 'cpuset.cpus': '\n', 'cpuset.mems': '\n', 'cgroup.procs': '' });
  await host.manager.create('berth/c1');
  assert.equal(host.fs.content(`${CG}/cpuset/berth/cpuset.cpus`), '0-1');
  assert.equal(host.fs.content(`${CG}/cpuset/berth/c1/cpuset.mems`), '0');
});

test('--cpu-quota=50000 writes cpu.cfs_quota_us = 50000 and nothing else in the cpu hierarchy', async () => {
  const host = await setup();
  await host.manager.create('berth/c1', { cpu: { quota: 50000 } });
  assert.deepEqual(host.fs.writes().filter((w) => w.path.startsWith(`${CG}/cpu/`)), [{ path: `${CG}/cpu/berth/c1/cpu.cfs_quota_us`, data: '50000' }]);
});

test('cpu shares, period then quota, realtime period before runtime', async () => {
  const host = await setup();
  await host.manager.create('berth/c1', { cpu: { shares: 512, period: 50000, quota: 25000, realtimePeriod: 1000000, realtimeRuntime: 950000 } });
  assert.deepEqual(
    host.fs.writes().filter((w) => w.path.startsWith(`${CG}/cpu/`)).map((w) => `${w.path.split('/').pop()}=${w.data}`),
    ['cpu.shares=512', 'cpu.cfs_period_us=50000', 'cpu.cfs_quota_us=25000', 'cpu.rt_period_us=1000000', 'cpu.rt_runtime_us=950000'],
  );
});

test('a period refused with EINVAL is retried after the quota', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1');
  host.fs.fail('write', `${CG}/cpu/berth/c1/cpu.cfs_period_us`, 'EINVAL');
  host.fs.clearOps();
  await g.apply({ cpu: { period: 10000, quota: 5000 } });
  assert.deepEqual(host.fs.writes('cpu.cfs_period_us', 'cpu.cfs_quota_us').map((w) => `${w.path.split('/').pop()}=${w.data}`), [
    'cpu.cfs_period_us=10000',
    'cpu.cfs_quota_us=5000',
    'cpu.cfs_period_us=10000',
  ]);
  assert.equal(host.fs.content(`${CG}/cpu/berth/c1/cpu.cfs_period_us`), '10000');
});

const memWrites = (host: Awaited<ReturnType<typeof setup>>) =>
  host.fs.writes('memory.limit_in_bytes', 'memory.memsw.limit_in_bytes').map((w) => `${w.path.split('/').pop()}=${w.data}`);

test('memory+swap: create writes limit then memsw without reading', async () => {
  const host = await setup();
  await host.manager.create('berth/c1', { memory: { limit: 64 * MiB, swap: 128 * MiB } });
  assert.deepEqual(memWrites(host), [`memory.limit_in_bytes=${64 * MiB}`, `memory.memsw.limit_in_bytes=${128 * MiB}`]);
  assert.ok(!host.fs.ops.some((o) => o.op === 'read' && o.path.includes('/memory/')));
});

test('memory+swap increase writes memsw first, decrease writes the limit first (the fake refuses the wrong order like the kernel)', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { memory: { limit: 64 * MiB, swap: 128 * MiB } });
  host.fs.clearOps();
  await g.apply({ memory: { limit: 256 * MiB, swap: 512 * MiB } });
  assert.deepEqual(memWrites(host), [`memory.memsw.limit_in_bytes=${512 * MiB}`, `memory.limit_in_bytes=${256 * MiB}`]);
  host.fs.clearOps();
  await g.apply({ memory: { limit: 32 * MiB, swap: 64 * MiB } });
  assert.deepEqual(memWrites(host), [`memory.limit_in_bytes=${32 * MiB}`, `memory.memsw.limit_in_bytes=${64 * MiB}`]);
  assert.equal(host.fs.content(`${CG}/memory/berth/c1/memory.limit_in_bytes`), `${32 * MiB}\n`);
  assert.equal(host.fs.content(`${CG}/memory/berth/c1/memory.memsw.limit_in_bytes`), `${64 * MiB}\n`);
});

test('memory -1 with swap unset lifts memsw first, so the kernel accepts the unlimited limit', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { memory: { limit: 64 * MiB, swap: 64 * MiB } });
  host.fs.clearOps();
  await g.apply({ memory: { limit: -1 } });
  assert.deepEqual(memWrites(host), ['memory.memsw.limit_in_bytes=-1', 'memory.limit_in_bytes=-1']);
});

test('memory fields map to their v1 files; kernel memory is a warning on kernels that dropped it', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { memory: { reservation: 32 * MiB, swappiness: 10, disableOOMKiller: true, kernel: 16 * MiB } });
  assert.equal(host.fs.content(`${CG}/memory/berth/c1/memory.soft_limit_in_bytes`), String(32 * MiB));
  assert.equal(host.fs.content(`${CG}/memory/berth/c1/memory.swappiness`), '10');
  assert.equal(host.fs.content(`${CG}/memory/berth/c1/memory.oom_control`), '1');
  assert.deepEqual(g.warnings.map((w) => w.item), ['memory.kernel']);
});

test('swap without swap accounting is a warning, memory still applied', async () => {
  const host = await setup('hybrid', { swapAccounting: false });
  const g = await host.manager.create('berth/c1', { memory: { limit: 64 * MiB, swap: 128 * MiB } });
  assert.deepEqual(g.warnings, [{ item: 'memory.swap', reason: 'swap accounting is off (no memory.memsw.limit_in_bytes)' }]);
  assert.equal(host.fs.content(`${CG}/memory/berth/c1/memory.limit_in_bytes`), `${64 * MiB}\n`);
});

test('pids.max: a number, "max" for -1/0 on update, nothing to write on create', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { pids: { limit: 32 } });
  assert.equal(host.fs.content(`${CG}/pids/berth/c1/pids.max`), '32');
  await g.apply({ pids: { limit: -1 } });
  assert.equal(host.fs.content(`${CG}/pids/berth/c1/pids.max`), 'max');
  await g.apply({ pids: { limit: 0 } });
  host.fs.clearOps();
  await host.manager.create('berth/c2', { pids: { limit: -1 } });
  assert.deepEqual(host.fs.writes('pids.max'), []);
});

test('blkio weight goes to blkio.bfq.weight when only BFQ offers one, learnt once', async () => {
  const host = await setup();
  await host.manager.create('berth/c1', { blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 300 }] } });
  assert.deepEqual(host.fs.writes().filter((w) => w.path.includes('/blkio/')).map((w) => `${w.path.split('/').pop()}=${w.data}`), [
    'blkio.weight=500', // ENOENT on this kernel
    'blkio.bfq.weight=500',
    'blkio.bfq.weight_device=8:0 300',
  ]);
  host.fs.clearOps();
  await host.manager.create('berth/c2', { blockIO: { weight: 200 } });
  assert.deepEqual(host.fs.writes().filter((w) => w.path.includes('/blkio/')).map((w) => w.path.split('/').pop()), ['blkio.bfq.weight']);
});

test('blkio on a CFQ kernel: blkio.weight, leaf weight and throttles', async () => {
  const host = await setup('v1', { blkio: 'cfq' });
  await host.manager.create('berth/c1', {
    blockIO: {
      weight: 500,
      leafWeight: 300,
      throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
      throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 100 }],
    },
  });
  assert.deepEqual(host.fs.writes().filter((w) => w.path.includes('/blkio/')).map((w) => `${w.path.split('/').pop()}=${w.data}`), [
    'blkio.weight=500',
    'blkio.leaf_weight=300',
    'blkio.throttle.read_bps_device=8:0 1048576',
    'blkio.throttle.write_iops_device=8:16 100',
  ]);
});

test('devices: deny "a" first, then the rules in order', async () => {
  const host = await setup();
  await host.manager.create('berth/c1', {
    devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 136, minor: null, access: 'rw' },
      { allow: false, type: 'b', major: 8, minor: -1, access: 'm' },
    ],
  });
  assert.deepEqual(host.fs.writes('devices.allow', 'devices.deny').map((w) => `${w.path.split('/').pop()}=${w.data}`), [
    'devices.deny=a',
    'devices.deny=a *:* rwm',
    'devices.allow=c 1:3 rwm',
    'devices.allow=c 136:* rw',
    'devices.deny=b 8:* m',
  ]);
});

test('hybrid: hugepage limits go to the cgroup2 side after enabling hugetlb down the path', async () => {
  const host = await setup();
  await host.manager.create('berth/c1', { hugepageLimits: [{ pageSize: '2MB', limit: 4 * 2 * MiB }] });
  assert.deepEqual(host.fs.writes().filter((w) => w.path.startsWith(`${CG}/unified`)), [
    { path: `${CG}/unified/cgroup.subtree_control`, data: '+hugetlb' },
    { path: `${CG}/unified/berth/cgroup.subtree_control`, data: '+hugetlb' },
    { path: `${CG}/unified/berth/c1/hugetlb.2MB.max`, data: String(8 * MiB) },
  ]);
  host.fs.clearOps();
  await assert.rejects(host.manager.create('berth/c2', { hugepageLimits: [{ pageSize: '3MB', limit: 1 }] }), {
    message: /resources\.hugepageLimits\[0\]\.pageSize: the kernel has no 3MB huge pages/,
  });
  // Enabled once per manager.
  assert.ok(!host.fs.writes('cgroup.subtree_control').length);
});

test('plain v1: hugepage limits without a hugetlb hierarchy and unified keys are named warnings', async () => {
  const host = await setup('v1');
  const g = await host.manager.create('berth/c1', { hugepageLimits: [{ pageSize: '2MB', limit: 0 }], unified: { 'memory.high': '1G' } });
  assert.deepEqual(g.warnings.map((w) => w.item).sort(), ['hugepageLimits', 'unified']);
});

test('hybrid: unified keys are written in the cgroup2 group; an unknown one fails naming it', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { hugepageLimits: [{ pageSize: '2MB', limit: 0 }] });
  await g.apply({ unified: { 'hugetlb.1GB.max': '0' } });
  assert.equal(host.fs.content(`${CG}/unified/berth/c1/hugetlb.1GB.max`), '0');
  await assert.rejects(g.apply({ unified: { 'memory.high': '1G' } }), /resources\.unified\["memory\.high"\]/);
});

test('a failed create removes what it made, parents it made included', async () => {
  const host = await setup();
  host.fs.fail('write', `${CG}/cpu/berth/c1/cpu.cfs_quota_us`, 'EINVAL');
  await assert.rejects(host.manager.create('berth/c1', { cpu: { quota: 50000 } }), (err: Error) => {
    assert.match(err.message, /^create cgroup berth\/c1: set cpu.cfs_quota_us to "50000": write .*: EINVAL$/);
    return true;
  });
  assert.deepEqual([...host.fs.dirs].filter((d) => d.includes('/berth')), []);
});

test('invalid input is refused before anything is touched', async () => {
  const host = await setup();
  await assert.rejects(host.manager.create('berth/../../x'), { code: 'BERTH_INVALID_ARGUMENT' });
  await assert.rejects(host.manager.create('berth/c1', { memory: { limit: 100, swap: 10 } }), { code: 'BERTH_INVALID_ARGUMENT' });
  assert.deepEqual(host.fs.ops.filter((o) => o.op !== 'exists'), []);
});

test('open answers null for a missing group and a working handle for an existing one', async () => {
  const host = await setup();
  assert.equal(host.manager.open('berth/nope'), null);
  await host.manager.create('berth/c1');
  const g = host.manager.open('/berth/c1');
  assert.ok(g !== null);
  assert.equal(g.procsFiles().length, 10);
});

test('freeze writes FROZEN and waits for the state; thaw writes THAWED', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1');
  await g.freeze();
  assert.equal(host.fs.content(`${CG}/freezer/berth/c1/freezer.state`), 'FROZEN\n');
  await g.thaw();
  assert.equal(host.fs.content(`${CG}/freezer/berth/c1/freezer.state`), 'THAWED\n');
});

test('pids lists the group and its sub-groups', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1');
  await join(host, g, 300);
  host.fs.seed(`${CG}/pids/berth/c1/sub`, { 'cgroup.procs': '301\n' });
  assert.deepEqual(await g.pids(), [300, 301]);
});

test('destroy with kill freezes, SIGKILLs every process, thaws, and removes every directory', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1');
  await join(host, g, 500);
  await join(host, g, 501);
  host.fs.clearOps();
  await g.destroy({ kill: true });
  assert.deepEqual(host.killer.calls, [
    { pid: 500, signal: 'SIGKILL' },
    { pid: 501, signal: 'SIGKILL' },
  ]);
  const freezes = host.fs.writes('freezer.state').map((w) => w.data);
  assert.equal(freezes[0], 'FROZEN');
  assert.equal(freezes[freezes.length - 1], 'THAWED');
  assert.deepEqual([...host.fs.dirs].filter((d) => d.includes('/c1')), []);
  assert.equal(g.exists(), false);
  // berth/ is shared and stays.
  assert.ok(host.fs.dirs.has(`${CG}/memory/berth`));
  // Idempotent.
  await g.destroy({ kill: true });
});

test('destroy retries rmdir on EBUSY and removes sub-groups the container made', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1');
  host.fs.seed(`${CG}/memory/berth/c1/inner`, { 'cgroup.procs': '' });
  host.fs.fail('rmdir', `${CG}/pids/berth/c1`, 'EBUSY', 2);
  await g.destroy();
  assert.deepEqual([...host.fs.dirs].filter((d) => d.includes('/c1')), []);
  assert.equal(host.fs.ops.filter((o) => o.op === 'rmdir' && o.path === `${CG}/pids/berth/c1`).length, 3);
});

test('destroy without kill fails with BERTH_CGROUP naming the processes that remain', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1');
  await join(host, g, 777);
  await assert.rejects(g.destroy(), (err: Error) => {
    assert.match(err.message, /still busy after 7 attempts \(processes 777 remain\)/);
    return true;
  });
});

test('destroy kills processes left in a hierarchy the init did not finish joining', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1');
  await host.fs.writeFile(`${CG}/memory/berth/c1/cgroup.procs`, '900');
  await g.destroy({ kill: true });
  assert.deepEqual(host.killer.calls, [{ pid: 900, signal: 'SIGKILL' }]);
  assert.deepEqual([...host.fs.dirs].filter((d) => d.includes('/c1')), []);
});

test('stats reads memory, pids and cpu', async () => {
  const host = await setup();
  const g = await host.manager.create('berth/c1', { memory: { limit: 64 * MiB }, pids: { limit: 32 } });
  host.fs.files.set(`${CG}/memory/berth/c1/memory.usage_in_bytes`, '1048576\n');
  host.fs.files.set(`${CG}/pids/berth/c1/pids.current`, '3\n');
  host.fs.files.set(`${CG}/cpuacct/berth/c1/cpuacct.usage`, '123456789\n');
  host.fs.files.set(`${CG}/cpu/berth/c1/cpu.stat`, 'nr_periods 10\nnr_throttled 2\nthrottled_time 5000\n');
  host.fs.files.set(`${CG}/cpuacct/berth/c1/cpuacct.usage_percpu`, '100000000 23456789 \n');
  host.fs.files.set(`${CG}/memory/berth/c1/memory.failcnt`, '4\n');
  host.fs.files.set(`${CG}/memory/berth/c1/memory.oom_control`, 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
  host.fs.files.set(`${CG}/blkio/berth/c1/blkio.throttle.io_service_bytes_recursive`, '8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n');
  const s = await g.stats();
  assert.deepEqual(s.memory, { usage: 1048576, limit: 64 * MiB, maxUsage: 0, failcnt: 4, oomKills: 2, stat: { cache: 0, rss: 0, total_inactive_file: 0 } });
  assert.deepEqual(s.pids, { current: 3, limit: 32 });
  assert.deepEqual(s.cpu, { usageNanos: 123456789, userNanos: 0, systemNanos: 0, periods: 10, throttledPeriods: 2, throttledNanos: 5000, perCpuNanos: [100000000, 23456789] });
  assert.deepEqual(s.blkio?.serviceBytes, [
    { major: 8, minor: 0, op: 'Read', value: 4096 },
    { major: 8, minor: 0, op: 'Write', value: 512 },
    { major: 8, minor: 0, op: 'Total', value: 4608 },
  ]);
  const unlimited = await (await host.manager.create('berth/c2')).stats();
  assert.equal(unlimited.memory?.limit, null);
  assert.equal(unlimited.pids?.limit, null);
});
