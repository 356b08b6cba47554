import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemError } from '@berth/errors';
import { dockerProfileToOci, loadSeccompProfile, parseSeccompProfile, type DockerSeccompProfile } from './index.js';

const profile: DockerSeccompProfile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 1,
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
  ],
  syscalls: [
    { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: [], comment: 'always' },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }] },
    { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
    { names: ['set_tls'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm', 'arm64'] } },
    { names: ['sync_file_range'], action: 'SCMP_ACT_ALLOW', excludes: { arches: ['arm64'] } },
    { names: ['mount', 'setns'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['mount', 'setns'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN', 'CAP_BPF'] } },
    { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 22, args: [{ index: 0, value: 16, op: 'SCMP_CMP_EQ' }, { index: 2, value: 9, op: 'SCMP_CMP_EQ' }], excludes: { caps: ['CAP_AUDIT_WRITE'] } },
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: null, includes: { caps: ['CAP_AUDIT_WRITE'] } },
    { names: ['io_uring_setup'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.1' } },
    { names: ['old_thing'], action: 'SCMP_ACT_ALLOW', excludes: { minKernel: '5.1' } },
    { name: 'ptrace', action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_PTRACE'] } },
  ],
};

test('a container with the default caps on amd64 gets the rules that apply to it, in OCI form', () => {
  const oci = dockerProfileToOci(profile, { capabilities: ['CAP_CHOWN', 'CAP_AUDIT_WRITE'], arch: 'amd64', kernelVersion: '6.1.0-18-amd64' });
  assert.deepEqual(oci, {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }] },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW' },
      { names: ['sync_file_range'], action: 'SCMP_ACT_ALLOW' },
      { names: ['mount', 'setns'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
      { names: ['socket'], action: 'SCMP_ACT_ALLOW' },
      { names: ['io_uring_setup'], action: 'SCMP_ACT_ALLOW' },
    ],
  });
});

test('includes.caps needs every capability, excludes.caps drops on any; cap names are normalised', () => {
  const names = (caps: string[]): string[] =>
    dockerProfileToOci(profile, { capabilities: caps, arch: 'amd64', kernelVersion: '6.1' }).syscalls!.flatMap((s) => s.names.map((n) => `${n}:${s.action}`));
  const admin = names(['sys_admin']);
  assert.ok(admin.includes('mount:SCMP_ACT_ALLOW'));
  assert.ok(!admin.includes('mount:SCMP_ACT_ERRNO'));
  assert.ok(!admin.includes('bpf:SCMP_ACT_ALLOW'), 'CAP_BPF missing');
  assert.ok(names(['CAP_SYS_ADMIN', 'cap_bpf']).includes('bpf:SCMP_ACT_ALLOW'));
  const none = names([]);
  assert.ok(none.includes('mount:SCMP_ACT_ERRNO'));
  assert.ok(none.includes('socket:SCMP_ACT_ERRNO'), 'the audit socket rule applies without CAP_AUDIT_WRITE');
  assert.ok(!none.includes('socket:SCMP_ACT_ALLOW'));
  assert.ok(names(['CAP_SYS_PTRACE']).includes('ptrace:SCMP_ACT_ALLOW'), 'the deprecated single `name` works');
});

test('arch selects the archMap entry and the arch-specific rules', () => {
  const oci = dockerProfileToOci(profile, { capabilities: [], arch: 'arm64', kernelVersion: '6.1' });
  assert.deepEqual(oci.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  const names = oci.syscalls!.flatMap((s) => s.names);
  assert.ok(names.includes('set_tls'));
  assert.ok(!names.includes('arch_prctl'));
  assert.ok(!names.includes('sync_file_range'), 'excluded on arm64');
  // Node's names work too, and an arch missing from archMap leaves the list out (native only).
  assert.deepEqual(dockerProfileToOci(profile, { capabilities: [], arch: 'x64', kernelVersion: '6.1' }).architectures?.[0], 'SCMP_ARCH_X86_64');
  assert.equal(dockerProfileToOci(profile, { capabilities: [], arch: 's390x', kernelVersion: '6.1' }).architectures, undefined);
  assert.throws(() => dockerProfileToOci(profile, { capabilities: [], arch: 'vax' }), { code: 'BERTH_SECCOMP_PROFILE', message: /vax/ });
});

test('minKernel: includes needs at least that kernel, excludes applies below it (major.minor)', () => {
  const names = (kernelVersion: string): string[] =>
    dockerProfileToOci(profile, { capabilities: [], arch: 'amd64', kernelVersion }).syscalls!.flatMap((s) => s.names);
  assert.ok(names('5.1.0').includes('io_uring_setup'));
  assert.ok(!names('5.1.0').includes('old_thing'));
  assert.ok(!names('5.0.21').includes('io_uring_setup'));
  assert.ok(names('5.0.21').includes('old_thing'));
  assert.ok(names('10.0').includes('io_uring_setup'), 'compared as numbers, not strings');
  assert.throws(() => names('weird'), { code: 'BERTH_SECCOMP_PROFILE', message: /kernel version/ });
});

test('a fixed architectures list is kept, but not together with archMap', () => {
  const fixed = dockerProfileToOci({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'] }, { capabilities: [], arch: 'amd64' });
  assert.deepEqual(fixed, { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [] });
  assert.throws(
    () => dockerProfileToOci({ ...profile, architectures: ['SCMP_ARCH_X86_64'] }, { capabilities: [], arch: 'amd64' }),
    { code: 'BERTH_SECCOMP_PROFILE', message: /either 'architectures' or 'archMap'/ },
  );
});

test('parseSeccompProfile names the source and the field at fault', () => {
  assert.throws(() => parseSeccompProfile('{"defaultAction": ', 'p.json'), { code: 'BERTH_SECCOMP_PROFILE', message: /^seccomp profile p\.json: invalid JSON/ });
  assert.throws(() => parseSeccompProfile('[]', 'p.json'), { message: /p\.json: \(top level\): must be a JSON object/ });
  assert.throws(() => parseSeccompProfile('{"defaultAction":"SCMP_ACT_NOPE"}', 'p.json'), {
    code: 'BERTH_SECCOMP_PROFILE',
    message: /p\.json: defaultAction: unknown action "SCMP_ACT_NOPE"/,
  });
  const bad = (syscall: object): string =>
    JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }, syscall] });
  assert.throws(() => parseSeccompProfile(bad({ names: ['x'], action: 'ALLOW' }), 'p'), { message: /syscalls\[1\]\.action: unknown action "ALLOW"/ });
  assert.throws(() => parseSeccompProfile(bad({ names: ['x'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'EQ' }] }), 'p'), {
    message: /syscalls\[1\]\.args\[0\]\.op: unknown operator "EQ"/,
  });
  assert.throws(() => parseSeccompProfile(bad({ names: ['x'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }), 'p'), {
    message: /syscalls\[1\]\.args\[0\]\.index: must be an integer from 0 to 5/,
  });
  assert.throws(() => parseSeccompProfile(bad({ name: 'x', names: ['y'], action: 'SCMP_ACT_ALLOW' }), 'p'), { message: /either 'name' or 'names'/ });
  assert.throws(() => parseSeccompProfile(bad({ action: 'SCMP_ACT_ALLOW' }), 'p'), { message: /syscalls\[1\]\.names: names no syscall/ });
  assert.throws(() => parseSeccompProfile(bad({ names: ['x'], action: 'SCMP_ACT_ERRNO', errnoRet: -1 }), 'p'), { message: /syscalls\[1\]\.errnoRet/ });
  assert.throws(() => parseSeccompProfile(bad({ names: ['x'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: 'five' } }), 'p'), {
    message: /syscalls\[1\]\.includes\.minKernel/,
  });
});

test('loadSeccompProfile reads a file, and a missing one is a NotFound SystemError', (t) => {
  const dir = mkdtempSync(join(tmpdir(), `berth-seccomp-${process.pid}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'profile.json');
  writeFileSync(file, JSON.stringify(profile));
  assert.deepEqual(loadSeccompProfile(file), profile);
  assert.throws(() => loadSeccompProfile(join(dir, 'missing.json')), (err: unknown) => {
    assert.ok(err instanceof SystemError);
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.path, join(dir, 'missing.json'));
    assert.equal(err.kind, 'NotFound');
    return true;
  });
});
