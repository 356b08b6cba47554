import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OciSeccomp } from '@berth/native';
import { RecordingSyscalls } from '@berth/native/testing';
import { SeccompCache, seccompProfileHash } from './index.js';

/** A compiler fake whose program encodes how many compilations happened before. */
function countingCompiler(): RecordingSyscalls {
  const sys = new RecordingSyscalls();
  let n = 0;
  sys.respond('compileSeccompDetailed', () => ({ bpf: Buffer.alloc(8, ++n), skipped: ['nope'], sameAsDefault: [] }));
  return sys;
}

const a: OciSeccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] };
const aReordered: OciSeccomp = { syscalls: [{ args: [{ op: 'SCMP_CMP_EQ', value: 2n ** 64n - 1n, index: 0 }], action: 'SCMP_ACT_ALLOW', names: ['read'] }], defaultAction: 'SCMP_ACT_ERRNO' };
const b: OciSeccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['write'], action: 'SCMP_ACT_ALLOW' }] };

test('the profile hash ignores key order and the spelling of 64-bit values, and tells profiles apart', () => {
  assert.match(seccompProfileHash(a), /^sha256:[0-9a-f]{64}$/);
  assert.equal(seccompProfileHash(a), seccompProfileHash(aReordered));
  assert.notEqual(seccompProfileHash(a), seccompProfileHash(b));
  assert.notEqual(seccompProfileHash(a), seccompProfileHash({ ...a, defaultErrnoRet: 38 }));
  assert.notEqual(
    seccompProfileHash({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['a', 'b'], action: 'SCMP_ACT_LOG' }] }),
    seccompProfileHash({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['b', 'a'], action: 'SCMP_ACT_LOG' }] }),
    'array order is kept',
  );
});

test('SeccompCache compiles each distinct profile once', () => {
  const sys = countingCompiler();
  const cache = new SeccompCache(sys);
  const first = cache.program(a);
  assert.deepEqual(first.bpf, Buffer.alloc(8, 1));
  assert.deepEqual(first.skipped, ['nope']);
  assert.equal(first.hash, seccompProfileHash(a));
  assert.deepEqual(cache.bpf(aReordered), Buffer.alloc(8, 1));
  assert.deepEqual(cache.bpf(b), Buffer.alloc(8, 2));
  assert.deepEqual(cache.bpf(a), Buffer.alloc(8, 1));
  assert.equal(sys.callsTo('compileSeccompDetailed').length, 2);
  assert.equal(cache.size, 2);
});

test('callers get copies: changing a returned program does not change the cache', () => {
  const cache = new SeccompCache(countingCompiler());
  cache.bpf(a).fill(0xee);
  assert.deepEqual(cache.bpf(a), Buffer.alloc(8, 1));
});

test('SeccompCache drops the least recently used program beyond maxEntries', () => {
  const sys = countingCompiler();
  const cache = new SeccompCache(sys, { maxEntries: 2 });
  const c: OciSeccomp = { defaultAction: 'SCMP_ACT_KILL' };
  cache.bpf(a);
  cache.bpf(b);
  cache.bpf(a); // a is now the most recent
  cache.bpf(c); // evicts b
  assert.equal(cache.size, 2);
  assert.equal(sys.callsTo('compileSeccompDetailed').length, 3);
  cache.bpf(a);
  assert.equal(sys.callsTo('compileSeccompDetailed').length, 3, 'a stayed');
  cache.bpf(b);
  assert.equal(sys.callsTo('compileSeccompDetailed').length, 4, 'b was compiled again');
  assert.throws(() => new SeccompCache(sys, { maxEntries: 0 }), RangeError);
});

test('a compile failure is not cached', () => {
  const sys = new RecordingSyscalls().failOn('compileSeccompDetailed', 'EINVAL');
  const cache = new SeccompCache(sys);
  assert.throws(() => cache.bpf(a), { code: 'EINVAL' });
  assert.throws(() => cache.bpf(a), { code: 'EINVAL' });
  assert.equal(cache.size, 0);
  assert.equal(sys.callsTo('compileSeccompDetailed').length, 2);
});
