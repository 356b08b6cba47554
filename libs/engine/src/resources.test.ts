import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseHostConfig } from './config.js';
import { parseCpuList, validateHostResources, type HostFacts } from './resources.js';

const V1: HostFacts = { ncpu: 2, cpus: '0-1', mems: '0', cgroupV2: false };
const V2: HostFacts = { ...V1, cgroupV2: true };
const MiB = 1024 * 1024;
// normaliseHostConfig checks against this host; validateHostResources against the facts given.
const h = (raw: Record<string, unknown>): ReturnType<typeof normaliseHostConfig> => ({ ...normaliseHostConfig({}), ...raw }) as ReturnType<typeof normaliseHostConfig>;

test('resources: --cpus outside 0..NCPU gets Docker range message', () => {
  // 1e6 is --cpus 0.001: under 0.01 a quota would be under the kernel's 1 ms minimum.
  for (const n of [-1e9, 3e9, 1e6, 9_999_999]) {
    assert.throws(() => validateHostResources(h({ NanoCpus: n }), V1), { message: 'range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available' });
  }
  validateHostResources(h({ NanoCpus: 2e9 }), V1);
  validateHostResources(h({ NanoCpus: 1e7 }), V1);
  validateHostResources(h({ NanoCpus: 0 }), V1);
});

test('resources: cpuset cpus and mems must be online', () => {
  assert.throws(() => validateHostResources(h({ CpusetCpus: '99' }), V1), { message: 'Requested CPUs are not available - requested 99, available: 0-1' });
  assert.throws(() => validateHostResources(h({ CpusetMems: '1' }), V1), { message: 'Requested memory nodes are not available - requested 1, available: 0' });
  validateHostResources(h({ CpusetCpus: '0,1', CpusetMems: '0' }), V1);
  assert.deepEqual([...parseCpuList('0-2,5')!], [0, 1, 2, 5]);
  assert.equal(parseCpuList('3-1'), null);
});

test('resources: kernel memory is refused on cgroup v2, needs 4MB on v1', () => {
  assert.throws(() => validateHostResources(h({ KernelMemory: 8 * MiB }), V2), /kernel memory limit \(--kernel-memory\) is not supported on cgroup v2/);
  assert.throws(() => validateHostResources(h({ KernelMemory: MiB }), V1), /Minimum kernel memory limit allowed is 4MB/);
  validateHostResources(h({ KernelMemory: 8 * MiB }), V1);
});

test('resources: devices must exist; rules and rates must be well formed', () => {
  assert.throws(
    () => validateHostResources(h({ Devices: [{ PathOnHost: '/dev/no-such-device-here', PathInContainer: '', CgroupPermissions: 'rwm' }] }), V1),
    { message: 'error gathering device information while adding custom device "/dev/no-such-device-here": no such file or directory' },
  );
  assert.throws(() => validateHostResources(h({ Devices: [{ PathOnHost: '/etc/hostname', PathInContainer: '', CgroupPermissions: '' }] }), V1), /not a device node/);
  assert.throws(() => validateHostResources(h({ Devices: [{ PathOnHost: '/dev/null', PathInContainer: '', CgroupPermissions: 'rwx' }] }), V1), /invalid device mode: rwx/);
  validateHostResources(h({ Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/n2', CgroupPermissions: 'r' }] }), V1);
  assert.throws(() => validateHostResources(h({ DeviceCgroupRules: ['c 1:3 rwx'] }), V1), { message: "invalid device cgroup rule format: 'c 1:3 rwx'" });
  validateHostResources(h({ DeviceCgroupRules: ['c *:* m', 'b 8:0 rw'] }), V1);
  assert.throws(() => validateHostResources(h({ BlkioDeviceReadBps: [{ Path: '/dev/null', Rate: 1 }] }), V1), /\/dev\/null is not a block device/);
  assert.throws(() => validateHostResources(h({ MemoryReservation: MiB }), V1), /Minimum memory reservation allowed is 6MB/);
  assert.throws(() => validateHostResources(h({ Memory: 8 * MiB, MemoryReservation: 16 * MiB }), V1), /memory reservation/);
});

test('resources: --device and --device-cgroup-rule become nodes and device cgroup rules of the spec', async () => {
  const { hostResources } = await import('./resources.js');
  const { linuxResources } = await import('./oci-spec.js');
  const host = h({ Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/mynull', CgroupPermissions: 'rw' }], DeviceCgroupRules: ['c 10:* rwm'], KernelMemory: 8 * MiB });
  const r = hostResources(host);
  assert.deepEqual(r.devices.map((d) => [d.type, d.path, d.major, d.minor]), [['c', '/dev/mynull', 1, 3]]);
  assert.deepEqual(r.deviceRules, [
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' },
    { allow: true, type: 'c', major: 10, minor: null, access: 'rwm' },
  ]);
  const res = linuxResources(host, r);
  assert.deepEqual(res.devices, [{ allow: false, access: 'rwm' }, ...r.deviceRules]);
  assert.deepEqual(res.memory, { kernel: 8 * MiB });
  assert.deepEqual(linuxResources(h({ NanoCpus: 5e8, BlkioWeight: 300 })).cpu, { period: 100000, quota: 50000 });
  assert.deepEqual(linuxResources(h({ BlkioWeight: 300 })).blockIO, { weight: 300 });
});
