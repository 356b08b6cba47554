import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeCgroupPath } from './path.js';

const V1_ROOTS = ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/unified'];

test('relative and OCI-absolute paths name the same group', () => {
  assert.equal(normalizeCgroupPath('berth/abc', V1_ROOTS), 'berth/abc');
  assert.equal(normalizeCgroupPath('/berth/abc', V1_ROOTS), 'berth/abc');
  assert.equal(normalizeCgroupPath('/berth/abc/', V1_ROOTS), 'berth/abc');
});

test('a filesystem path under a root is made relative to it', () => {
  assert.equal(normalizeCgroupPath('/sys/fs/cgroup/berth/abc', ['/sys/fs/cgroup']), 'berth/abc');
  assert.equal(normalizeCgroupPath('/sys/fs/cgroup/memory/berth/x', V1_ROOTS), 'berth/x');
});

test('paths with .. or outside the roots are refused with BERTH_INVALID_ARGUMENT', () => {
  for (const p of ['berth/../../etc', '../x', 'berth/./x', 'berth//x', '', '/', '/sys/fs/cgroup', '/sys/kernel/x', '/proc/1/x', '/sys/fs/cgroup/cpu/../memory/x']) {
    assert.throws(() => normalizeCgroupPath(p, p === '/sys/fs/cgroup' ? ['/sys/fs/cgroup'] : V1_ROOTS), { code: 'BERTH_INVALID_ARGUMENT' }, p);
  }
  assert.throws(() => normalizeCgroupPath('/sys/fs/other/x', V1_ROOTS), /outside the cgroup roots/);
});
