// The default profile as Docker applies it: no namespaces, mounts or keyring without the
// capability that Docker's own profile asks for. The distribution's file is compiled by the addon
// and checked with the BPF interpreter (the native package holds it to the kernel's behaviour);
// test/e2e/src/seccomp-default.test.ts checks the same in a container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { evaluateSeccomp, realSyscallsIfBuilt } from '@berth/native/testing';
import { dockerProfileToOci, loadSeccompProfile, type OciSeccomp } from '@berth/runtime';
import { confineDefaultProfile } from './seccomp.js';

const profilePath = '/usr/share/containers/seccomp.json';
const defaultCaps = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

test('the calls Docker keeps for CAP_SYS_ADMIN leave the allow rules; the file keeps the rest', () => {
  const file: OciSeccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['read', 'unshare', 'clone', 'keyctl', 'mount'], action: 'SCMP_ACT_ALLOW' },
      { names: ['setns'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
    ],
  };
  const out = confineDefaultProfile(file, defaultCaps);
  const allowed = out.syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names);
  assert.deepEqual(allowed, ['read']);
  assert.ok(out.syscalls!.some((r) => r.names[0] === 'personality' && r.args?.[0]?.value === 8), 'conditional rules of other calls stay');
  const refused = out.syscalls!.find((r) => r.action === 'SCMP_ACT_ERRNO' && r.names.includes('unshare'));
  assert.equal(refused?.errnoRet, 1);
  for (const n of ['keyctl', 'mount', 'setns', 'pivot_root', 'fsopen', 'move_mount']) assert.ok(refused!.names.includes(n), n);
  assert.equal(out.syscalls!.filter((r) => r.names.includes('setns')).length, 1, "the file's own setns rule is replaced");
  assert.deepEqual(file.syscalls![0]!.names, ['read', 'unshare', 'clone', 'keyctl', 'mount'], 'the input is not changed');

  const admin = confineDefaultProfile(file, [...defaultCaps, 'CAP_SYS_ADMIN']);
  const adminAllowed = admin.syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names);
  assert.deepEqual(adminAllowed, ['read', 'unshare', 'clone', 'mount'], 'with CAP_SYS_ADMIN only the keyring goes');
  assert.ok(!admin.syscalls!.some((r) => r.names.includes('clone3') && r.action !== 'SCMP_ACT_ALLOW'));
});

const sys = realSyscallsIfBuilt();
const skip = !existsSync(profilePath) ? `${profilePath} is not installed`
  : sys === undefined ? 'the native addon is not built'
  : process.arch !== 'x64' ? 'syscall numbers are x86_64'
  : false;

// x86_64 numbers and clone flags.
const NR = { clone: 56, clone3: 435, unshare: 272, setns: 308, mount: 165, umount2: 166, pivot_root: 155, keyctl: 250, add_key: 248, getppid: 110, fsopen: 430 };
const SIGCHLD = 17;
const THREAD = 0x3d0f00; // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID, as pthread_create
const NEWUSER = 0x10000000;
const NEWNET = 0x40000000;
const NEWNS = 0x00020000;
const ALLOW = { action: 'ALLOW' };
const EPERM = { action: 'ERRNO', errno: 1 };
const ENOSYS = { action: 'ERRNO', errno: 38 };

function compiled(caps: string[]): (nr: number, ...args: number[]) => unknown {
  const oci = confineDefaultProfile(dockerProfileToOci(loadSeccompProfile(profilePath), { capabilities: caps, arch: 'amd64' }), caps);
  const bpf = sys!.compileSeccomp(oci);
  return (nr, ...args) => evaluateSeccomp(bpf, { nr, args });
}

test("the distribution's profile, confined: default caps make no namespace, mount nothing, use no keyring", { skip }, () => {
  const ev = compiled(defaultCaps);
  assert.deepEqual(ev(NR.getppid), ALLOW);
  assert.deepEqual(ev(NR.clone, SIGCHLD), ALLOW, 'fork');
  assert.deepEqual(ev(NR.clone, THREAD), ALLOW, 'a thread');
  assert.deepEqual(ev(NR.clone, NEWUSER | SIGCHLD), EPERM);
  assert.deepEqual(ev(NR.clone, NEWNET | NEWNS | SIGCHLD), EPERM);
  assert.deepEqual(ev(NR.clone3), ENOSYS, 'libc falls back to clone');
  for (const nr of [NR.unshare, NR.setns, NR.mount, NR.umount2, NR.pivot_root, NR.fsopen, NR.keyctl, NR.add_key]) assert.deepEqual(ev(nr), EPERM, `syscall ${nr}`);
});

test("the distribution's profile, confined: CAP_SYS_ADMIN gets namespaces and mounts back, not the keyring", { skip }, () => {
  const ev = compiled([...defaultCaps, 'CAP_SYS_ADMIN']);
  assert.deepEqual(ev(NR.unshare), ALLOW);
  assert.deepEqual(ev(NR.clone, NEWUSER | SIGCHLD), ALLOW);
  assert.deepEqual(ev(NR.mount), ALLOW);
  assert.deepEqual(ev(NR.setns), ALLOW);
  assert.deepEqual(ev(NR.keyctl), EPERM);
});
