import { spawn, execFileSync } from 'node:child_process';
import { mkdir, readFile, readlink, rmdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertNoLeaks,
  createRuntime,
  diffLeaks,
  forceDelete,
  makeBundle,
  makeTempDir,
  parseProbeOutput,
  runRuntime,
  runcDefaultSpec,
  snapshotLeaks,
  uniqueSuffix,
  describeRun,
} from '../../src/index.js';

const root = process.getuid?.() === 0;

test('a bundle holds the busybox rootfs, the probe and runc\'s default spec edited for tests', { skip: !root && 'needs root' }, async (t) => {
  const b = await makeBundle({ spec: (s) => { s.hostname = 'edited'; } });
  t.after(() => b.remove());
  assert.equal(await readlink(path.join(b.rootfs, 'bin/sh')), '/bin/busybox');
  assert.equal((await stat(path.join(b.rootfs, 'probe'))).mode & 0o111, 0o111);
  const cfg = JSON.parse(await readFile(b.configPath, 'utf8'));
  const runc = await runcDefaultSpec();
  assert.equal(cfg.process.terminal, false);
  assert.deepEqual(cfg.process.args, ['/probe']);
  assert.equal(cfg.hostname, 'edited');
  assert.deepEqual(cfg.linux.maskedPaths, runc.linux!.maskedPaths);
  assert.deepEqual(cfg.mounts, runc.mounts);
  // Bundles are traversable by a user-namespaced root (host uid 100000).
  assert.equal((await stat(path.dirname(b.dir))).mode & 0o005, 0o005);
});

for (const name of ['runc', 'crun'] as const) {
  test(`${name} runs a bundle and the probe reports PID 1; nothing is left behind`, { skip: !root && 'needs root' }, async (t) => {
    const rt = await createRuntime(name);
    const id = `bsup-${uniqueSuffix()}`;
    t.after(async () => {
      await forceDelete(rt, id);
      await rt.dispose();
    });
    for (const n of rt.notes) t.diagnostic(n);
    const b = await makeBundle({ spec: (s) => { s.linux!.cgroupsPath = `/${id}`; } });
    t.after(() => b.remove());
    // Mounts are compared under the bundle and the state root only: other test files run
    // containers (and their overlays) at the same time.
    const under = (mp: string): boolean => mp.startsWith(`${b.dir}/`) || mp.startsWith(`${rt.stateRoot}/`);
    const before = await snapshotLeaks({ cgroupPrefix: id, processMarkers: [rt.stateRoot], stateDirs: [rt.stateRoot], mountFilter: under });
    const r = await runRuntime(rt, ['run', '--bundle', b.dir, id]);
    assert.equal(r.code, 0, describeRun(r));
    const rep = parseProbeOutput(r.stdout);
    assert.equal(rep.pid, 1);
    assert.deepEqual(rep.processes.map((p) => p.pid), [1]);
    assertNoLeaks(before, await snapshotLeaks(before.scope));
  });
}

test('the leak checker reports a leaked mount, cgroup, process and state entry, then nothing once removed', { skip: !root && 'needs root' }, async (t) => {
  const tmp = await makeTempDir('berth-leak');
  t.after(() => tmp.remove());
  const marker = `BERTH_LEAK_MARKER=${uniqueSuffix()}`;
  const prefix = `bleak-${uniqueSuffix()}`;
  const scope = { cgroupPrefix: prefix, processMarkers: [marker], stateDirs: [tmp.path], mountFilter: (mp: string) => mp.startsWith(`${tmp.path}/`) };
  const before = await snapshotLeaks(scope);

  const mnt = path.join(tmp.path, 'mnt');
  await mkdir(mnt);
  execFileSync('mount', ['-t', 'tmpfs', 'leaktest', mnt]);
  const cg = `/sys/fs/cgroup/pids/${prefix}`;
  await mkdir(cg);
  const [k, v] = marker.split('=') as [string, string];
  const child = spawn('sleep', ['30'], { env: { ...process.env, [k]: v }, stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 100));
    const leaks = diffLeaks(before, await snapshotLeaks(scope));
    assert.ok(leaks.includes(`mount: ${mnt} tmpfs leaktest /`), leaks.join('\n'));
    assert.ok(leaks.includes(`cgroup: ${cg}`), leaks.join('\n'));
    assert.ok(leaks.some((l) => l === `process: ${child.pid} sleep 30`), leaks.join('\n'));
    assert.ok(leaks.includes(`state: ${mnt}`), leaks.join('\n'));
    assert.throws(() => assertNoLeaks(before, { ...before, mounts: [...before.mounts, 'x'] }), /left behind/);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    execFileSync('umount', [mnt]);
    await rmdir(mnt);
    await rmdir(cg);
  }
  assertNoLeaks(before, await snapshotLeaks(scope));
});
