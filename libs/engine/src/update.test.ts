import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseHostConfig } from './config.js';
import { changedResources, mergeUpdate } from './update.js';

const ID = 'a'.repeat(64);
const MiB = 1024 * 1024;

test('update: zero and empty fields keep the current values; given ones replace them', () => {
  const cur = normaliseHostConfig({ Memory: 32 * MiB, CpuShares: 512, CpusetCpus: '0' });
  const next = mergeUpdate(ID, cur, { Memory: 0, CpuShares: 0, CpusetCpus: '', PidsLimit: 10, BlkioWeight: 300 });
  assert.equal(next.Memory, 32 * MiB);
  assert.equal(next.CpuShares, 512);
  assert.equal(next.CpusetCpus, '0');
  assert.equal(next.PidsLimit, 10);
  assert.equal(next.BlkioWeight, 300);
  assert.equal(mergeUpdate(ID, cur, { PidsLimit: 0 }).PidsLimit, -1, 'PidsLimit 0 means unlimited');
});

test('update: memory above the memory+swap already set is refused with Docker wording; with swap it is taken', () => {
  const cur = normaliseHostConfig({ Memory: 32 * MiB });
  assert.throws(
    () => mergeUpdate(ID, cur, { Memory: 100 * MiB }),
    (e: Error) => e.message === `Cannot update container ${ID}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time`,
  );
  // Under the implied swap (twice the first limit): taken, and the swap stays where it was.
  const grown = mergeUpdate(ID, cur, { Memory: 48 * MiB });
  assert.equal(grown.Memory, 48 * MiB);
  assert.equal(grown.MemorySwap, 64 * MiB);
  const both = mergeUpdate(ID, cur, { Memory: 100 * MiB, MemorySwap: 200 * MiB });
  assert.deepEqual([both.Memory, both.MemorySwap], [100 * MiB, 200 * MiB]);
  // No memory limit before: no swap to compare with.
  assert.equal(mergeUpdate(ID, normaliseHostConfig({}), { Memory: 100 * MiB }).Memory, 100 * MiB);
});

test('update: NanoCpus and CPU period/quota exclude each other across updates, as in Docker', () => {
  const nano = normaliseHostConfig({ NanoCpus: 5e8 });
  assert.throws(() => mergeUpdate(ID, nano, { CpuQuota: 20000 }), /CPU Quota cannot be updated as NanoCPUs has already been set/);
  assert.throws(() => mergeUpdate(ID, nano, { CpuPeriod: 20000 }), /CPU Period cannot be updated as NanoCPUs has already been set/);
  const quota = normaliseHostConfig({ CpuQuota: 50000 });
  assert.throws(() => mergeUpdate(ID, quota, { NanoCpus: 1e9 }), /Nano CPUs cannot be updated as CPU Quota has already been set/);
  assert.equal(mergeUpdate(ID, nano, { NanoCpus: 1e9 }).NanoCpus, 1e9);
});

test('update: restart policy is replaced when named; AutoRemove keeps it', () => {
  const cur = normaliseHostConfig({});
  assert.deepEqual(mergeUpdate(ID, cur, { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 } }).RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.deepEqual(mergeUpdate(ID, cur, { RestartPolicy: { Name: '' } }).RestartPolicy, cur.RestartPolicy);
  const rm = normaliseHostConfig({ AutoRemove: true });
  assert.throws(() => mergeUpdate(ID, rm, { RestartPolicy: { Name: 'always' } }), /Restart policy cannot be updated because AutoRemove is enabled for the container/);
});

test('update: the merged result is checked like a create (Docker wording)', () => {
  const cur = normaliseHostConfig({});
  assert.throws(() => normaliseHostConfig(mergeUpdate(ID, cur, { BlkioWeight: 5 })), /Range of blkio weight is from 10 to 1000/);
  assert.throws(() => normaliseHostConfig(mergeUpdate(ID, cur, { Memory: 1024 })), /Minimum memory limit allowed is 6MB/);
  assert.throws(() => normaliseHostConfig(mergeUpdate(ID, cur, { CpusetCpus: '4096' })), /Requested CPUs are not available - requested 4096/);
});

test('update: only the changed sections are written; a quota or shares taken away go back to the defaults', () => {
  const a = normaliseHostConfig({ Memory: 32 * MiB, CpuQuota: 50000, PidsLimit: 10 });
  assert.deepEqual(changedResources(a, { ...a, Memory: 48 * MiB, MemorySwap: 64 * MiB }), { memory: { limit: 48 * MiB, swap: 64 * MiB } });
  assert.deepEqual(changedResources(a, { ...a, CpuQuota: 0 }), { cpu: { quota: -1 } });
  assert.deepEqual(changedResources(a, { ...a, PidsLimit: -1 }), { pids: { limit: -1 } });
  assert.deepEqual(changedResources(a, a), {});
  const shares = normaliseHostConfig({ CpuShares: 512 });
  assert.deepEqual(changedResources(shares, { ...shares, CpuShares: 0 }), { cpu: { shares: 1024 } });
  assert.deepEqual(changedResources(a, { ...a, NanoCpus: 1e9, CpuQuota: 0 }), { cpu: { period: 100000, quota: 100000 } });
});
