// cgroup v2 device filtering: OCI device rules compiled to an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE, and its installation on a cgroup directory.
//
// The kernel runs the program on every device access (open, mknod) of a task in the group
// with a struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } in r1:
// access_type holds the device type in its low 16 bits (BPF_DEVCG_DEV_BLOCK 1, CHAR 2) and
// the access in its high 16 bits (BPF_DEVCG_ACC_MKNOD 1, READ 2, WRITE 4). r0 = 1 allows,
// 0 denies (EPERM).
//
// Semantics (as the v1 devices controller and runc): deny by default, and the LAST rule that
// matches decides. A rule matches when its type is `a` or equals the device's, its major and
// minor are wildcards (-1, null, absent) or equal, and the requested access bits are all in
// the rule's access (an open O_RDWR asks for read and write at once).
import { closeSync, constants, openSync } from 'node:fs';
import { BerthError, errnoCodeOf, wrap } from '@berth/errors';
import { BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, BPF_F_REPLACE, realSyscalls } from '@berth/native';
import type { DeviceRule } from './resources.js';

export const BPF_DEVCG_DEV_BLOCK = 1;
export const BPF_DEVCG_DEV_CHAR = 2;
export const BPF_DEVCG_ACC_MKNOD = 1;
export const BPF_DEVCG_ACC_READ = 2;
export const BPF_DEVCG_ACC_WRITE = 4;

/** The license the program is loaded with (it calls no GPL-only helper). */
export const DEVICE_FILTER_LICENSE = 'Apache';

// Opcodes (classes | operation | source), include/uapi/linux/bpf_common.h and bpf.h.
const LDX_MEM_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_X = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const ALU64_MOV_K = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JMP_JNE_K = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT = 0x95; // BPF_JMP | BPF_EXIT

/** One struct bpf_insn. `off` of a jump is relative to the next instruction. */
export interface BpfInsn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): BpfInsn => ({ code, dst, src, off, imm });

// Registers: r1 context (then scratch), r2 type, r3 access, r4 major, r5 minor.
const R0 = 0;
const R1 = 1;
const R2 = 2;
const R3 = 3;
const R4 = 4;
const R5 = 5;

function invalid(field: string, message: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', `resources.${field}: ${message}`, { details: { field: `resources.${field}` } });
}

/** A major or minor as the program compares it: null for a wildcard. */
function number(field: string, v: number | null | undefined): number | null {
  if (v === undefined || v === null || v === -1) return null;
  // jne compares with a sign-extended 32-bit immediate: keep to 0..2^31-1 (the kernel's
  // majors are 12 bits and minors 20 bits anyway).
  if (!Number.isSafeInteger(v) || v < 0 || v > 0x7fffffff) throw invalid(field, `${String(v)} is not a device number`);
  return v;
}

function accessBits(field: string, access: string | undefined): number {
  const text = access === undefined || access === '' ? 'rwm' : access;
  let bits = 0;
  for (const ch of text) {
    if (ch === 'r') bits |= BPF_DEVCG_ACC_READ;
    else if (ch === 'w') bits |= BPF_DEVCG_ACC_WRITE;
    else if (ch === 'm') bits |= BPF_DEVCG_ACC_MKNOD;
    else throw invalid(field, `"${text}" is not made of r, w, m`);
  }
  return bits;
}

const ALL_ACCESS = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

/** The instructions of one rule: tests that skip to the next rule, then r0 = verdict; exit. */
function ruleBlock(rule: DeviceRule, i: number): { block: BpfInsn[]; catchAll: boolean } {
  const f = `devices[${i}]`;
  const type = rule.type ?? 'a';
  if (type !== 'a' && type !== 'b' && type !== 'c') throw invalid(`${f}.type`, `"${String(type)}" is not a, b or c`);
  const access = accessBits(`${f}.access`, rule.access);
  const major = number(`${f}.major`, rule.major);
  const minor = number(`${f}.minor`, rule.minor);
  // Each test is a list of instructions whose last one jumps past the block when it fails.
  const tests: BpfInsn[][] = [];
  if (type !== 'a') tests.push([insn(JMP_JNE_K, R2, 0, 0, type === 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR)]);
  if (access !== ALL_ACCESS) {
    // Requested bits must all be in the rule's: (r3 & access) == r3.
    tests.push([insn(ALU32_MOV_X, R1, R3, 0, 0), insn(ALU32_AND_K, R1, 0, 0, access), insn(JMP_JNE_X, R1, R3, 0, 0)]);
  }
  if (major !== null) tests.push([insn(JMP_JNE_K, R4, 0, 0, major)]);
  if (minor !== null) tests.push([insn(JMP_JNE_K, R5, 0, 0, minor)]);
  const block = [...tests.flat(), insn(ALU64_MOV_K, R0, 0, 0, rule.allow ? 1 : 0), insn(JMP_EXIT, 0, 0, 0, 0)];
  // Patch each failing jump to land just after the block.
  for (let k = 0; k < block.length; k++) {
    const b = block[k]!;
    if (b.code === JMP_JNE_K || b.code === JMP_JNE_X) b.off = block.length - (k + 1);
  }
  return { block, catchAll: tests.length === 0 };
}

/**
 * Compiles OCI device rules to the program's instructions: the context loaded into r2..r5,
 * one block per rule from the last rule to the first (the first block that matches decides),
 * and a final deny. Rules before a catch-all (`a *:* rwm`) can never decide and are left out.
 */
export function deviceFilterInsns(rules: readonly DeviceRule[]): BpfInsn[] {
  const out: BpfInsn[] = [
    insn(LDX_MEM_W, R2, R1, 0, 0), // r2 = ctx->access_type
    insn(ALU32_AND_K, R2, 0, 0, 0xffff), // r2 = type
    insn(LDX_MEM_W, R3, R1, 0, 0), // r3 = ctx->access_type
    insn(ALU32_RSH_K, R3, 0, 0, 16), // r3 = access
    insn(LDX_MEM_W, R4, R1, 4, 0), // r4 = ctx->major
    insn(LDX_MEM_W, R5, R1, 8, 0), // r5 = ctx->minor
  ];
  for (let i = rules.length - 1; i >= 0; i--) {
    const { block, catchAll } = ruleBlock(rules[i]!, i);
    out.push(...block);
    if (catchAll) return out;
  }
  out.push(insn(ALU64_MOV_K, R0, 0, 0, 0), insn(JMP_EXIT, 0, 0, 0, 0));
  return out;
}

/** struct bpf_insn[] as the kernel reads it: code u8, dst:4 | src:4 u8, off s16, imm s32 (LE). */
export function encodeInsns(insns: readonly BpfInsn[]): Buffer {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((x, i) => {
    buf.writeUInt8(x.code, i * 8);
    buf.writeUInt8(((x.src & 0xf) << 4) | (x.dst & 0xf), i * 8 + 1);
    buf.writeInt16LE(x.off, i * 8 + 2);
    buf.writeInt32LE(x.imm, i * 8 + 4);
  });
  return buf;
}

/** The program for `rules`, ready for bpfProgLoadCgroupDevice. */
export function compileDeviceFilter(rules: readonly DeviceRule[]): Buffer {
  return encodeInsns(deviceFilterInsns(rules));
}

/** A readable listing of the instructions this compiler emits (logs, golden tests). */
export function disassembleDeviceFilter(prog: Buffer): string[] {
  const lines: string[] = [];
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const code = prog.readUInt8(pc * 8);
    const regs = prog.readUInt8(pc * 8 + 1);
    const dst = `r${regs & 0xf}`;
    const src = `r${regs >> 4}`;
    const off = prog.readInt16LE(pc * 8 + 2);
    const imm = prog.readInt32LE(pc * 8 + 4);
    const to = `-> ${pc + 1 + off}`;
    let text: string;
    switch (code) {
      case LDX_MEM_W: text = `ldxw ${dst}, [${src}+${off}]`; break;
      case ALU32_AND_K: text = `and32 ${dst}, 0x${imm.toString(16)}`; break;
      case ALU32_RSH_K: text = `rsh32 ${dst}, ${imm}`; break;
      case ALU32_MOV_X: text = `mov32 ${dst}, ${src}`; break;
      case ALU64_MOV_K: text = `mov ${dst}, ${imm}`; break;
      case JMP_JNE_K: text = `jne ${dst}, ${imm}, ${to}`; break;
      case JMP_JNE_X: text = `jne ${dst}, ${src}, ${to}`; break;
      case JMP_EXIT: text = 'exit'; break;
      default: text = `.byte 0x${code.toString(16)}`;
    }
    lines.push(`${String(pc).padStart(3)}: ${text}`);
  }
  return lines;
}

/**
 * The kernel calls the device filter needs, with the cgroup directory opened by path. The
 * bpf* members are those of @berth/native `Syscalls`; `realDeviceBpf` binds them to the host.
 */
export interface DeviceBpf {
  bpfProgLoadCgroupDevice(insns: Buffer, license: string): number;
  bpfProgAttach(progFd: number, targetFd: number, attachType: number, flags: number, replaceFd?: number): void;
  bpfProgDetach(progFd: number, targetFd: number, attachType: number): void;
  bpfProgQuery(targetFd: number, attachType: number): { attachFlags: number; progIds: number[] };
  bpfProgGetFdById(id: number): number;
  /** open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) -> fd. */
  openDir(path: string): number;
  close(fd: number): void;
}

/** What installDeviceFilter did, for logs. */
export interface DeviceFilterInstall {
  instructions: number;
  /** Ids of the programs that were attached before and are now detached. */
  replaced: number[];
}

/**
 * Loads the filter for `rules` and makes it the only device program attached to the cgroup
 * directory `dir` (BPF_F_ALLOW_MULTI, so programs of parent groups keep running as well).
 * One program already there is swapped atomically (BPF_F_REPLACE); several, or a kernel
 * without REPLACE, get the new program attached first and the old ones detached after, so
 * the group is never unfiltered (meanwhile both apply, which only denies more). The program
 * stays attached after its fd is closed, until it is replaced or the group is removed.
 */
export function installDeviceFilter(bpf: DeviceBpf, dir: string, rules: readonly DeviceRule[]): DeviceFilterInstall {
  const prog = compileDeviceFilter(rules);
  const dirFd = bpf.openDir(dir);
  try {
    const progFd = bpf.bpfProgLoadCgroupDevice(prog, DEVICE_FILTER_LICENSE);
    try {
      const old = bpf.bpfProgQuery(dirFd, BPF_CGROUP_DEVICE).progIds;
      if (old.length === 1 && replaceOne(bpf, progFd, dirFd, old[0]!)) return { instructions: prog.length / 8, replaced: old };
      bpf.bpfProgAttach(progFd, dirFd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI);
      for (const id of old) detachById(bpf, dirFd, id);
      return { instructions: prog.length / 8, replaced: old };
    } finally {
      bpf.close(progFd);
    }
  } catch (err) {
    throw wrap(err, `device filter on ${dir}`);
  } finally {
    bpf.close(dirFd);
  }
}

/** Swaps program `id` for `progFd`; false when it cannot (the program went away, no REPLACE). */
function replaceOne(bpf: DeviceBpf, progFd: number, dirFd: number, id: number): boolean {
  let oldFd: number;
  try {
    oldFd = bpf.bpfProgGetFdById(id);
  } catch (err) {
    if (errnoCodeOf(err) === 'ENOENT') return false;
    throw err;
  }
  try {
    bpf.bpfProgAttach(progFd, dirFd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI | BPF_F_REPLACE, oldFd);
    return true;
  } catch (err) {
    // EINVAL: a kernel before 5.6 (no BPF_F_REPLACE), or the old one was not attached with
    // ALLOW_MULTI; ENOENT: it was detached meanwhile. The caller attaches, then detaches.
    const code = errnoCodeOf(err);
    if (code === 'EINVAL' || code === 'ENOENT') return false;
    throw err;
  } finally {
    bpf.close(oldFd);
  }
}

function detachById(bpf: DeviceBpf, dirFd: number, id: number): void {
  let fd: number;
  try {
    fd = bpf.bpfProgGetFdById(id);
  } catch (err) {
    if (errnoCodeOf(err) === 'ENOENT') return; // unloaded meanwhile
    throw err;
  }
  try {
    bpf.bpfProgDetach(fd, dirFd, BPF_CGROUP_DEVICE);
  } catch (err) {
    if (errnoCodeOf(err) !== 'ENOENT') throw err;
  } finally {
    bpf.close(fd);
  }
}

/** The host's DeviceBpf: @berth/native's syscalls (the addon loads on first use) and node:fs. */
export function realDeviceBpf(): DeviceBpf {
  return {
    bpfProgLoadCgroupDevice: (insns, license) => realSyscalls().bpfProgLoadCgroupDevice(insns, license),
    bpfProgAttach: (progFd, targetFd, attachType, flags, replaceFd) => realSyscalls().bpfProgAttach(progFd, targetFd, attachType, flags, replaceFd),
    bpfProgDetach: (progFd, targetFd, attachType) => realSyscalls().bpfProgDetach(progFd, targetFd, attachType),
    bpfProgQuery: (targetFd, attachType) => realSyscalls().bpfProgQuery(targetFd, attachType),
    bpfProgGetFdById: (id) => realSyscalls().bpfProgGetFdById(id),
    openDir: (path) => openSync(path, constants.O_RDONLY | constants.O_DIRECTORY),
    close: (fd) => closeSync(fd),
  };
}
