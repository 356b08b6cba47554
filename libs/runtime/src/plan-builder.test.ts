import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, MS_BIND, MS_RDONLY, MS_REC, MS_REMOUNT, S_IFCHR } from '@berth/native';
import { buildCreatePlan, buildExecPlan, type PlanContext } from './plan-builder.js';
import { defaultSpec } from './default-spec.js';
import { validateSpec, type OciSpec } from './spec.js';

function bundle(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'berth-plan-'));
  mkdirSync(join(dir, 'rootfs', 'etc'), { recursive: true });
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function ctx(dir: string, over: Partial<PlanContext> = {}): PlanContext {
  return {
    bundle: dir, pidFile: '/run/x/init.pid', cgroupProcs: ['/sys/fs/cgroup/pids/berth/c/cgroup.procs'],
    cgroupMounts: [
      { name: 'cpu', hostDir: '/sys/fs/cgroup/cpu/berth/c', subsystems: 'cpu' },
      { name: 'systemd', hostDir: '/sys/fs/cgroup/systemd/berth/c', subsystems: 'none,name=systemd' },
    ],
    seccomp: null, consoleSocket: null, startFifo: '/run/x/exec.fifo', ...over,
  };
}

function spec(mod: (s: OciSpec) => void = () => {}): OciSpec {
  const s = defaultSpec();
  s.process!.terminal = false;
  mod(s);
  return s;
}

test('Docker default capabilities give CapEff 00000000a80425fb in all three sets', () => {
  const b = bundle();
  try {
    const plan = buildCreatePlan(spec(), ctx(b.dir));
    assert.equal(plan.capabilities?.effective.toString(16), 'a80425fb');
    assert.equal(plan.capabilities?.bounding.toString(16), 'a80425fb');
    assert.equal(plan.capabilities?.inheritable, 0n);
    assert.equal(plan.nsFlags & (CLONE_NEWNS | CLONE_NEWPID), CLONE_NEWNS | CLONE_NEWPID);
    assert.equal(plan.rootReadonly, true);
    assert.equal(plan.startFifo, '/run/x/exec.fifo');
  } finally {
    b.done();
  }
});

test('a fresh /dev gets the six default nodes 0666 and the standard links, in that order after the mounts', () => {
  const b = bundle();
  try {
    const plan = buildCreatePlan(spec(), ctx(b.dir));
    const nodes = plan.steps.filter((s) => s.kind === 'mknod');
    assert.deepEqual(nodes.map((n) => n.kind === 'mknod' && [n.destination, n.major, n.minor, n.mode]), [
      ['/dev/null', 1, 3, S_IFCHR | 0o666], ['/dev/zero', 1, 5, S_IFCHR | 0o666], ['/dev/full', 1, 7, S_IFCHR | 0o666],
      ['/dev/random', 1, 8, S_IFCHR | 0o666], ['/dev/urandom', 1, 9, S_IFCHR | 0o666], ['/dev/tty', 5, 0, S_IFCHR | 0o666],
    ]);
    const links = plan.steps.flatMap((s) => (s.kind === 'symlink' ? [`${s.destination}->${s.target}`] : []));
    assert.ok(links.includes('/dev/ptmx->pts/ptmx'));
    assert.ok(links.includes('/dev/fd->/proc/self/fd'));
    const lastMount = plan.steps.map((s) => s.kind).lastIndexOf('mount');
    const firstNode = plan.steps.findIndex((s) => s.kind === 'mknod');
    assert.ok(lastMount < firstNode, 'device nodes come after every mount');
  } finally {
    b.done();
  }
});

test('procfs and sysfs refuse symlinks on the way; the cgroup mount becomes a writable tmpfs plus read-only binds', () => {
  const b = bundle();
  try {
    const plan = buildCreatePlan(spec(), ctx(b.dir));
    const mounts = plan.steps.flatMap((s) => (s.kind === 'mount' ? [s] : []));
    assert.equal(mounts.find((m) => m.destination === '/proc')?.noSymlinks, true);
    const cg = mounts.filter((m) => m.destination.startsWith('/sys/fs/cgroup'));
    assert.deepEqual(cg.map((m) => [m.destination, m.fstype, m.source]), [
      ['/sys/fs/cgroup', 'tmpfs', 'tmpfs'],
      ['/sys/fs/cgroup/cpu', null, '/sys/fs/cgroup/cpu/berth/c'],
      ['/sys/fs/cgroup/systemd', null, '/sys/fs/cgroup/systemd/berth/c'],
    ]);
    assert.equal(cg[1]!.remount & MS_RDONLY, MS_RDONLY);
    assert.equal(cg[0]!.flags & MS_RDONLY, 0, 'the tmpfs stays writable, as under runc');
  } finally {
    b.done();
  }
});

test('with a private cgroup namespace each hierarchy is mounted afresh', () => {
  const b = bundle();
  try {
    const plan = buildCreatePlan(spec((s) => s.linux!.namespaces!.push({ type: 'cgroup' })), ctx(b.dir));
    const m = plan.steps.find((s) => s.kind === 'mount' && s.destination === '/sys/fs/cgroup/systemd');
    assert.ok(m && m.kind === 'mount');
    assert.equal(m.fstype, 'cgroup');
    assert.equal(m.data, 'none,name=systemd');
  } finally {
    b.done();
  }
});

test('a read-only bind mount is a bind then a read-only remount', () => {
  const b = bundle();
  try {
    const src = join(b.dir, 'data');
    mkdirSync(src);
    const plan = buildCreatePlan(spec((s) => s.mounts!.push({ destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'ro'] })), ctx(b.dir));
    const m = plan.steps.find((s) => s.kind === 'mount' && s.destination === '/data');
    assert.ok(m && m.kind === 'mount');
    assert.equal(m.source, src);
    assert.equal(m.flags, MS_BIND | MS_REC);
    assert.equal(m.remount, MS_BIND | MS_REMOUNT | MS_RDONLY);
    assert.equal(m.create, 'dir');
  } finally {
    b.done();
  }
});

test('a user namespace brings id maps and binds host devices instead of mknod', () => {
  const b = bundle();
  try {
    const plan = buildCreatePlan(spec((s) => {
      s.linux!.namespaces!.push({ type: 'user' });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    }), ctx(b.dir));
    assert.equal(plan.nsFlags & CLONE_NEWUSER, CLONE_NEWUSER);
    assert.equal(plan.uidMap, '0 100000 65536\n');
    assert.equal(plan.steps.filter((s) => s.kind === 'mknod').length, 0);
    assert.equal(plan.steps.filter((s) => s.kind === 'bind-device').length, 6);
  } finally {
    b.done();
  }
});

test('bad input names the field', () => {
  const b = bundle();
  try {
    const cases: [(s: OciSpec) => void, RegExp][] = [
      [(s) => s.mounts!.push({ destination: '/a/../../x', type: 'tmpfs' }), /: mounts\[7\]\.destination: .* outside the container root through "\.\."/],
      [(s) => { s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'uts'); }, /: hostname: .*uts namespace/],
      [(s) => { s.linux!.sysctl = { 'kernel.panic': '1' }; }, /: linux.sysctl\["kernel.panic"\]: is not namespaced/],
      [(s) => { s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' }; s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network'); }, /needs a private network namespace/],
      [(s) => { s.process!.capabilities!.effective = ['CAP_NOPE']; }, /: process.capabilities.effective\[0\]: unknown capability "CAP_NOPE"/],
      [(s) => { s.process!.rlimits = [{ type: 'RLIMIT_NOPE', soft: 1, hard: 1 }]; }, /: process.rlimits\[0\].type: unknown rlimit/],
      [(s) => { s.process!.terminal = true; }, /: process.terminal: .*--console-socket/],
      [(s) => { s.root!.path = 'missing'; }, /: root.path: .* does not exist/],
      [(s) => s.mounts!.push({ destination: '/d', type: 'bind', source: '/nonexistent-berth' }), /: mounts\[7\]\.source: \/nonexistent-berth does not exist/],
    ];
    for (const [mod, re] of cases) assert.throws(() => buildCreatePlan(spec(mod), ctx(b.dir)), re);
    symlinkSync('/etc', join(b.dir, 'rootfs', 'proc'));
    assert.throws(() => buildCreatePlan(spec(), ctx(b.dir)), /: mounts\[0\]\.destination: \/proc is a symlink/);
  } finally {
    b.done();
  }
});

test('net.* sysctls need a network namespace apart from the host: a made one, or a joined one that is not the host', { skip: process.getuid?.() !== 0 ? 'unshare -n needs root' : false }, async () => {
  const b = bundle();
  const other = spawn('unshare', ['-n', 'sleep', '30'], { stdio: 'ignore' });
  try {
    const path = `/proc/${other.pid}/ns/net`;
    for (let i = 0; i < 100 && readlinkSync(path) === readlinkSync('/proc/self/ns/net'); i++) await new Promise((r) => setTimeout(r, 20));
    const joining = (p: string) => (s: OciSpec): void => {
      s.linux!.sysctl = { 'net.ipv4.ip_unprivileged_port_start': '0' };
      s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path: p } : n));
    };
    assert.doesNotThrow(() => buildCreatePlan(spec(joining(path)), ctx(b.dir)), 'an engine-made sandbox');
    assert.throws(() => buildCreatePlan(spec(joining('/proc/self/ns/net')), ctx(b.dir)), /needs a private network namespace/);
  } finally {
    other.kill('SIGKILL');
    b.done();
  }
});

test('an absolute symlink on a mount path stays inside the root and is allowed', () => {
  const b = bundle();
  try {
    symlinkSync('/etc', join(b.dir, 'rootfs', 'mnt'));
    writeFileSync(join(b.dir, 'rootfs', 'etc', 'f'), '');
    assert.doesNotThrow(() => buildCreatePlan(spec((s) => s.mounts!.push({ destination: '/mnt/x', type: 'tmpfs' })), ctx(b.dir)));
  } finally {
    b.done();
  }
});

test('exec joins every namespace of the container through /proc/PID/ns', () => {
  const plan = buildExecPlan(spec(), 4242, { seccomp: null, consoleSocket: null, pidFile: '/p', cgroupProcs: ['/c'] });
  assert.equal(plan.mode, 'exec');
  assert.deepEqual(plan.nsJoin.map((n) => n.path), ['/proc/4242/ns/pid', '/proc/4242/ns/net', '/proc/4242/ns/ipc', '/proc/4242/ns/uts', '/proc/4242/ns/mnt']);
  assert.equal(plan.steps.length, 0);
  assert.equal(plan.startFifo, null);
});

test('mounts over /proc and /sys: only proc on /proc, lxcfs files under it, only sysfs on /sys (runc checkProcMount)', () => {
  const b = bundle();
  try {
    const refused = (m: { destination: string; type?: string; source?: string; options?: string[] }, re: RegExp): void => {
      const s = spec((x) => x.mounts!.push(m));
      const i = s.mounts!.length - 1;
      assert.throws(() => buildCreatePlan(s, ctx(b.dir)), (err: Error) => {
        assert.match(err.message, new RegExp(`^mounts\\[${i}\\]\\.destination: `));
        assert.match(err.message, re);
        return true;
      }, JSON.stringify(m));
    };
    refused({ destination: '/proc', type: 'tmpfs', source: 'tmpfs' }, /only proc/);
    refused({ destination: '/proc/sys', type: 'tmpfs', source: 'tmpfs' }, /\/proc\/sys is inside \/proc/);
    refused({ destination: '/proc/self/../sys/kernel', type: 'bind', source: b.dir, options: ['rbind'] }, /inside \/proc/);
    refused({ destination: '/proc/sysrq-trigger', type: 'bind', source: join(b.dir, 'rootfs', 'etc'), options: ['bind'] }, /inside \/proc/);
    refused({ destination: '/proc', source: '/tmp', options: ['bind'] }, /only proc/);
    refused({ destination: '/sys', type: 'tmpfs', source: 'tmpfs' }, /only sysfs/);
    refused({ destination: '/sys/', source: b.dir, options: ['rbind'] }, /only sysfs/);
    // Through a symlink in the rootfs: what the path resolves to is checked.
    symlinkSync('/proc/sys', join(b.dir, 'rootfs', 'psys'));
    refused({ destination: '/psys/net', type: 'tmpfs', source: 'tmpfs' }, /\/proc\/sys\/net is inside \/proc/);

    // Allowed: lxcfs-style binds, the proc mount itself, a bind of a procfs on /proc, mounts under /sys.
    writeFileSync(join(b.dir, 'meminfo'), 'MemTotal: 1 kB\n');
    const ok = spec((x) => x.mounts!.push(
      { destination: '/proc/meminfo', type: 'bind', source: join(b.dir, 'meminfo'), options: ['bind', 'ro'] },
      { destination: '/proc/sys/kernel/ns_last_pid', source: join(b.dir, 'meminfo'), options: ['bind'] },
      { destination: '/proc', source: '/proc', options: ['rbind'] },
      { destination: '/sys/kernel/security', type: 'tmpfs', source: 'tmpfs' },
      { destination: '/sys', type: 'sysfs', source: 'sysfs' },
    ));
    const plan = buildCreatePlan(ok, ctx(b.dir));
    const dests = plan.steps.flatMap((s) => (s.kind === 'mount' ? [s.destination] : []));
    for (const d of ['/proc/meminfo', '/proc/sys/kernel/ns_last_pid', '/sys/kernel/security']) assert.ok(dests.includes(d), d);
  } finally {
    b.done();
  }
});

test('uid, gid and additionalGids must be integers in 0..4294967294: never truncated, never (uid_t)-1', () => {
  const b = bundle();
  try {
    for (const [user, field] of [
      [{ uid: 4294967295, gid: 0 }, 'process.user.uid'],
      [{ uid: 4294967296, gid: 0 }, 'process.user.uid'],
      [{ uid: -1, gid: 0 }, 'process.user.uid'],
      [{ uid: 1.5, gid: 0 }, 'process.user.uid'],
      [{ uid: 0, gid: 4294967295 }, 'process.user.gid'],
      [{ uid: 0, gid: 0, additionalGids: [10, 4294967296] }, 'process.user.additionalGids[1]'],
    ] as const) {
      const s = spec((x) => { x.process!.user = JSON.parse(JSON.stringify(user)) as NonNullable<typeof x.process>["user"]; });
      const re = new RegExp(`: ${field.replace(/[[\].]/g, '\\$&')}: .*not an integer in 0\\.\\.4294967294`);
      assert.throws(() => validateSpec(JSON.parse(JSON.stringify(s))), re, JSON.stringify(user));
      assert.throws(() => buildCreatePlan(s, ctx(b.dir)), re, `create ${JSON.stringify(user)}`);
      assert.throws(() => buildExecPlan(s, 1, ctx(b.dir)), re, `exec ${JSON.stringify(user)}`);
    }
    assert.throws(() => validateSpec(JSON.parse(JSON.stringify(spec((x) => { x.process!.user.umask = 18.5; })))), /process\.user\.umask: 18\.5 is not an integer/);
    const top = spec((x) => { x.process!.user = { uid: 4294967294, gid: 4294967294, additionalGids: [0] }; });
    assert.equal(buildCreatePlan(validateSpec(JSON.parse(JSON.stringify(top))), ctx(b.dir)).uid, 4294967294);
  } finally {
    b.done();
  }
});
