import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodePlan, emptyPlan, type InitPlan } from './plan.js';

const golden = fileURLToPath(new URL('../../test/golden/plan-v1.hex', import.meta.url));

function samplePlan(): InitPlan {
  return {
    ...emptyPlan(),
    nsFlags: 0x20000 | 0x4000000,
    nsJoin: [{ type: 0x40000000, path: '/run/netns/x' }],
    cgroupProcs: ['/sys/fs/cgroup/pids/berth/c1/cgroup.procs'],
    pidFile: '/run/berth/c1/init.pid',
    rootfs: '/b/rootfs',
    steps: [
      { kind: 'mount', source: 'proc', destination: '/proc', fstype: 'proc', flags: 14, propagation: 0, data: null, create: 'dir', remount: 0, noSymlinks: true },
      { kind: 'mknod', destination: '/dev/null', mode: 0o20666, major: 1, minor: 3, uid: 0, gid: 0 },
      { kind: 'symlink', target: 'pts/ptmx', destination: '/dev/ptmx' },
    ],
    maskedPaths: ['/proc/kcore'],
    readonlyPaths: ['/proc/sys'],
    sysctls: [['net.ipv4.ip_forward', '1']],
    hostname: 'box',
    cwd: '/',
    args: ['sh', '-c', 'true'],
    env: ['PATH=/bin'],
    uid: 1000,
    gid: 1000,
    additionalGids: [10],
    rlimits: [{ type: 7, soft: 1024n, hard: 4096n }],
    capabilities: { bounding: 0xa80425fbn, effective: 0xa80425fbn, permitted: 0xa80425fbn, inheritable: 0n, ambient: 0n },
    seccomp: Buffer.from('0600000000000000', 'hex'),
    startFifo: '/run/berth/c1/exec.fifo',
    reaper: true,
  };
}

test('the plan header is magic, version 1 and the body length', () => {
  const bytes = encodePlan(samplePlan());
  assert.equal(bytes.subarray(0, 8).toString('latin1'), 'BRTHPLAN');
  assert.equal(bytes.readUInt32LE(8), 1);
  assert.equal(bytes.readUInt32LE(12), bytes.length - 16);
  // First record: T_MODE (1), 4 bytes, 0 = create.
  assert.deepEqual([...bytes.subarray(16, 26)], [1, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
});

test('plan bytes match the golden file (berth-init reads exactly these)', () => {
  const hex = encodePlan(samplePlan()).toString('hex');
  if (!existsSync(golden) && process.env.BERTH_UPDATE_GOLDEN === '1') writeFileSync(golden, hex + '\n');
  assert.equal(hex, readFileSync(golden, 'utf8').trim());
});

test('a NUL byte in an argument is refused rather than truncated', () => {
  assert.throws(() => encodePlan({ ...samplePlan(), args: ['sh', 'a\0b'] }), /args\[1\] contains a NUL byte/);
});

test('ids are never truncated: 2^32 and (uid_t)-1 are refused, naming the field', () => {
  for (const [over, re] of [
    [{ uid: 4294967296 }, /process\.user\.uid: 4294967296 is not an integer in 0\.\.4294967294/],
    [{ uid: 4294967295 }, /process\.user\.uid: /],
    [{ gid: -1 }, /process\.user\.gid: /],
    [{ additionalGids: [1, 2 ** 32] }, /process\.user\.additionalGids\[1\]: /],
  ] as const) {
    assert.throws(() => encodePlan({ ...emptyPlan(), args: ['x'], ...over } as InitPlan), re);
  }
  // Any other u32 record refuses what it cannot carry instead of wrapping it.
  assert.throws(() => encodePlan({ ...emptyPlan(), args: ['x'], nsFlags: 2 ** 32 }), /not an integer in 0\.\.4294967295/);
  const max = encodePlan({ ...emptyPlan(), args: ['x'], uid: 4294967294, gid: 4294967294 });
  assert.ok(max.includes(Buffer.from([33, 0, 4, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff])));
});
