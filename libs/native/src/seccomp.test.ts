import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seccompFilterFlags } from './seccomp.js';
import { AUDIT_ARCH_I386, evaluateSeccomp, runSeccompBpf, seccompVerdict } from './seccomp-bpf.js';

test('seccompFilterFlags ORs the OCI flag names and refuses unknown ones and NEW_LISTENER', () => {
  assert.equal(seccompFilterFlags({}), 0);
  assert.equal(seccompFilterFlags({ flags: ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] }), 0x5);
  assert.throws(() => seccompFilterFlags({ flags: ['SECCOMP_FILTER_FLAG_LOG', 'BOGUS'] }), {
    code: 'BERTH_SECCOMP_PROFILE',
    message: /seccomp\.flags\[1\].*BOGUS/,
  });
  assert.throws(() => seccompFilterFlags({ flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] }), { code: 'BERTH_SECCOMP_PROFILE' });
});

// sock_filter helpers for hand-assembled programs.
const insn = (code: number, jt: number, jf: number, k: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(code, 0);
  b.writeUInt8(jt, 2);
  b.writeUInt8(jf, 3);
  b.writeUInt32LE(k >>> 0, 4);
  return b;
};
const LD_ABS = 0x20;
const JEQ_K = 0x15;
const JSET_K = 0x45;
const RET_K = 0x06;

// arch == x86_64 ? (nr == 39 ? ERRNO(13) : (arg0 low word & 4 ? KILL_PROCESS : ALLOW)) : KILL_THREAD
const program = Buffer.concat([
  insn(LD_ABS, 0, 0, 4),
  insn(JEQ_K, 1, 0, 0xc000003e),
  insn(RET_K, 0, 0, 0),
  insn(LD_ABS, 0, 0, 0),
  insn(JEQ_K, 0, 1, 39),
  insn(RET_K, 0, 0, 0x00050000 | 13),
  insn(LD_ABS, 0, 0, 16),
  insn(JSET_K, 0, 1, 4),
  insn(RET_K, 0, 0, 0x80000000),
  insn(RET_K, 0, 0, 0x7fff0000),
]);

test('the BPF interpreter follows loads, jumps and returns', () => {
  assert.deepEqual(evaluateSeccomp(program, { nr: 39 }), { action: 'ERRNO', errno: 13 });
  assert.deepEqual(evaluateSeccomp(program, { nr: 1, args: [4] }), { action: 'KILL_PROCESS' });
  assert.deepEqual(evaluateSeccomp(program, { nr: 1, args: [3n | (4n << 32n)] }), { action: 'ALLOW' });
  assert.deepEqual(evaluateSeccomp(program, { nr: 39, arch: AUDIT_ARCH_I386 }), { action: 'KILL_THREAD' });
});

test('the BPF interpreter refuses malformed programs', () => {
  assert.throws(() => runSeccompBpf(Buffer.alloc(7), { nr: 0 }), /multiple of 8/);
  assert.throws(() => runSeccompBpf(insn(LD_ABS, 0, 0, 4), { nr: 0 }), /without a return/);
  assert.throws(() => runSeccompBpf(Buffer.concat([insn(JEQ_K, 5, 5, 0), insn(RET_K, 0, 0, 0)]), { nr: 0 }), /past the end/);
  assert.throws(() => runSeccompBpf(Buffer.concat([insn(LD_ABS, 0, 0, 62), insn(RET_K, 0, 0, 0)]), { nr: 0 }), /offset 62/);
});

test('seccompVerdict decodes the action and its data', () => {
  assert.deepEqual(seccompVerdict(0x7fff0000), { action: 'ALLOW' });
  assert.deepEqual(seccompVerdict(0x00050026), { action: 'ERRNO', errno: 38 });
  assert.deepEqual(seccompVerdict(0x7ff00001), { action: 'TRACE', data: 1 });
  assert.deepEqual(seccompVerdict(0x7ffc0000), { action: 'LOG' });
  assert.deepEqual(seccompVerdict(0x00030000), { action: 'TRAP', data: 0 });
  assert.deepEqual(seccompVerdict(0x80000000), { action: 'KILL_PROCESS' });
  assert.deepEqual(seccompVerdict(0), { action: 'KILL_THREAD' });
});
