// The distribution's profile (containers-common, Debian's /usr/share/containers/seccomp.json),
// converted for a container with Docker's default capabilities and compiled by the addon. No
// root needed: the program is checked with the BPF interpreter, which the native package's
// privileged tests hold to the kernel's behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { AUDIT_ARCH_I386, evaluateSeccomp, realSyscallsIfBuilt } from '@berth/native/testing';
import { dockerProfileToOci, loadSeccompProfile } from './index.js';

const profilePath = '/usr/share/containers/seccomp.json';

// Docker's default capability set (14).
const defaultCaps = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

const sys = realSyscallsIfBuilt();
const skip = !existsSync(profilePath) ? `${profilePath} is not installed`
  : sys === undefined ? 'the native addon is not built'
  : process.arch !== 'x64' ? 'syscall numbers are x86_64'
  : false;

// x86_64 numbers.
const NR = { bpf: 321, sethostname: 170, socket: 41, getppid: 110, personality: 135, arch_prctl: 158, acct: 163, mount: 165, chroot: 161, clock_settime: 227, setns: 308 };
const ALLOW = { action: 'ALLOW' };
const EPERM = { action: 'ERRNO', errno: 1 };
const ENOSYS = { action: 'ERRNO', errno: 38 };

function compile(caps: string[]): Buffer {
  const oci = dockerProfileToOci(loadSeccompProfile(profilePath), { capabilities: caps, arch: 'amd64' });
  return sys!.compileSeccomp(oci);
}

test('the converted Debian profile has the OCI shape Docker would produce', { skip }, () => {
  const profile = loadSeccompProfile(profilePath);
  const oci = dockerProfileToOci(profile, { capabilities: defaultCaps, arch: 'amd64' });
  assert.equal(oci.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(oci.defaultErrnoRet, 38);
  assert.deepEqual(oci.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  const rules = oci.syscalls!;
  const actionsOf = (name: string): string[] => rules.filter((r) => r.names.includes(name)).map((r) => r.action);
  assert.deepEqual(actionsOf('chroot'), ['SCMP_ACT_ALLOW'], 'CAP_SYS_CHROOT is a default cap');
  assert.deepEqual(actionsOf('bpf'), ['SCMP_ACT_ERRNO'], 'CAP_SYS_ADMIN is not');
  // setns is in the profile's unconditional allow list too, so both rules stay.
  assert.deepEqual(actionsOf('setns'), ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO']);
  assert.deepEqual(actionsOf('arch_prctl'), ['SCMP_ACT_ALLOW']);
  assert.deepEqual(actionsOf('set_tls'), [], 'arm only');
  assert.ok(rules.length < profile.syscalls!.length);
  for (const r of rules) assert.ok(!('includes' in r) && !('excludes' in r) && !('comment' in r), 'only OCI fields');
});

test('the compiled Debian profile allows and refuses what the profile says for default caps', { skip }, () => {
  const out = sys!.compileSeccompDetailed(dockerProfileToOci(loadSeccompProfile(profilePath), { capabilities: defaultCaps, arch: 'amd64' }));
  const bpf = out.bpf;
  assert.ok(bpf.length > 0 && bpf.length % 8 === 0, `${bpf.length} bytes`);
  assert.ok(bpf.length / 8 <= 4096, 'fits the kernel limit of BPF_MAXINSNS');
  const profileNames = new Set(loadSeccompProfile(profilePath).syscalls!.flatMap((s) => s.names ?? []));
  for (const n of out.skipped) assert.ok(profileNames.has(n), `skipped ${n} comes from the profile`);

  const ev = (nr: number, ...args: number[]): unknown => evaluateSeccomp(bpf, { nr, args });
  assert.deepEqual(ev(NR.getppid), ALLOW);
  assert.deepEqual(ev(NR.chroot), ALLOW);
  assert.deepEqual(ev(NR.mount), ALLOW, 'this profile lets mount through (capabilities decide)');
  assert.deepEqual(ev(NR.bpf), EPERM);
  assert.deepEqual(ev(NR.sethostname), EPERM);
  // Two unconditional rules for setns (allow, then EPERM without CAP_SYS_ADMIN): libseccomp
  // keeps the first one added, as it does under runc and crun.
  assert.deepEqual(ev(NR.setns), ALLOW);
  assert.deepEqual(ev(NR.acct), EPERM);
  assert.deepEqual(ev(NR.clock_settime), EPERM);
  assert.deepEqual(ev(NR.arch_prctl), ALLOW);
  assert.deepEqual(ev(999), ENOSYS, 'unknown syscalls get the default ENOSYS');
  assert.deepEqual(ev(NR.personality, 8), ALLOW);
  assert.deepEqual(ev(NR.personality, 0xffffffff), ALLOW);
  assert.deepEqual(ev(NR.personality, 1), ENOSYS);
  assert.deepEqual(ev(NR.socket, 16, 3, 9), ALLOW, 'audit socket allowed with CAP_AUDIT_WRITE');
  // 32-bit x86 calls are filtered too (i386 getppid is 64, acct is 51).
  assert.deepEqual(evaluateSeccomp(bpf, { arch: AUDIT_ARCH_I386, nr: 64 }), ALLOW);
  assert.deepEqual(evaluateSeccomp(bpf, { arch: AUDIT_ARCH_I386, nr: 51 }), EPERM);
});

test('capabilities change the compiled program: SYS_ADMIN, SYS_CHROOT, AUDIT_WRITE', { skip }, () => {
  const admin = compile([...defaultCaps, 'CAP_SYS_ADMIN']);
  assert.deepEqual(evaluateSeccomp(admin, { nr: NR.bpf }), ALLOW);
  assert.deepEqual(evaluateSeccomp(admin, { nr: NR.sethostname }), ALLOW);
  const noChroot = compile(defaultCaps.filter((c) => c !== 'CAP_SYS_CHROOT'));
  assert.deepEqual(evaluateSeccomp(noChroot, { nr: NR.chroot }), EPERM);
  const noAudit = compile(defaultCaps.filter((c) => c !== 'CAP_AUDIT_WRITE'));
  assert.deepEqual(evaluateSeccomp(noAudit, { nr: NR.socket, args: [16, 3, 9] }), { action: 'ERRNO', errno: 22 });
  assert.deepEqual(evaluateSeccomp(noAudit, { nr: NR.socket, args: [16, 3, 0] }), ALLOW);
  assert.deepEqual(evaluateSeccomp(noAudit, { nr: NR.socket, args: [2, 1, 0] }), ALLOW);
  assert.deepEqual(evaluateSeccomp(noAudit, { nr: NR.socket, args: [2, 3, 9] }), ALLOW);
});
