// The cgroup v2 device filter on this host's kernel: a program compiled from device rules is
// attached to a fresh cgroup2 directory, and a process moved into it is refused the devices
// the rules deny (EPERM) while the others open. Any cgroup2 directory runs device programs,
// also the hybrid layout's cgroup2 mount that holds only hugetlb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCodeOf } from '@berth/errors';
import { BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, BPF_F_REPLACE } from '@berth/native';
import { createCgroupManager, installDeviceFilter, parseMountinfo, realDeviceBpf, type DeviceBpf, type DeviceRule } from '../../src/index.js';

const cgroup2 = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).find((e) => e.fsType === 'cgroup2')?.mountPoint;
const skip: string | false = process.getuid?.() !== 0 ? 'needs root' : cgroup2 === undefined ? 'no cgroup2 mount on this host' : false;

const PREFIX = `berth-devfilter-${process.pid}-`;

/** This run's directories left on the cgroup2 mount. */
function leaks(): string[] {
  if (cgroup2 === undefined) return [];
  return readdirSync(cgroup2, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name.startsWith(PREFIX))
    .map((e) => `${cgroup2}/${e.name}`);
}

/**
 * A node process that moves itself into `dir` (writes its pid to cgroup.procs), then opens
 * each path with each flag and reports 'ok' or the error code.
 */
async function probe(dir: string, opens: [string, 'r' | 'r+'][]): Promise<string[]> {
  const script = `
    const fs = require('node:fs');
    fs.writeFileSync(${JSON.stringify(`${dir}/cgroup.procs`)}, String(process.pid));
    const out = [];
    for (const [path, flags] of ${JSON.stringify(opens)}) {
      try { fs.closeSync(fs.openSync(path, flags)); out.push('ok'); } catch (e) { out.push(e.code); }
    }
    process.stdout.write(JSON.stringify(out));
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, `probe failed: ${stderr}`);
  return JSON.parse(stdout) as string[];
}

async function removeDir(dir: string): Promise<void> {
  // The last process can take a moment to leave the group after its exit.
  for (let i = 0; ; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = errnoCodeOf(err);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i >= 50) throw err;
      await sleep(20);
    }
  }
}

test('cgroup v2 device filter: the kernel refuses what the rules deny, and a replacement takes over', { skip }, async (t) => {
  assert.deepEqual(leaks(), []);
  const dir = `${cgroup2!}/${PREFIX}${randomBytes(3).toString('hex')}`;
  mkdirSync(dir);
  t.after(async () => {
    await removeDir(dir);
    assert.deepEqual(leaks(), [], 'cgroup directory left behind');
  });
  const real = realDeviceBpf();
  const attachFlags: number[] = [];
  const bpf: DeviceBpf = {
    ...real,
    bpfProgAttach: (progFd, targetFd, attachType, flags, replaceFd) => {
      attachFlags.push(flags);
      real.bpfProgAttach(progFd, targetFd, attachType, flags, replaceFd);
    },
  };
  const attached = (): number[] => {
    const fd = bpf.openDir(dir);
    try {
      return bpf.bpfProgQuery(fd, BPF_CGROUP_DEVICE).progIds;
    } finally {
      bpf.close(fd);
    }
  };
  const opens: [string, 'r' | 'r+'][] = [
    ['/dev/null', 'r'],
    ['/dev/null', 'r+'],
    ['/dev/zero', 'r'],
    ['/dev/zero', 'r+'],
    ['/dev/full', 'r'],
    ['/dev/full', 'r+'],
  ];

  // Control: no program, everything opens.
  assert.deepEqual(await probe(dir, opens), ['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);

  // Default deny; /dev/zero (c 1:5) fully, /dev/full (c 1:7) read-only; /dev/null (c 1:3) not at all.
  const first: DeviceRule[] = [
    { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 7, access: 'r' },
  ];
  try {
    installDeviceFilter(bpf, dir, first);
  } catch (err) {
    const code = errnoCodeOf(err);
    // Not permitted here (a locked-down kernel, no CAP_BPF): say exactly why, do not pass.
    if (code === 'EPERM') return t.skip(`bpf(2) is not permitted on this host: ${code} (${(err as Error).message})`);
    throw err;
  }
  assert.equal(attached().length, 1);
  assert.deepEqual(await probe(dir, opens), ['EPERM', 'EPERM', 'ok', 'ok', 'ok', 'EPERM']);

  // Update: allow all, then deny c 1:5; the last matching rule wins. Exactly one program left.
  const before = attached();
  installDeviceFilter(bpf, dir, [
    { allow: true, access: 'rwm' },
    { allow: false, type: 'c', major: 1, minor: 5, access: 'rwm' },
  ]);
  const after = attached();
  assert.equal(after.length, 1);
  assert.notDeepEqual(after, before, 'the program was replaced');
  // This kernel (5.6+) swaps it in one step: no moment with zero or two programs.
  assert.deepEqual(attachFlags, [BPF_F_ALLOW_MULTI, BPF_F_ALLOW_MULTI | BPF_F_REPLACE]);
  assert.deepEqual(await probe(dir, opens), ['ok', 'ok', 'EPERM', 'EPERM', 'ok', 'ok']);
});

test('v2 manager on this cgroup2 mount: device rules at create, replaced by an update, gone with the group', { skip }, async (t) => {
  // Only the cgroup2 line of mountinfo: the manager sees a pure v2 host and takes its v2 path.
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => / - cgroup2 /.test(l))!;
  const manager = await createCgroupManager({ mountinfo: `${line}\n` });
  assert.equal(manager.version, 2);
  const name = `${PREFIX}${randomBytes(3).toString('hex')}`;
  const g = await manager.create(name, {
    // What the engine sends for a plain container: deny all, Docker's defaults, one --device.
    devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', access: 'm' },
      { allow: true, type: 'b', access: 'm' },
      { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 7, access: 'r' },
    ],
  });
  t.after(async () => {
    await g.destroy({ kill: true });
    assert.deepEqual(leaks(), [], 'cgroup directory left behind');
  });
  assert.deepEqual(g.warnings, []);
  const dir = g.paths()['unified']!;
  assert.deepEqual(await probe(dir, [['/dev/null', 'r'], ['/dev/zero', 'r+'], ['/dev/full', 'r'], ['/dev/full', 'r+']]), ['EPERM', 'ok', 'ok', 'EPERM']);
  // berth update --privileged-like: allow everything now.
  assert.deepEqual(await g.apply({ devices: [{ allow: true, access: 'rwm' }] }), []);
  assert.deepEqual(await probe(dir, [['/dev/null', 'r'], ['/dev/zero', 'r+'], ['/dev/full', 'r'], ['/dev/full', 'r+']]), ['ok', 'ok', 'ok', 'ok']);
});
