import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dockerDefaultCapabilities } from '@berth/runtime';
import { normaliseConfig, normaliseHostConfig, mergeImageConfig } from './config.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSpec, capabilitiesOfMask, containerCapabilities, dockerMaskedPaths, dockerReadonlyPaths, parseSecurityOpts, resolveUser, tmpfsOptions, type SpecInput } from './oci-spec.js';
import { cpuThermalThrottlePaths } from './resources.js';

const ID = 'abcdef0123456789'.repeat(4);

function input(over: { cfg?: Record<string, unknown>; host?: Record<string, unknown> } = {}): SpecInput {
  const cfg = mergeImageConfig(normaliseConfig({ Image: 'busybox', ...(over.cfg ?? {}) }), {
    Env: ['PATH=/usr/bin:/bin', 'IMG=1'], Cmd: ['sh'], WorkingDir: '',
  });
  return {
    id: ID, config: cfg, hostConfig: normaliseHostConfig(over.host as never), rootfs: '/r',
    files: { hostname: '/d/hostname', hosts: '/d/hosts', resolvConf: '/d/resolv.conf' },
    user: { uid: 0, gid: 0, additionalGids: [] }, seccomp: { defaultAction: 'SCMP_ACT_ERRNO' } as never, hostDevices: [{ type: 'c', path: '/dev/kvm', major: 10, minor: 232 }],
  };
}

test('default spec: Docker namespaces, caps, mounts, masked paths, cgroup path, seccomp', () => {
  const s = buildSpec(input());
  assert.deepEqual(s.process!.args, ['sh']);
  assert.equal(s.process!.cwd, '/');
  assert.equal(s.hostname, ID.slice(0, 12));
  assert.deepEqual(s.linux!.namespaces!.map((n) => n.type).sort(), ['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts']);
  assert.deepEqual(s.process!.capabilities!.bounding!.slice().sort(), [...dockerDefaultCapabilities].sort());
  assert.equal(s.linux!.cgroupsPath, `berth/${ID}`);
  assert.ok(s.linux!.maskedPaths!.includes('/proc/kcore'));
  assert.ok(s.linux!.readonlyPaths!.includes('/proc/sys'));
  assert.ok(s.linux!.seccomp);
  const shm = s.mounts!.find((m) => m.destination === '/dev/shm')!;
  assert.ok(shm.options!.includes('size=65536k'));
  assert.equal(s.mounts!.find((m) => m.destination === '/sys')!.options!.includes('ro'), true);
  for (const d of ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf']) assert.equal(s.mounts!.find((m) => m.destination === d)!.type, 'bind');
  assert.equal(s.root!.readonly, false);
  assert.deepEqual(s.process!.env, ['PATH=/usr/bin:/bin', `HOSTNAME=${ID.slice(0, 12)}`, 'IMG=1']);
  assert.equal(s.process!.noNewPrivileges, false);
});

test('env: -e overrides the image, TERM=xterm with a tty', () => {
  const s = buildSpec(input({ cfg: { Env: ['IMG=2', 'A=b'], Tty: true } }));
  assert.deepEqual(s.process!.env, ['PATH=/usr/bin:/bin', `HOSTNAME=${ID.slice(0, 12)}`, 'TERM=xterm', 'IMG=2', 'A=b']);
  assert.equal(s.process!.terminal, true);
});

test('entrypoint resets the image Cmd; Cmd alone keeps the image entrypoint', () => {
  const img = { Entrypoint: ['/ep'], Cmd: ['default'] };
  const a = mergeImageConfig(normaliseConfig({ Image: 'x', Entrypoint: ['/other'] }), img);
  assert.deepEqual([a.Entrypoint, a.Cmd], [['/other'], null]);
  const b = mergeImageConfig(normaliseConfig({ Image: 'x', Cmd: ['arg'] }), img);
  assert.deepEqual([b.Entrypoint, b.Cmd], [['/ep'], ['arg']]);
  const c = mergeImageConfig(normaliseConfig({ Image: 'x' }), img);
  assert.deepEqual([c.Entrypoint, c.Cmd], [['/ep'], ['default']]);
  const d = mergeImageConfig(normaliseConfig({ Image: 'x', Entrypoint: [''], Cmd: ['ls'] }), img);
  assert.deepEqual([d.Entrypoint, d.Cmd], [[''], ['ls']]);
});

test('privileged: all caps, host devices, no seccomp, no masked paths, rw sys', () => {
  const s = buildSpec(input({ host: { Privileged: true } }));
  assert.ok(s.process!.capabilities!.bounding!.includes('CAP_SYS_ADMIN'));
  assert.equal(s.linux!.seccomp, undefined);
  assert.deepEqual(s.linux!.maskedPaths, []);
  assert.deepEqual(s.linux!.readonlyPaths, []);
  assert.equal(s.linux!.devices!.length, 1);
  assert.deepEqual(s.linux!.resources!.devices, [{ allow: true, access: 'rwm' }]);
  assert.ok(s.mounts!.find((m) => m.destination === '/sys')!.options!.includes('rw'));
});

test('cap-add/cap-drop with and without CAP_, ALL', () => {
  assert.deepEqual(containerCapabilities({ CapAdd: ['sys_admin'], CapDrop: ['CAP_CHOWN', 'net_raw'], Privileged: false }).includes('CAP_SYS_ADMIN'), true);
  const caps = containerCapabilities({ CapAdd: ['sys_admin'], CapDrop: ['CAP_CHOWN', 'net_raw'], Privileged: false });
  assert.ok(!caps.includes('CAP_CHOWN') && !caps.includes('CAP_NET_RAW'));
  assert.deepEqual(containerCapabilities({ CapAdd: ['NET_ADMIN'], CapDrop: ['ALL'], Privileged: false }), ['CAP_NET_ADMIN']);
  assert.ok(containerCapabilities({ CapAdd: ['ALL'], CapDrop: ['MKNOD'], Privileged: false }).length > 30);
  assert.throws(() => containerCapabilities({ CapAdd: ['bogus'], CapDrop: null, Privileged: false }), /invalid CapAdd: unknown capability: "CAP_BOGUS"$/);
  assert.throws(() => containerCapabilities({ CapAdd: null, CapDrop: ['nope'], Privileged: false }), /invalid CapDrop: unknown capability: "CAP_NOPE"$/);
});

test('security opts: seccomp unconfined drops the profile, no-new-privileges', () => {
  const s = buildSpec(input({ host: { SecurityOpt: ['seccomp=unconfined', 'no-new-privileges'] } }));
  assert.equal(s.linux!.seccomp, undefined);
  assert.equal(s.process!.noNewPrivileges, true);
  assert.deepEqual(parseSecurityOpts(['seccomp=/x.json', 'no-new-privileges:false']), { seccomp: { kind: 'file', path: '/x.json' }, noNewPrivileges: false, unconfinedPaths: false });
  const open = buildSpec(input({ host: { SecurityOpt: ['systempaths=unconfined'] } }));
  assert.deepEqual([open.linux!.maskedPaths, open.linux!.readonlyPaths], [[], []], 'systempaths=unconfined: nothing masked or read-only');
  assert.ok(open.linux!.seccomp, 'seccomp stays');
  assert.throws(() => parseSecurityOpts(['systempaths=open']), /only "unconfined"/);
  assert.throws(() => parseSecurityOpts(['bogus']), /Invalid --security-opt/);
});

test('resources: memory, swap, nano cpus, cpuset, pids, blkio; CgroupParent', () => {
  const s = buildSpec(input({ host: { Memory: 64 << 20, MemorySwap: 128 << 20, NanoCpus: 1_500_000_000, CpusetCpus: '0', PidsLimit: 50, BlkioWeight: 300, CpuShares: 512, CgroupParent: 'mine' } }));
  const r = s.linux!.resources as Record<string, Record<string, unknown>>;
  assert.deepEqual(r.memory, { limit: 64 << 20, swap: 128 << 20 });
  assert.deepEqual(r.cpu, { shares: 512, period: 100000, quota: 150000, cpus: '0' });
  assert.deepEqual(r.pids, { limit: 50 });
  assert.deepEqual(r.blockIO, { weight: 300 });
  assert.equal(s.linux!.cgroupsPath, `mine/${ID}`);
  const q = buildSpec(input({ host: { CpuQuota: 50000, CpuPeriod: 100000 } }));
  assert.deepEqual((q.linux!.resources as Record<string, unknown>).cpu, { quota: 50000, period: 100000 });
});

test('network, pid, ipc, uts modes', () => {
  const host = buildSpec(input({ host: { NetworkMode: 'host', PidMode: 'host', IpcMode: 'host' } }));
  const types = host.linux!.namespaces!.map((n) => n.type);
  assert.ok(!types.includes('network') && !types.includes('pid') && !types.includes('ipc') && !types.includes('uts'));
  assert.equal(host.hostname, undefined);
  const joined = buildSpec({ ...input({ host: { NetworkMode: 'container:web' } }), joinNetns: '/proc/42/ns/net' });
  assert.deepEqual(joined.linux!.namespaces!.find((n) => n.type === 'network'), { type: 'network', path: '/proc/42/ns/net' });
  const none = buildSpec(input({ host: { NetworkMode: 'none' } }));
  assert.ok(none.linux!.namespaces!.some((n) => n.type === 'network' && !n.path));
});

test('binds, tmpfs, read-only, shm size, ulimits, working dir', () => {
  const s = buildSpec(input({
    cfg: { WorkingDir: '/work' },
    host: { Binds: ['/host/a:/a:ro', '/host/b:/b'], Tmpfs: { '/run': 'size=1m' }, ReadonlyRootfs: true, ShmSize: 128 << 20, Ulimits: [{ Name: 'nofile', Soft: 100, Hard: 200 }] },
  }));
  assert.deepEqual(s.mounts!.find((m) => m.destination === '/a'), { destination: '/a', type: 'bind', source: '/host/a', options: ['rbind', 'rprivate', 'ro'] });
  assert.deepEqual(s.mounts!.find((m) => m.destination === '/b')!.options, ['rbind', 'rprivate', 'rw']);
  assert.deepEqual(s.mounts!.find((m) => m.destination === '/run'), { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'size=1m'] });
  assert.equal(s.root!.readonly, true);
  assert.ok(s.mounts!.find((m) => m.destination === '/dev/shm')!.options!.includes('size=131072k'));
  assert.deepEqual(s.process!.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }]);
  assert.equal(s.process!.cwd, '/work');
  assert.deepEqual(tmpfsOptions('exec,mode=1777'), ['nosuid', 'nodev', 'mode=1777']);
});

test('host config validation names the field', () => {
  assert.throws(() => normaliseHostConfig({ Memory: 1024 }), /Minimum memory limit allowed is 6MB/);
  assert.throws(() => normaliseHostConfig({ RestartPolicy: { Name: 'always', MaximumRetryCount: 3 } }), (e: Error & { details?: { field?: string } }) => e.details?.field === 'HostConfig.RestartPolicy.MaximumRetryCount');
  assert.throws(() => normaliseHostConfig({ RestartPolicy: { Name: 'sometimes' as never, MaximumRetryCount: 0 } }), /invalid restart policy/);
  assert.throws(() => normaliseHostConfig({ AutoRemove: true, RestartPolicy: { Name: 'always', MaximumRetryCount: 0 } }), /AutoRemove/);
  assert.throws(() => normaliseHostConfig({ Binds: ['bad/name:/x'] }), /create bad\/name: "bad\/name" includes invalid characters for a local volume name/);
  // A network name passes here; create resolves it against the networks (404 there).
  assert.equal(normaliseHostConfig({ NetworkMode: 'mynet' }).NetworkMode, 'mynet');
  assert.throws(() => normaliseHostConfig({ Ulimits: [{ Name: 'nofile', Soft: 3, Hard: 2 }] }), /soft limit/);
  assert.equal(normaliseHostConfig({ NetworkMode: 'default' }).NetworkMode, 'bridge');
  assert.equal(normaliseHostConfig(null).NetworkMode, 'bridge');
  // --gpus all: no device driver here, as dockerd answers on a host without one
  assert.throws(
    () => normaliseHostConfig({ DeviceRequests: [{ Driver: '', Count: -1, DeviceIDs: null, Capabilities: [['gpu']], Options: {} }] } as never),
    (e: Error & { details?: { field?: string } }) => e.message === 'could not select device driver "" with capabilities: [[gpu]]' && e.details?.field === 'HostConfig.DeviceRequests[0]',
  );
  assert.doesNotThrow(() => normaliseHostConfig({ DeviceRequests: [] } as never));
});

test('empty command: 400 No command specified', () => {
  const i = input();
  i.config = { ...i.config, Cmd: null, Entrypoint: null };
  assert.throws(() => buildSpec(i), /No command specified/);
});

const passwd = 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\nwww:x:33:33::/var/www:/bin/sh\n';
const group = 'root:x:0:\nwww:x:33:\nstaff:x:50:www,daemon\nvideo:x:44:\n';

test('user resolution from the container passwd and group', () => {
  assert.deepEqual(resolveUser('', passwd, group), { uid: 0, gid: 0, additionalGids: [0] });
  assert.deepEqual(resolveUser('www', passwd, group), { uid: 33, gid: 33, additionalGids: [33, 50] });
  assert.deepEqual(resolveUser('www:video', passwd, group), { uid: 33, gid: 44, additionalGids: [44] });
  assert.deepEqual(resolveUser('1000', passwd, group), { uid: 1000, gid: 0, additionalGids: [0] });
  assert.deepEqual(resolveUser('1000:1000', passwd, group), { uid: 1000, gid: 1000, additionalGids: [1000] });
  assert.deepEqual(resolveUser('33', passwd, group, ['video', '7']), { uid: 33, gid: 33, additionalGids: [33, 7, 44, 50] });
  assert.throws(() => resolveUser('nobody', passwd, group), /unable to find user nobody/);
  assert.throws(() => resolveUser('www:nogroup', passwd, group), /unable to find group nogroup/);
});

test('privileged gets the daemon bounding set, not caps the host lacks', () => {
  const avail = capabilitiesOfMask('1fffeffffff');
  assert.ok(!avail.includes('CAP_SYS_RESOURCE') && avail.includes('CAP_SYS_ADMIN') && avail.includes('CAP_CHECKPOINT_RESTORE'));
  assert.equal(avail.length, 40);
  const s = buildSpec({ ...input({ host: { Privileged: true } }), availableCaps: avail });
  assert.ok(!s.process!.capabilities!.bounding!.includes('CAP_SYS_RESOURCE'));
  assert.equal(containerCapabilities({ CapAdd: ['ALL'], CapDrop: null, Privileged: false }, avail).length, 40);
});

type Fielded = Error & { details?: { field?: string } };
const rejects = (fn: () => unknown, field: string, message: string | RegExp): void =>
  assert.throws(fn, (e: Fielded) => {
    assert.equal(e.details?.field, field, e.message);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
const RANGE = 'uids and gids must be in range 0-2147483647';

test('numeric user, group and --group-add ids out of 0-2147483647 are refused at create (field User / HostConfig.GroupAdd)', () => {
  for (const u of ['4294967295', '4294967296', '4294967296:1', '0:4294967296', '99999999999999999999', '2147483648', '-1', '0:-1', '1:+99999999999'])
    rejects(() => normaliseConfig({ Image: 'busybox', User: u }), 'User', RANGE);
  for (const u of ['2147483647', '2147483647:2147483647', '+5', '007', '0', 'www', 'www:staff', '-0'])
    assert.equal(normaliseConfig({ Image: 'busybox', User: u }).User, u);
  for (const g of ['4294967296', '2147483648', '-1', '99999999999999999999'])
    rejects(() => normaliseHostConfig({ GroupAdd: ['10', g] }), 'HostConfig.GroupAdd', RANGE);
  assert.deepEqual(normaliseHostConfig({ GroupAdd: ['2147483647', 'video'] }).GroupAdd, ['2147483647', 'video']);
});

test('user resolution at start: an id out of range, given or read from the image files, fails the start; none wraps to root', () => {
  for (const u of ['4294967295', '4294967296', '4294967296:1', '0:4294967296', '99999999999999999999', '-1'])
    rejects(() => resolveUser(u, passwd, group), 'User', RANGE);
  rejects(() => resolveUser('33', passwd, group, ['4294967296']), 'HostConfig.GroupAdd', RANGE);
  assert.deepEqual(resolveUser('2147483647:2147483647', passwd, group, ['2147483647']), { uid: 2147483647, gid: 2147483647, additionalGids: [2147483647] });
  assert.deepEqual(resolveUser('+5', passwd, group), { uid: 5, gid: 0, additionalGids: [0] });
  const evilPasswd = `${passwd}evil:x:4294967296:0::/:/bin/sh\nbig:x:7:99999999999999999999::/:/bin/sh\nneg:x:-1:0::/:/bin/sh\n`;
  const evilGroup = `${group}wide:x:4294967297:www\n`;
  rejects(() => resolveUser('evil', evilPasswd, group), 'User', /^user evil in the container's \/etc\/passwd has id 4294967296: uids and gids/);
  rejects(() => resolveUser('big', evilPasswd, group), 'User', /^user big's group in the container's \/etc\/passwd has id 100000000000000000000: uids and gids/);
  rejects(() => resolveUser('7', evilPasswd, group), 'User', /user big's group/);
  rejects(() => resolveUser('neg', evilPasswd, group), 'User', /has id -1: uids and gids/);
  rejects(() => resolveUser('www:wide', passwd, evilGroup), 'User', /^group wide in the container's \/etc\/group has id 4294967297/);
  rejects(() => resolveUser('www', passwd, evilGroup), 'User', /group wide/);
  rejects(() => resolveUser('daemon', passwd, evilGroup, ['wide']), 'User', /group wide/);
  // Not listed: the range applies to what is used.
  assert.deepEqual(resolveUser('daemon', evilPasswd, evilGroup), { uid: 1, gid: 1, additionalGids: [1, 50] });
});

test('masked and read-only paths: Docker\'s lists with the host\'s per-CPU thermal_throttle, none when privileged', () => {
  const want = [
    '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
    '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
  ];
  assert.deepEqual([...dockerMaskedPaths].sort(), [...want].sort());
  assert.deepEqual([...dockerReadonlyPaths].sort(), ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  const thermal = ['/sys/devices/system/cpu/cpu0/thermal_throttle', '/sys/devices/system/cpu/cpu1/thermal_throttle'];
  const s = buildSpec({ ...input(), cpuThermalThrottle: thermal });
  assert.deepEqual(s.linux!.maskedPaths, [...dockerMaskedPaths, ...thermal]);
  assert.deepEqual(s.linux!.readonlyPaths, dockerReadonlyPaths);
  const p = buildSpec({ ...input({ host: { Privileged: true } }), cpuThermalThrottle: thermal });
  assert.deepEqual([p.linux!.maskedPaths, p.linux!.readonlyPaths], [[], []]);
  // Without the input, the host's directories (whatever this host has) follow Docker's list.
  assert.deepEqual(buildSpec(input()).linux!.maskedPaths, [...dockerMaskedPaths, ...cpuThermalThrottlePaths()]);
});

test('cpuThermalThrottlePaths: each cpu<N> with a thermal_throttle directory, in CPU order, as container paths', () => {
  const dir = mkdtempSync(join(tmpdir(), `berth-cpu-${process.pid}-`));
  try {
    for (const n of ['cpu0', 'cpu2', 'cpu10']) mkdirSync(join(dir, n, 'thermal_throttle'), { recursive: true });
    mkdirSync(join(dir, 'cpu1'));
    mkdirSync(join(dir, 'cpufreq', 'thermal_throttle'), { recursive: true });
    mkdirSync(join(dir, 'cpu3'));
    writeFileSync(join(dir, 'cpu3', 'thermal_throttle'), '');
    assert.deepEqual(cpuThermalThrottlePaths(dir), ['cpu0', 'cpu2', 'cpu10'].map((n) => `/sys/devices/system/cpu/${n}/thermal_throttle`));
    assert.deepEqual(cpuThermalThrottlePaths(join(dir, 'missing')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('/dev/shm: 64m by default, --shm-size, the host\'s for ipc host, none for ipc none', () => {
  const shm = (host: Record<string, unknown>) => buildSpec(input({ host })).mounts!.filter((m) => m.destination === '/dev/shm');
  assert.deepEqual(shm({}), [{ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] }]);
  assert.ok(shm({ ShmSize: 128 * 1024 * 1024 })[0]!.options!.includes('size=131072k'));
  assert.equal(shm({ IpcMode: 'host' })[0]!.type, 'bind');
  assert.deepEqual(shm({ IpcMode: 'none' }), []);
  assert.deepEqual(shm({ IpcMode: 'shareable' }).length, 1);
  // A user tmpfs there is still mounted with ipc none.
  assert.deepEqual(shm({ IpcMode: 'none', Tmpfs: { '/dev/shm': 'size=1m' } }).map((m) => m.source), ['tmpfs']);
  const none = buildSpec(input({ host: { IpcMode: 'none' } }));
  assert.ok(none.linux!.namespaces!.some((n) => n.type === 'ipc' && !n.path));
});

test('mount destinations: not /, /proc, /sys, nor inside /proc beyond runc\'s allow-list (Binds, Tmpfs, Mounts)', () => {
  const bindMsg = (spec: string, why: string) => `invalid volume specification: '${spec}': invalid mount config for type "bind": invalid specification: ${why}`;
  rejects(() => normaliseHostConfig({ Binds: ['/ok:/ok', '/tmp/x:/'] }), 'HostConfig.Binds[1]', bindMsg('/tmp/x:/', "destination can't be '/'"));
  rejects(() => normaliseHostConfig({ Binds: ['/tmp/x:/proc'] }), 'HostConfig.Binds[0]', bindMsg('/tmp/x:/proc', "destination can't be '/proc': it would replace the container's procfs"));
  rejects(() => normaliseHostConfig({ Binds: ['/tmp/x:/sys:ro'] }), 'HostConfig.Binds[0]', bindMsg('/tmp/x:/sys:ro', "destination can't be '/sys': it would replace the container's sysfs"));
  for (const d of ['/proc/', '//proc', '/proc/.', '/sys/', '/x/../proc', '/proc/sys', '/proc/kcore', '/proc/self/../kcore', '/proc/sys/kernel', '/proc/net', '/proc/1/root', '/./'])
    rejects(() => normaliseHostConfig({ Binds: [`/tmp/x:${d}`] }), 'HostConfig.Binds[0]', /invalid mount config for type "bind": invalid specification: /);
  rejects(() => normaliseHostConfig({ Binds: ['/tmp/x:/proc/foo'] }), 'HostConfig.Binds[0]', /'\/proc\/foo' cannot be mounted because it is inside \/proc$/);
  for (const d of ['/proc/cpuinfo', '/proc/diskstats', '/proc/meminfo', '/proc/stat', '/proc/swaps', '/proc/uptime', '/proc/loadavg', '/proc/slabinfo', '/proc/net/dev', '/proc/sys/kernel/ns_last_pid', '/sys/kernel/x', '/procfoo', '/system', '/dev/shm'])
    assert.deepEqual(normaliseHostConfig({ Binds: [`/tmp/x:${d}:ro`] }).Binds, [`/tmp/x:${d}:ro`]);
  rejects(() => normaliseHostConfig({ Tmpfs: { '/': '' } }), 'HostConfig.Tmpfs', "invalid specification: destination can't be '/'");
  rejects(() => normaliseHostConfig({ Tmpfs: { '/run': '', '/proc': 'size=1m' } }), 'HostConfig.Tmpfs', /^invalid specification: destination can't be '\/proc'/);
  rejects(() => normaliseHostConfig({ Tmpfs: { '/sys/': '' } }), 'HostConfig.Tmpfs', /destination can't be '\/sys'/);
  rejects(() => normaliseHostConfig({ Tmpfs: { '/proc/acpi': '' } }), 'HostConfig.Tmpfs', /inside \/proc/);
  assert.ok(normaliseHostConfig({ Tmpfs: { '/sys/fs/x': '', '/proc/meminfo': '' } }).Tmpfs);
  const mounts = (...m: unknown[]) => normaliseHostConfig({ Mounts: m } as never);
  rejects(() => mounts({ Type: 'bind', Source: '/tmp', Target: '/' }), 'HostConfig.Mounts[0]', 'invalid mount config for type "bind": invalid specification: destination can\'t be \'/\'');
  rejects(() => mounts({ Type: 'bind', Source: '/tmp', Target: '/ok' }, { Type: 'tmpfs', Target: '/proc' }), 'HostConfig.Mounts[1]', /^invalid mount config for type "tmpfs": invalid specification: destination can't be '\/proc'/);
  rejects(() => mounts({ Type: 'volume', Source: 'v', Target: '/sys' }), 'HostConfig.Mounts[0]', /destination can't be '\/sys'/);
  rejects(() => mounts({ Type: 'bind', Source: '/tmp', Target: '/proc/keys' }), 'HostConfig.Mounts[0]', /inside \/proc/);
  rejects(() => mounts({ Type: 'bind', Source: '/tmp', Target: 'rel' }), 'HostConfig.Mounts[0]', /mount path must be absolute/);
  rejects(() => mounts({ Type: 'bind', Source: '/tmp' }), 'HostConfig.Mounts[0]', /Target must not be empty/);
  assert.equal((mounts({ Type: 'bind', Source: '/tmp', Target: '/proc/uptime' }) as unknown as { Mounts: unknown[] }).Mounts.length, 1);
});

test('HostConfig.Mounts: bind and tmpfs become spec mounts; volumes, unknown types, bad sources and duplicates are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), `berth-mounts-${process.pid}-`));
  try {
    const s = buildSpec(input({ host: { Mounts: [
      { Type: 'bind', Source: dir, Target: '/data', ReadOnly: true, BindOptions: { Propagation: 'rslave' } },
      { Type: 'bind', Source: dir, Target: '/flat', BindOptions: { NonRecursive: true } },
      { Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 1024 * 1024, Mode: 0o700 } },
      { Type: 'tmpfs', Target: '/dev/shm', ReadOnly: true },
    ] } }));
    assert.deepEqual(s.mounts!.find((m) => m.destination === '/data'), { destination: '/data', type: 'bind', source: dir, options: ['rbind', 'rslave', 'ro'] });
    assert.deepEqual(s.mounts!.find((m) => m.destination === '/flat')!.options, ['bind', 'rprivate', 'rw']);
    assert.deepEqual(s.mounts!.find((m) => m.destination === '/scratch'), { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'size=1024k', 'mode=700'] });
    // A mount over a default one replaces it.
    assert.deepEqual(s.mounts!.filter((m) => m.destination === '/dev/shm').map((m) => m.options), [['noexec', 'nosuid', 'nodev', 'ro']]);
    const mounts = (...m: unknown[]) => normaliseHostConfig({ Mounts: m } as never);
    rejects(() => mounts({ Type: 'volume', Source: 'v', Target: '/v' }), 'HostConfig.Mounts[0]', 'create v: volume name is too short, names should be at least two alphanumeric characters');
    rejects(() => mounts({ Type: 'npipe', Source: 'x', Target: '/v' }), 'HostConfig.Mounts[0]', 'invalid mount config for type "npipe": mount type unknown');
    rejects(() => mounts({ Type: 'bind', Source: join(dir, 'missing'), Target: '/v' }), 'HostConfig.Mounts[0]', `invalid mount config for type "bind": bind source path does not exist: ${join(dir, 'missing')}`);
    rejects(() => mounts({ Type: 'bind', Target: '/v' }), 'HostConfig.Mounts[0]', 'invalid mount config for type "bind": field Source must not be empty');
    rejects(() => mounts({ Type: 'bind', Source: 'rel', Target: '/v' }), 'HostConfig.Mounts[0]', /mount path must be absolute/);
    rejects(() => mounts({ Type: 'bind', Source: dir, Target: '/v', BindOptions: { Propagation: 'sideways' } }), 'HostConfig.Mounts[0]', /invalid propagation mode: sideways/);
    rejects(() => mounts({ Type: 'tmpfs', Source: dir, Target: '/v' }), 'HostConfig.Mounts[0]', 'invalid mount config for type "tmpfs": field Source must not be specified');
    rejects(() => mounts({ Type: 'tmpfs', Target: '/v', TmpfsOptions: { SizeBytes: -1 } }), 'HostConfig.Mounts[0]', /invalid tmpfs size/);
    const dup = input({ host: { Binds: [`${dir}:/v`], Mounts: [{ Type: 'tmpfs', Target: '/v' }] } });
    rejects(() => buildSpec(dup), 'HostConfig.Mounts[0]', 'Duplicate mount point: /v');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a network namespace of its own gets Docker's sysctls (ports below 1024 and ping for any user); the user's win", () => {
  const docker = { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' };
  assert.deepEqual(buildSpec(input()).linux!.sysctl, docker);
  assert.deepEqual(buildSpec(input({ host: { NetworkMode: 'none' } })).linux!.sysctl, docker);
  assert.equal(buildSpec(input({ host: { NetworkMode: 'host' } })).linux!.sysctl, undefined, "the host's own are not touched");
  assert.deepEqual(buildSpec(input({ host: { NetworkMode: 'host', Sysctls: { 'kernel.shmmax': '1' } } })).linux!.sysctl, { 'kernel.shmmax': '1' });
  assert.deepEqual(buildSpec(input({ host: { Sysctls: { 'net.ipv4.ip_unprivileged_port_start': '1024' } } })).linux!.sysctl, { ...docker, 'net.ipv4.ip_unprivileged_port_start': '1024' });
});
