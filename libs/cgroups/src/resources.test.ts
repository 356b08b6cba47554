import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blkioWeightToIoWeight, sharesToWeight, swapToV2, validateResources } from './resources.js';

test('shares convert to cpu.weight as runc does', () => {
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 39); // 1 + floor(1022*9999/262142 = 38.98)
  assert.equal(sharesToWeight(262144), 10000);
  assert.equal(sharesToWeight(512), 20);
});

test('blkio weight converts linearly to io.weight', () => {
  assert.equal(blkioWeightToIoWeight(10), 1);
  assert.equal(blkioWeightToIoWeight(1000), 10000);
  assert.equal(blkioWeightToIoWeight(500), 4950);
});

test('OCI memory+swap converts to v2 swap-only', () => {
  assert.equal(swapToV2(200, 100), '100');
  assert.equal(swapToV2(100, 100), '0');
  assert.equal(swapToV2(-1, 100), 'max');
  assert.equal(swapToV2(undefined, -1), 'max');
  assert.equal(swapToV2(undefined, 100), undefined);
  assert.throws(() => swapToV2(200, undefined), { code: 'BERTH_INVALID_ARGUMENT' });
  assert.throws(() => swapToV2(200, -1), /needs a memory limit/);
});

test('validation names the field at fault', () => {
  const cases: [unknown, RegExp][] = [
    [{ cpu: { shares: 1 } }, /resources\.cpu\.shares: 1 is out of range/],
    [{ cpu: { quota: 1.5 } }, /resources\.cpu\.quota: 1\.5 is not an integer/],
    [{ cpu: { cpus: '0-a' } }, /resources\.cpu\.cpus/],
    [{ memory: { limit: 100, swap: 50 } }, /resources\.memory\.swap: memory\+swap 50 is lower/],
    [{ memory: { limit: -1, swap: 50 } }, /resources\.memory\.swap/],
    [{ memory: { swappiness: 101 } }, /resources\.memory\.swappiness/],
    [{ blockIO: { weight: 5 } }, /resources\.blockIO\.weight/],
    [{ blockIO: { throttleReadBpsDevice: [{ major: 8, rate: 1 }] } }, /resources\.blockIO\.throttleReadBpsDevice\[0\]/],
    [{ devices: [{ allow: true, access: 'rwx' }] }, /resources\.devices\[0\]\.access/],
    [{ hugepageLimits: [{ pageSize: '2mb', limit: 1 }] }, /resources\.hugepageLimits\[0\]\.pageSize/],
    [{ unified: { '../../etc/passwd': 'x' } }, /resources\.unified/],
    [{ unified: { 'cgroup.procs': '1' } }, /resources\.unified/],
  ];
  for (const [r, re] of cases) assert.throws(() => validateResources(r as never), (e: Error & { code?: string }) => e.code === 'BERTH_INVALID_ARGUMENT' && re.test(e.message), JSON.stringify(r));
});

test('OCI sentinels are valid: 0 and -1 mean unset or unlimited', () => {
  validateResources({ cpu: { shares: 0, quota: -1, period: 0 }, memory: { limit: -1, swap: -1, reservation: 0 }, pids: { limit: -1 } });
  validateResources({ memory: { limit: 64 << 20, swap: 128 << 20, swappiness: 0, disableOOMKiller: true }, pids: { limit: 0 } });
});
