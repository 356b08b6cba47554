import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectLayout, parseMountinfo, parseProcCgroups } from './detect.js';

// Captured from the development host (Debian 12, kernel 6.18): one v1 hierarchy per
// controller, name=systemd, and a cgroup2 mount at /sys/fs/cgroup/unified.
const HOST_MOUNTINFO = `22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334492k,nr_inodes=3083623,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684092k
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
28 27 0:25 / /mnt/sandboxing/model_tools_env/v1/python ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755
29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684092k
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

const HOST_PROC_CGROUPS = `#subsys_name	hierarchy	num_cgroups	enabled
cpuset	3	1	1
cpu	1	1	1
cpuacct	2	1	1
blkio	7	1	1
memory	4	50	1
devices	5	1	1
freezer	6	1	1
net_cls	0	1	1
perf_event	0	1	1
net_prio	0	1	1
hugetlb	0	1	1
pids	8	1	1
`;

// A systemd host booted with the unified hierarchy only.
const V2_MOUNTINFO = `24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 24 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

// An older systemd v1 host: cpu and cpuacct co-mounted, xattr on name=systemd, hybrid with an
// empty cgroup2 mount.
const COMOUNT_MOUNTINFO = `30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio
37 30 0:33 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,memory
38 30 0:34 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,cpuset,clone_children
39 99 0:33 / /mnt/memory-again rw,relatime - cgroup cgroup rw,memory
`;

test('parseMountinfo reads every field of the host capture', () => {
  const entries = parseMountinfo(HOST_MOUNTINFO);
  assert.equal(entries.length, 20);
  const systemd = entries.find((e) => e.mountPoint === '/sys/fs/cgroup/systemd');
  assert.deepEqual(systemd, {
    id: 40,
    parentId: 31,
    device: '0:37',
    root: '/',
    mountPoint: '/sys/fs/cgroup/systemd',
    mountOptions: ['rw', 'relatime'],
    optionalFields: [],
    fsType: 'cgroup',
    source: 'cgroup',
    superOptions: ['rw', 'name=systemd'],
  });
  const withOptional = parseMountinfo(V2_MOUNTINFO)[2]!;
  assert.deepEqual(withOptional.optionalFields, ['shared:9']);
  assert.equal(withOptional.fsType, 'cgroup2');
});

test('parseMountinfo unescapes octal escapes in paths', () => {
  const [e] = parseMountinfo('50 24 0:40 /a\\040b /mnt/with\\040space\\011tab rw - tmpfs none rw\n');
  assert.equal(e!.mountPoint, '/mnt/with space\ttab');
  assert.equal(e!.root, '/a b');
});

test('parseProcCgroups reads the host capture', () => {
  const rows = parseProcCgroups(HOST_PROC_CGROUPS);
  assert.equal(rows.length, 12);
  assert.deepEqual(rows.find((r) => r.name === 'hugetlb'), { name: 'hugetlb', hierarchy: 0, numCgroups: 1, enabled: true });
  assert.deepEqual(rows.find((r) => r.name === 'memory'), { name: 'memory', hierarchy: 4, numCgroups: 50, enabled: true });
});

test('the development host is hybrid: nine v1 hierarchies incl. name=systemd, cgroup2 with hugetlb', () => {
  const layout = detectLayout({ mountinfo: HOST_MOUNTINFO, procCgroups: HOST_PROC_CGROUPS, unifiedControllers: 'hugetlb\n' });
  assert.equal(layout.mode, 'hybrid');
  if (layout.mode !== 'hybrid') return;
  assert.deepEqual(
    layout.hierarchies.map((h) => [h.mountPoint, h.controllers.join(',')]),
    [
      ['/sys/fs/cgroup/cpu', 'cpu'],
      ['/sys/fs/cgroup/cpuacct', 'cpuacct'],
      ['/sys/fs/cgroup/cpuset', 'cpuset'],
      ['/sys/fs/cgroup/memory', 'memory'],
      ['/sys/fs/cgroup/devices', 'devices'],
      ['/sys/fs/cgroup/freezer', 'freezer'],
      ['/sys/fs/cgroup/blkio', 'blkio'],
      ['/sys/fs/cgroup/pids', 'pids'],
      ['/sys/fs/cgroup/systemd', 'name=systemd'],
    ],
  );
  assert.deepEqual(layout.unified, { mountPoint: '/sys/fs/cgroup/unified', root: '/', controllers: ['hugetlb'] });
});

test('the same host without its cgroup2 mount is plain v1', () => {
  const mountinfo = HOST_MOUNTINFO.split('\n').filter((l) => !l.includes('cgroup2')).join('\n');
  const layout = detectLayout({ mountinfo, procCgroups: HOST_PROC_CGROUPS });
  assert.equal(layout.mode, 'v1');
  assert.equal(layout.mode === 'v1' && layout.hierarchies.length, 9);
});

test('a unified-only host is v2 with the controllers of its root', () => {
  const layout = detectLayout({ mountinfo: V2_MOUNTINFO, unifiedControllers: 'cpuset cpu io memory hugetlb pids rdma misc\n' });
  assert.deepEqual(layout, {
    mode: 'v2',
    unified: { mountPoint: '/sys/fs/cgroup', root: '/', controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'] },
  });
});

test('co-mounted controllers stay one hierarchy; mount options are not controllers; a second mount of a hierarchy is ignored', () => {
  const layout = detectLayout({ mountinfo: COMOUNT_MOUNTINFO });
  assert.equal(layout.mode, 'hybrid');
  if (layout.mode !== 'hybrid') return;
  assert.deepEqual(
    layout.hierarchies.map((h) => [h.mountPoint, h.controllers]),
    [
      ['/sys/fs/cgroup/systemd', ['name=systemd']],
      ['/sys/fs/cgroup/cpu,cpuacct', ['cpu', 'cpuacct']],
      ['/sys/fs/cgroup/net_cls,net_prio', ['net_cls', 'net_prio']],
      ['/sys/fs/cgroup/memory', ['memory']],
      ['/sys/fs/cgroup/cpuset', ['cpuset']],
    ],
  );
  assert.deepEqual(layout.unified.controllers, []);
});

test('with /proc/cgroups, a disabled subsystem is not a controller', () => {
  const procCgroups = '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\ncpuacct\t1\t1\t0\n';
  const layout = detectLayout({ mountinfo: '35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n', procCgroups });
  assert.deepEqual(layout.mode === 'v1' && layout.hierarchies[0]!.controllers, ['cpu']);
});

test('a lone name=systemd v1 hierarchy beside cgroup2 does not make a host v1', () => {
  const mountinfo = `${V2_MOUNTINFO}40 25 0:37 / /run/systemd/cgroup rw - cgroup cgroup rw,xattr,name=systemd\n`;
  assert.equal(detectLayout({ mountinfo }).mode, 'v2');
});

test('no cgroup filesystem at all is a BERTH_CGROUP error', () => {
  assert.throws(() => detectLayout({ mountinfo: '27 1 254:0 / / rw - ext4 /dev/vda rw\n' }), { code: 'BERTH_CGROUP' });
});
