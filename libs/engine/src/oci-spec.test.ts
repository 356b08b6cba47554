import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dockerDefaultCapabilities } from '@berth/runtime';
import { normaliseConfig, normaliseHostConfig, mergeImageConfig } from './config.js';
import { buildSpec, capabilitiesOfMask, containerCapabilities, parseSecurityOpts, resolveUser, tmpfsOptions, type SpecInput } from './oci-spec.js';

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
  assert.throws(() => containerCapabilities({ CapAdd: ['bogus'], CapDrop: null, Privileged: false }), /invalid capability: bogus/);
});

test('security opts: seccomp unconfined drops the profile, no-new-privileges', () => {
  const s = buildSpec(input({ host: { SecurityOpt: ['seccomp=unconfined', 'no-new-privileges'] } }));
  assert.equal(s.linux!.seccomp, undefined);
  assert.equal(s.process!.noNewPrivileges, true);
  assert.deepEqual(parseSecurityOpts(['seccomp=/x.json', 'no-new-privileges:false']), { seccomp: { kind: 'file', path: '/x.json' }, noNewPrivileges: false });
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
  assert.throws(() => normaliseHostConfig({ Binds: ['relative:/x'] }), /named volumes/);
  // A network name passes here; create resolves it against the networks (404 there).
  assert.equal(normaliseHostConfig({ NetworkMode: 'mynet' }).NetworkMode, 'mynet');
  assert.throws(() => normaliseHostConfig({ Ulimits: [{ Name: 'nofile', Soft: 3, Hard: 2 }] }), /soft limit/);
  assert.equal(normaliseHostConfig({ NetworkMode: 'default' }).NetworkMode, 'bridge');
  assert.equal(normaliseHostConfig(null).NetworkMode, 'bridge');
});

test('empty command: 400 No command specified', () => {
  const i = input();
  i.config = { ...i.config, Cmd: null, Entrypoint: null };
  assert.throws(() => buildSpec(i), /No command specified/);
});

const passwd = 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\nwww:x:33:33::/var/www:/bin/sh\n';
const group = 'root:x:0:\nwww:x:33:\nstaff:x:50:www,daemon\nvideo:x:44:\n';

test('user resolution from the container passwd and group', () => {
  assert.deepEqual(resolveUser('', passwd, group), { uid: 0, gid: 0, additionalGids: [] });
  assert.deepEqual(resolveUser('www', passwd, group), { uid: 33, gid: 33, additionalGids: [50] });
  assert.deepEqual(resolveUser('www:video', passwd, group), { uid: 33, gid: 44, additionalGids: [] });
  assert.deepEqual(resolveUser('1000', passwd, group), { uid: 1000, gid: 0, additionalGids: [] });
  assert.deepEqual(resolveUser('1000:1000', passwd, group), { uid: 1000, gid: 1000, additionalGids: [] });
  assert.deepEqual(resolveUser('33', passwd, group, ['video', '7']), { uid: 33, gid: 33, additionalGids: [7, 44, 50] });
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
