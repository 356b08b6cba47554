import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemError } from '@berth/errors';
import * as bpf from './bpf.js';
import { RecordingSyscalls } from './testing.js';

test('bpf constants equal those of <linux/bpf.h>', (t) => {
  const dir = mkdtempSync(join(tmpdir(), `berth-bpf-consts-${process.pid}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const names = Object.keys(bpf);
  writeFileSync(
    join(dir, 'c.c'),
    ['#include <stdio.h>', '#include <linux/bpf.h>', 'int main(void) {', ...names.map((n) => `  printf("%s %u\\n", "${n}", (unsigned)(${n}));`), '  return 0;', '}'].join('\n'),
  );
  execFileSync('gcc', ['-o', join(dir, 'c'), join(dir, 'c.c')], { stdio: 'pipe' });
  const fromC = Object.fromEntries(
    execFileSync(join(dir, 'c'), { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([n, v]) => [n!, Number(v)]),
  );
  assert.deepEqual({ ...bpf }, fromC);
});

test('RecordingSyscalls: bpf programs are loaded, attached, queried, replaced and detached per target fd', () => {
  const sys = new RecordingSyscalls();
  const a = sys.bpfProgLoadCgroupDevice(Buffer.from('aaaaaaaa'), 'Apache');
  const b = sys.bpfProgLoadCgroupDevice(Buffer.from('bbbbbbbb'), 'Apache');
  sys.bpfProgAttach(a, 7, bpf.BPF_CGROUP_DEVICE, bpf.BPF_F_ALLOW_MULTI);
  assert.deepEqual(sys.bpfProgQuery(7, bpf.BPF_CGROUP_DEVICE).progIds, [1]);
  assert.deepEqual(sys.bpfProgQuery(8, bpf.BPF_CGROUP_DEVICE).progIds, []);
  const again = sys.bpfProgGetFdById(1);
  sys.bpfProgAttach(b, 7, bpf.BPF_CGROUP_DEVICE, bpf.BPF_F_ALLOW_MULTI | bpf.BPF_F_REPLACE, again);
  assert.deepEqual(sys.bpfAttached(7).map((x) => x.toString()), ['bbbbbbbb']);
  const bad = (code: string, syscall: string) => (e: unknown) => e instanceof SystemError && e.code === code && e.syscall === syscall;
  assert.throws(() => sys.bpfProgAttach(b, 7, bpf.BPF_CGROUP_DEVICE, bpf.BPF_F_ALLOW_MULTI), bad('EEXIST', 'bpf_prog_attach'));
  assert.throws(() => sys.bpfProgDetach(a, 7, bpf.BPF_CGROUP_DEVICE), bad('ENOENT', 'bpf_prog_detach'));
  assert.throws(() => sys.bpfProgGetFdById(99), bad('ENOENT', 'bpf_prog_get_fd_by_id'));
  assert.throws(() => sys.bpfProgAttach(4242, 7, bpf.BPF_CGROUP_DEVICE, 0), bad('EBADF', 'bpf_prog_attach'));
  sys.bpfProgDetach(b, 7, bpf.BPF_CGROUP_DEVICE);
  assert.deepEqual(sys.bpfAttached(7), []);
  sys.failOn('bpfProgLoadCgroupDevice', 'EPERM');
  assert.throws(() => sys.bpfProgLoadCgroupDevice(Buffer.alloc(8), 'GPL'), bad('EPERM', 'bpf_prog_load'));
  assert.deepEqual(sys.names().slice(0, 4), ['bpfProgLoadCgroupDevice', 'bpfProgLoadCgroupDevice', 'bpfProgAttach', 'bpfProgQuery']);
});
