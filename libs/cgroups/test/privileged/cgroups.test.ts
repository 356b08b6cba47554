import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createCgroupManager, parseMountinfo, type CgroupHandle, type CgroupManager } from '../../src/index.js';

const MiB = 1024 * 1024;
const skip: string | false = process.getuid?.() !== 0 ? 'needs root' : !existsSync('/sys/fs/cgroup') ? 'no cgroup filesystem' : false;

const PREFIX = `berth-test-${process.pid}-`;
const MARKER = `BERTH_CGROUPS_TEST=${process.pid}`;
const name = (): string => `${PREFIX}${randomBytes(3).toString('hex')}`;

let manager: CgroupManager;
let leaksBefore: string[];
const parents: string[] = [];
const handles: CgroupHandle[] = [];
const children: ChildProcess[] = [];

/** create, remembered so the after hook can clean up when a test fails midway. */
async function create(path: string, resources = {}): Promise<CgroupHandle> {
  const g = await manager.create(path, resources);
  handles.push(g);
  return g;
}

/** Every cgroup mount point of this host, read independently of the code under test. */
function cgroupMounts(): string[] {
  const seen = new Set<string>();
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    .filter((e) => (e.fsType === 'cgroup' || e.fsType === 'cgroup2') && !seen.has(e.device) && seen.add(e.device))
    .map((e) => e.mountPoint);
}

/** A shell that becomes `sleep` once it reads a line, so exec happens inside the group. */
/** Leak check: this run's cgroup directories (any depth, every hierarchy) and marked processes. */
function leaks(): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (e.name.startsWith(PREFIX)) out.push(`cgroup ${dir}/${e.name}`);
      if (depth > 0) walk(`${dir}/${e.name}`, depth - 1);
    }
  };
  for (const m of cgroupMounts()) walk(m, 3);
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(MARKER)) out.push(`process ${pid}`);
    } catch {
      // exited meanwhile
    }
  }
  return out.sort();
}

function spawnSleep(): ChildProcess {
  const [k, v] = MARKER.split('=') as [string, string];
  const child = spawn('sh', ['-c', 'read x; exec sleep 1000'], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, [k]: v } });
  children.push(child);
  return child;
}

function procState(pid: number): string {
  return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
}

async function pollFor(what: string, check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

before(async () => {
  if (skip) return;
  leaksBefore = leaks();
  manager = await createCgroupManager();
});

after(async () => {
  if (skip) return;
  const errors: unknown[] = [];
  for (const g of handles) await g.destroy({ kill: true }).catch((err: unknown) => errors.push(err));
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // Parents made by create (berth/ in production) are shared and stay; the tests remove theirs.
  for (const p of parents) {
    for (const m of cgroupMounts()) {
      try {
        if (existsSync(`${m}/${p}`)) rmdirSync(`${m}/${p}`);
      } catch (err) {
        errors.push(err);
      }
    }
  }
  assert.deepEqual(errors, [], 'cleanup');
  // Killed children may take a moment to be reaped.
  const end = Date.now() + 3000;
  while (leaks().length > leaksBefore.length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(leaks(), leaksBefore, 'left behind by the cgroups privileged tests');
});

test('detection matches the mount table: one procs file per mounted hierarchy', { skip }, async () => {
  const mounts = cgroupMounts();
  const p = name();
  parents.push(p);
  const g = await create(`${p}/c`);
  try {
    assert.deepEqual(g.procsFiles().map((f) => f.slice(0, -`/${p}/c/cgroup.procs`.length)).sort(), mounts.sort());
    const hybrid = mounts.some((m) => m !== '/sys/fs/cgroup') && mounts.includes('/sys/fs/cgroup/unified');
    assert.equal(manager.layout.mode, hybrid ? 'hybrid' : manager.layout.mode);
  } finally {
    await g.destroy();
  }
});

test('limits read back, a process joins, is listed, frozen, thawed, killed, and every directory goes', { skip }, async (t) => {
  const p = name();
  parents.push(p);
  const rel = `/${p}/c1`;
  const g = await create(rel, { cpu: { quota: 50000 }, memory: { limit: 64 * MiB }, pids: { limit: 32 } });
  t.diagnostic(`layout ${manager.layout.mode}, warnings ${JSON.stringify(g.warnings)}`);
  const paths = g.paths();
  if (manager.version === 1) {
    assert.equal(readFileSync(`${paths['cpu']}/cpu.cfs_quota_us`, 'utf8').trim(), '50000');
    assert.equal(readFileSync(`${paths['memory']}/memory.limit_in_bytes`, 'utf8').trim(), String(64 * MiB));
    assert.equal(readFileSync(`${paths['pids']}/pids.max`, 'utf8').trim(), '32');
    if (paths['cpuset']) {
      const root = manager.layout.mode !== 'v2' ? manager.layout.hierarchies.find((h) => h.controllers.includes('cpuset'))!.mountPoint : '';
      assert.equal(readFileSync(`${paths['cpuset']}/cpuset.cpus`, 'utf8'), readFileSync(`${root}/cpuset.cpus`, 'utf8'));
    }
  } else {
    assert.equal(readFileSync(`${paths['unified']}/cpu.max`, 'utf8').trim(), '50000 100000');
    assert.equal(readFileSync(`${paths['unified']}/memory.max`, 'utf8').trim(), String(64 * MiB));
    assert.equal(readFileSync(`${paths['unified']}/pids.max`, 'utf8').trim(), '32');
  }

  const child = spawnSleep();
  await once(child, 'spawn');
  const pid = child.pid!;
  for (const f of g.procsFiles()) writeFileSync(f, String(pid));
  child.stdin!.end('go\n');
  await pollFor('exec of sleep', () => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep' && procState(pid) === 'S');
  const cgroupFile = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  assert.equal(cgroupFile.split('\n').filter((l) => l.endsWith(`:${rel}`)).length, g.procsFiles().length, cgroupFile);
  assert.deepEqual(await g.pids(), [pid]);

  const stats = await g.stats();
  assert.equal(stats.pids?.current, 1);
  assert.equal(stats.pids?.limit, 32);
  assert.equal(stats.memory?.limit, 64 * MiB);
  assert.ok((stats.memory?.usage ?? 0) > 0, 'memory usage is charged');
  assert.ok((stats.cpu?.usageNanos ?? 0) > 0, 'cpu usage is counted');
  assert.equal(stats.memory?.oomKills, 0, 'the kernel counts OOM kills (4.13+)');
  assert.ok(stats.blkio !== undefined, 'block IO counters are read');
  if (manager.version === 1) {
    assert.ok((stats.cpu?.perCpuNanos?.length ?? 0) >= availableParallelism(), 'one figure per possible CPU');
    assert.ok((stats.cpu?.perCpuNanos ?? []).reduce((a, b) => a + b, 0) > 0, 'per-CPU usage adds up to something');
    assert.equal(stats.memory?.failcnt, 0);
  }

  await g.freeze();
  if (paths['freezer']) assert.equal(readFileSync(`${paths['freezer']}/freezer.state`, 'utf8').trim(), 'FROZEN');
  assert.equal(procState(pid), 'D'); // a frozen task shows as uninterruptible
  await g.thaw();
  await pollFor('thawed sleep', () => procState(pid) === 'S');

  const exited = once(child, 'exit');
  await g.destroy({ kill: true });
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
  for (const dir of Object.values(paths)) assert.equal(existsSync(dir), false, `${dir} is gone`);
  assert.equal(g.exists(), false);
  assert.equal(manager.open(rel), null);
  await g.destroy({ kill: true }); // idempotent
});

test('memory+swap grows and shrinks in the order the kernel accepts', { skip }, async (t) => {
  if (manager.version === 2) return t.skip('v1 ordering');
  const p = name();
  parents.push(p);
  const g = await create(`${p}/m`, { memory: { limit: 64 * MiB, swap: 128 * MiB } });
  try {
    const dir = g.paths()['memory']!;
    const read = (f: string): number => Number(readFileSync(`${dir}/${f}`, 'utf8').trim());
    const hasMemsw = existsSync(`${dir}/memory.memsw.limit_in_bytes`);
    await g.apply({ memory: { limit: 512 * MiB, swap: 1024 * MiB } }); // both above the old memsw
    assert.equal(read('memory.limit_in_bytes'), 512 * MiB);
    if (hasMemsw) assert.equal(read('memory.memsw.limit_in_bytes'), 1024 * MiB);
    await g.apply({ memory: { limit: 16 * MiB, swap: 32 * MiB } }); // both below the old limit
    assert.equal(read('memory.limit_in_bytes'), 16 * MiB);
    if (hasMemsw) assert.equal(read('memory.memsw.limit_in_bytes'), 32 * MiB);
    await g.apply({ memory: { limit: -1 } });
    assert.ok(read('memory.limit_in_bytes') > 2 ** 62);
  } finally {
    await g.destroy();
  }
});

test('devices (v1) and hugepage limits reach the kernel', { skip }, async (t) => {
  const p = name();
  parents.push(p);
  const unifiedRoot = manager.layout.mode === 'hybrid' ? manager.layout.unified.mountPoint : undefined;
  const subtreeBefore = unifiedRoot ? readFileSync(`${unifiedRoot}/cgroup.subtree_control`, 'utf8').trim() : '';
  const g = await create(`${p}/d`, {
    devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }],
    hugepageLimits: [{ pageSize: '2MB', limit: 4 * 2 * MiB }],
  });
  try {
    t.diagnostic(`warnings ${JSON.stringify(g.warnings)}`);
    const paths = g.paths();
    if (paths['devices']) assert.equal(readFileSync(`${paths['devices']}/devices.list`, 'utf8').trim(), 'c 1:3 rwm');
    const hugeDir = paths['hugetlb'] ?? paths['unified'];
    if (hugeDir && !g.warnings.some((w) => w.item === 'hugepageLimits')) {
      const file = paths['hugetlb'] ? 'hugetlb.2MB.limit_in_bytes' : 'hugetlb.2MB.max';
      assert.equal(readFileSync(`${hugeDir}/${file}`, 'utf8').trim(), String(8 * MiB));
    }
  } finally {
    await g.destroy();
    for (const m of cgroupMounts()) if (existsSync(`${m}/${p}`)) rmdirSync(`${m}/${p}`);
    // Leave the host's cgroup2 root as found.
    if (unifiedRoot && !subtreeBefore.split(' ').includes('hugetlb')) writeFileSync(`${unifiedRoot}/cgroup.subtree_control`, '-hugetlb');
  }
});

test('destroy without kill refuses a group that still has a process, then destroy with kill succeeds', { skip }, async () => {
  const p = name();
  parents.push(p);
  const g: CgroupHandle = await create(`${p}/busy`);
  const child = spawnSleep();
  await once(child, 'spawn');
  for (const f of g.procsFiles()) writeFileSync(f, String(child.pid));
  await assert.rejects(g.destroy(), (err: Error) => /still busy/.test(err.message) && err.message.includes(String(child.pid)));
  assert.equal(g.exists(), true);
  const exited = once(child, 'exit');
  await g.destroy({ kill: true });
  await exited;
  assert.equal(g.exists(), false);
});

test('create + apply + destroy cost on this host', { skip }, async (t) => {
  const p = name();
  parents.push(p);
  await (await create(`${p}/warm`)).destroy(); // parent and caches in place, like berth/
  const n = 50;
  const resources = { cpu: { quota: 50000, shares: 512 }, memory: { limit: 64 * MiB, swap: 128 * MiB }, pids: { limit: 32 } };
  let createNs = 0n;
  let destroyNs = 0n;
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const g = await create(`${p}/c${i}`, resources);
    const t1 = process.hrtime.bigint();
    await g.destroy({ kill: true });
    destroyNs += process.hrtime.bigint() - t1;
    createNs += t1 - t0;
  }
  const ms = (ns: bigint): string => (Number(ns / BigInt(n)) / 1e6).toFixed(3);
  t.diagnostic(`mean over ${n}: create+apply ${ms(createNs)} ms, destroy(kill) ${ms(destroyNs)} ms, total ${ms(createNs + destroyNs)} ms`);
  assert.ok(Number(createNs + destroyNs) / n / 1e6 < 100, 'a create+destroy cycle stays well under 100 ms');
});
