import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProbeMount } from '@berth/test-support';
import { capMask, namespacesDifferingFromHost, normaliseCgroupLines, normaliseDev, normaliseMounts } from './normalise.js';

const m = (mountPoint: string, fstype: string, source: string, root: string, options: string, superOptions: string): ProbeMount => ({
  mountPoint, fstype, source, root, options: options.split(','), superOptions: superOptions.split(','), propagation: [],
});

const masked = ['/proc/keys', '/sys/firmware'];

// Rows as runc 1.1.5 and crun 1.8.1 showed them on this host for runc's default spec.
const runc = [
  m('/', 'ext4', '/dev/vda', '/tmp/b1/rootfs', 'ro,relatime', 'rw,discard'),
  m('/dev', 'tmpfs', 'tmpfs', '/', 'rw,nosuid', 'rw,size=65536k,mode=755'),
  m('/sys', 'sysfs', 'sysfs', '/', 'ro,nosuid,nodev,noexec,relatime', 'ro'),
  m('/sys/fs/cgroup', 'tmpfs', 'tmpfs', '/', 'rw,nosuid,nodev,noexec,relatime', 'rw,mode=755'),
  m('/sys/fs/cgroup/cpu', 'cgroup', 'cgroup', '/c1', 'ro,nosuid,nodev,noexec,relatime', 'rw,cpu'),
  m('/sys/fs/cgroup/pids', 'cgroup', 'cgroup', '/c1', 'ro,nosuid,nodev,noexec,relatime', 'rw,pids'),
  m('/proc/sys', 'proc', 'proc', '/sys', 'ro,relatime', 'rw'),
  m('/proc/keys', 'tmpfs', 'tmpfs', '/null', 'rw,nosuid', 'rw,size=65536k,mode=755'),
  m('/sys/firmware', 'tmpfs', 'tmpfs', '/', 'ro,relatime', 'ro'),
];
const crun = [
  m('/', 'ext4', '/dev/vda', '/tmp/b2/rootfs', 'ro,relatime', 'rw,discard'),
  m('/dev', 'tmpfs', 'tmpfs', '/', 'rw,nosuid', 'rw,size=65536k,mode=755'),
  m('/sys', 'sysfs', 'sysfs', '/', 'ro,nosuid,nodev,noexec,relatime', 'rw'),
  m('/sys/fs/cgroup', 'tmpfs', 'cgroup', '/', 'rw,nosuid,nodev,noexec,relatime', 'rw,size=1024k'),
  m('/sys/fs/cgroup/pids', 'cgroup', 'cgroup', '/c2', 'ro,nosuid,nodev,noexec,relatime', 'rw,pids'),
  m('/sys/fs/cgroup/cpu', 'cgroup', 'cgroup', '/c2', 'ro,nosuid,nodev,noexec,relatime', 'rw,cpu'),
  m('/proc/keys', 'devtmpfs', 'devtmpfs', '/null', 'ro,relatime', 'rw,size=12334492k,nr_inodes=3083623,mode=755'),
  m('/sys/firmware', 'tmpfs', 'tmpfs', '/', 'ro,relatime', 'rw,size=0k'),
  m('/proc/sys', 'proc', 'proc', '/sys', 'ro,relatime', 'rw'),
];

test('runc\'s and crun\'s mount tables for the same spec normalise to the same list', () => {
  const a = normaliseMounts(runc, { rootfs: '/tmp/b1/rootfs', cgroupsPath: '/c1', maskedPaths: masked });
  const b = normaliseMounts(crun, { rootfs: '/tmp/b2/rootfs', cgroupsPath: '/c2', maskedPaths: masked });
  assert.deepEqual(a, b);
  assert.deepEqual(a.map((x) => x.mountPoint), ['/', '/dev', '/proc/keys', '/proc/sys', '/sys', '/sys/firmware', '/sys/fs/cgroup', '/sys/fs/cgroup/cpu', '/sys/fs/cgroup/pids']);
  assert.equal(a[0]!.root, '<rootfs>');
  assert.equal(a.find((x) => x.mountPoint === '/sys/fs/cgroup/cpu')!.root, '<cgroupsPath>');
});

test('normalising keeps real differences: a missing per-mount flag, another size, another fstype', () => {
  const ctx = { rootfs: '/r', maskedPaths: masked };
  const base = normaliseMounts([m('/dev/shm', 'tmpfs', 'shm', '/', 'rw,nosuid,nodev,noexec', 'rw,size=65536k')], ctx);
  assert.notDeepEqual(normaliseMounts([m('/dev/shm', 'tmpfs', 'shm', '/', 'rw,nosuid,nodev', 'rw,size=65536k')], ctx), base);
  assert.notDeepEqual(normaliseMounts([m('/dev/shm', 'tmpfs', 'shm', '/', 'rw,nosuid,nodev,noexec', 'rw,size=1024k')], ctx), base);
  assert.notDeepEqual(normaliseMounts([m('/dev/shm', 'ramfs', 'shm', '/', 'rw,nosuid,nodev,noexec', 'rw,size=65536k')], ctx), base);
  // A masked directory must still be read-only per mount.
  const ro = normaliseMounts([m('/sys/firmware', 'tmpfs', 'tmpfs', '/', 'ro,relatime', 'ro')], ctx);
  assert.notDeepEqual(normaliseMounts([m('/sys/firmware', 'tmpfs', 'tmpfs', '/', 'rw,relatime', 'rw')], ctx), ro);
});

test('only crun\'s own /dev/core link is dropped from /dev', () => {
  const dev = [
    { path: '/dev/core', type: 'symlink', mode: '0777', uid: 0, gid: 0, target: '/proc/kcore' },
    { path: '/dev/null', type: 'char', mode: '0666', uid: 0, gid: 0, device: '1:3' },
  ];
  assert.deepEqual(normaliseDev(dev, 'crun').map((d) => d.path), ['/dev/null']);
  assert.deepEqual(normaliseDev(dev, 'runc').map((d) => d.path), ['/dev/core', '/dev/null']);
  assert.deepEqual(normaliseDev(dev, 'berth').map((d) => d.path), ['/dev/core', '/dev/null']);
});

test('cgroup lines lose only the cgroup2 line', () => {
  assert.deepEqual(normaliseCgroupLines(['1:cpu:/x', '0::/x', '']), ['1:cpu:/x']);
});

test('namespaces are compared by whether they differ from the host', () => {
  assert.deepEqual(namespacesDifferingFromHost({ pid: 'pid:[2]', net: 'net:[1]' }, { net: 'net:[1]', pid: 'pid:[1]' }), { net: false, pid: true });
});

test('capMask: Docker\'s 14 defaults are 00000000a80425fb; unknown names are refused', () => {
  const docker = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];
  assert.equal(capMask(docker), '00000000a80425fb');
  assert.equal(capMask([]), '0000000000000000');
  assert.throws(() => capMask(['CAP_NOPE']), /CAP_NOPE/);
});
