// Compiles seccomp profiles with the addon, installs the programs in a forked C fixture and
// checks what the kernel does with real syscalls; the BPF interpreter of ./testing must agree.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realSyscalls, type OciSeccomp } from '../../src/index.js';
import { AUDIT_ARCH_I386, evaluateSeccomp } from '../../src/testing.js';
import { removeDir, tempDir } from './helpers.js';

// x86_64 syscall numbers used below.
const NR = { socket: 41, getpid: 39, mkdir: 83, getuid: 102, getppid: 110, umask: 95, personality: 135 } as const;
const skip = process.arch !== 'x64' ? 'syscall numbers are x86_64' : false;

const fixtureSource = fileURLToPath(new URL('../../../test/privileged/fixtures/seccomp-run.c', import.meta.url));
let dir = '';
let runner = '';

before(() => {
  if (skip) return;
  dir = tempDir('berth-t-seccomp');
  runner = join(dir, 'seccomp-run');
  execFileSync('gcc', ['-O2', '-Wall', '-o', runner, fixtureSource], { stdio: 'pipe' });
});
after(() => {
  if (dir) removeDir(dir);
});

type Call = [nr: number, ...args: (number | string)[]];

/** Runs the calls under the compiled profile; returns the fixture's line per call. */
function run(profile: OciSeccomp, calls: Call[]): string[] {
  const bpf = realSyscalls().compileSeccomp(profile);
  assert.ok(bpf.length > 0 && bpf.length % 8 === 0, `program of ${bpf.length} bytes`);
  const file = join(dir, 'prog.bpf');
  writeFileSync(file, bpf);
  const argv = calls.map(([nr, ...args]) => [nr, ...args.map((a) => (typeof a === 'string' ? `s:${a}` : `0x${a.toString(16)}`))].join(','));
  const lines = execFileSync(runner, [file, ...argv], { encoding: 'utf8' }).trim().split('\n');
  // The interpreter must predict every call the kernel made.
  calls.forEach(([nr, ...args], i) => {
    const line = lines[i]!;
    if (line === 'notrun') return;
    const v = evaluateSeccomp(bpf, { nr, args: args.map((a) => (typeof a === 'number' ? a : 0)) });
    if (v.action === 'ERRNO') assert.equal(line, `errno ${v.errno}`, `interpreter vs kernel for call ${i}`);
    else if (v.action === 'KILL_PROCESS' || v.action === 'KILL_THREAD') assert.equal(line, 'killed 31', `call ${i}`);
    else if (v.action === 'ALLOW') assert.match(line, /^(ok|errno) /, `call ${i}`);
  });
  return lines;
}

test('default ERRNO without errnoRet is EPERM; listed syscalls are allowed', { skip }, () => {
  const target = join(dir, 'made-a');
  const lines = run({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_ALLOW' }] }, [
    [NR.getppid],
    [NR.mkdir, target, 0o755],
    [NR.getuid],
  ]);
  assert.match(lines[0]!, /^ok [1-9]\d*$/);
  assert.deepEqual(lines.slice(1), ['errno 1', 'errno 1']);
  assert.equal(existsSync(target), false);
});

test('defaultErrnoRet sets the errno of the default action', { skip }, () => {
  const lines = run({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_ALLOW' }] }, [
    [NR.mkdir, join(dir, 'made-b'), 0o755],
    [NR.getppid],
  ]);
  assert.equal(lines[0], 'errno 38');
  assert.match(lines[1]!, /^ok /);
});

test('per-rule errnoRet and KILL_PROCESS under a default ALLOW', { skip }, () => {
  const target = join(dir, 'made-c');
  const lines = run(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        { names: ['getpid'], action: 'SCMP_ACT_KILL_PROCESS' },
      ],
    },
    [[NR.getppid], [NR.mkdir, target, 0o755], [NR.getpid], [NR.getuid]],
  );
  assert.match(lines[0]!, /^ok /);
  assert.deepEqual(lines.slice(1), ['errno 13', 'killed 31', 'notrun']);
  assert.equal(existsSync(target), false);
});

test('argument comparisons: EQ, MASKED_EQ, and conditions on different arguments are ANDed', { skip }, () => {
  const lines = run(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
        { names: ['umask'], action: 'SCMP_ACT_ERRNO', errnoRet: 22, args: [{ index: 0, value: 0o700, valueTwo: 0o700, op: 'SCMP_CMP_MASKED_EQ' }] },
        {
          names: ['socket'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: 122,
          args: [
            { index: 0, value: 16, op: 'SCMP_CMP_EQ' },
            { index: 2, value: 9, op: 'SCMP_CMP_EQ' },
          ],
        },
      ],
    },
    [
      [NR.personality, 0xffffffff],
      [NR.personality, 8],
      [NR.umask, 0o077],
      [NR.umask, 0o700],
      [NR.umask, 0o755],
      [NR.socket, 16, 3, 9],
      [NR.socket, 16, 3, 0],
      [NR.socket, 2, 2, 9],
    ],
  );
  assert.match(lines[0]!, /^ok /);
  assert.equal(lines[1], 'errno 1');
  assert.match(lines[2]!, /^ok /);
  assert.deepEqual(lines.slice(3, 6), ['errno 22', 'errno 22', 'errno 122']);
  assert.match(lines[6]!, /^ok /);
  // AF_INET with protocol 9 reaches the kernel, which refuses it on its own terms.
  assert.equal(lines[7], 'errno 93');
});

test('conditions repeating one argument index are ORed, as runc does', { skip }, () => {
  const lines = run(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        {
          names: ['umask'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: 1,
          args: [
            { index: 0, value: 0o111, op: 'SCMP_CMP_EQ' },
            { index: 0, value: 0o222, op: 'SCMP_CMP_EQ' },
          ],
        },
      ],
    },
    [[NR.umask, 0o111], [NR.umask, 0o222], [NR.umask, 0o333]],
  );
  assert.deepEqual(lines.slice(0, 2), ['errno 1', 'errno 1']);
  assert.match(lines[2]!, /^ok /);
});

test('unknown names are skipped and rules equal to the default are left out, both reported', { skip }, () => {
  const profile: OciSeccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['getppid', 'berth_no_such_syscall'], action: 'SCMP_ACT_ALLOW' },
      { names: ['getuid'], action: 'SCMP_ACT_ERRNO' },
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 30 },
    ],
  };
  const out = realSyscalls().compileSeccompDetailed(profile);
  assert.deepEqual(out.skipped, ['berth_no_such_syscall']);
  assert.deepEqual(out.sameAsDefault, ['getuid']);
  const lines = run(profile, [[NR.getppid], [NR.getuid], [NR.mkdir, join(dir, 'made-d'), 0o755]]);
  assert.match(lines[0]!, /^ok /);
  assert.deepEqual(lines.slice(1), ['errno 1', 'errno 30']);
});

test('architectures: sub-architectures get rules, others hit the bad-arch action', { skip }, () => {
  const sys = realSyscalls();
  const profile: OciSeccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_ALLOW' }] };
  const nativeOnly = sys.compileSeccomp(profile);
  const withX86 = sys.compileSeccomp({ ...profile, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'] });
  // i386 getppid is 64.
  assert.deepEqual(evaluateSeccomp(withX86, { arch: AUDIT_ARCH_I386, nr: 64 }), { action: 'ALLOW' });
  assert.deepEqual(evaluateSeccomp(withX86, { arch: AUDIT_ARCH_I386, nr: 20 }), { action: 'ERRNO', errno: 1 });
  assert.deepEqual(evaluateSeccomp(nativeOnly, { arch: AUDIT_ARCH_I386, nr: 64 }), { action: 'KILL_THREAD' });
  // x32 calls come in with the x86_64 audit arch and bit 30 set.
  assert.deepEqual(evaluateSeccomp(withX86, { nr: 0x40000000 | NR.getppid }), { action: 'ALLOW' });
  assert.deepEqual(evaluateSeccomp(withX86, { nr: NR.getppid }), { action: 'ALLOW' });
});

test('profiles the compiler refuses name the field at fault', { skip }, () => {
  const sys = realSyscalls();
  assert.throws(() => sys.compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_NOTIFY' }] }), {
    code: 'BERTH_SECCOMP_PROFILE',
    message: /seccomp\.syscalls\[0\]\.action: SCMP_ACT_NOTIFY needs a seccomp agent/,
  });
  assert.throws(() => sys.compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_VAX'] }), {
    code: 'BERTH_SECCOMP_PROFILE',
    message: /seccomp\.architectures\[0\]: unknown architecture SCMP_ARCH_VAX/,
  });
  assert.throws(
    () =>
      sys.compileSeccomp({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_LOG', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }],
      }),
    { code: 'BERTH_SECCOMP_PROFILE', message: /seccomp\.syscalls\[0\]\.args\[0\]\.index/ },
  );
  assert.throws(
    () =>
      sys.compileSeccomp({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_LOG', args: [{ index: 0, value: 1, op: 'SCMP_CMP_XX' as 'SCMP_CMP_EQ' }] }],
      }),
    { code: 'BERTH_SECCOMP_PROFILE', message: /unknown operator SCMP_CMP_XX/ },
  );
  // The same condition with two different actions cannot both hold.
  assert.throws(
    () =>
      sys.compileSeccomp({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          { names: ['socket'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] },
          { names: ['socket'], action: 'SCMP_ACT_LOG', args: [{ index: 0, value: 2n ** 64n - 1n, op: 'SCMP_CMP_EQ' }] },
        ],
      }),
    (err: unknown) => {
      const e = err as { code: string; message: string; cause?: { code: string; syscall: string } };
      assert.equal(e.code, 'BERTH_SECCOMP_PROFILE');
      assert.match(e.message, /rule for syscall socket.*EEXIST/);
      assert.equal(e.cause?.syscall, 'seccomp_rule_add');
      return true;
    },
  );
});
