// A classic-BPF interpreter for seccomp programs, for tests: it answers what a compiled
// profile does with one syscall without installing it. test/privileged/seccomp.test.ts checks
// its answers against the kernel's.

/** struct seccomp_data, as a filter sees it. */
export interface SeccompData {
  nr: number;
  /** AUDIT_ARCH_* of the calling ABI; AUDIT_ARCH_X86_64 when omitted. */
  arch?: number;
  instructionPointer?: bigint;
  /** Up to six arguments, as unsigned 64-bit words (numbers are taken as two's complement). */
  args?: ReadonlyArray<bigint | number>;
}

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;

export type SeccompVerdict =
  | { action: 'KILL_PROCESS' }
  | { action: 'KILL_THREAD' }
  | { action: 'TRAP'; data: number }
  | { action: 'ERRNO'; errno: number }
  | { action: 'USER_NOTIF' }
  | { action: 'TRACE'; data: number }
  | { action: 'LOG' }
  | { action: 'ALLOW' };

function seccompDataBytes(d: SeccompData): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(d.nr >>> 0, 0);
  b.writeUInt32LE((d.arch ?? AUDIT_ARCH_X86_64) >>> 0, 4);
  b.writeBigUInt64LE(BigInt.asUintN(64, d.instructionPointer ?? 0n), 8);
  const args = d.args ?? [];
  if (args.length > 6) throw new RangeError('seccomp data has at most 6 arguments');
  args.forEach((a, i) => b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a)), 16 + 8 * i));
  return b;
}

/**
 * Runs `program` (struct sock_filter[], little endian) over one syscall and returns the
 * filter's 32-bit return value. Throws on what the kernel's checker would refuse (a jump or
 * load out of bounds, division by zero, falling off the end).
 */
export function runSeccompBpf(program: Buffer, data: SeccompData): number {
  if (program.length === 0 || program.length % 8 !== 0) throw new RangeError(`program length ${program.length} is not a positive multiple of 8`);
  const mem = seccompDataBytes(data);
  const n = program.length / 8;
  const scratch = new Uint32Array(16);
  let a = 0;
  let x = 0;
  for (let pc = 0, steps = 0; pc < n; pc++, steps++) {
    if (steps > 1_000_000) throw new Error('program does not terminate');
    const code = program.readUInt16LE(pc * 8);
    const jt = program.readUInt8(pc * 8 + 2);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    const cls = code & 0x07;
    const src = code & 0x08 ? x : k;
    switch (cls) {
      case 0x00: // LD
      case 0x01: {
        // LDX
        const mode = code & 0xe0;
        let v: number;
        if (mode === 0x00) v = k; // IMM
        else if (mode === 0x80) v = 64; // LEN
        else if (mode === 0x60) v = scratch[k & 15]!; // MEM
        else if (mode === 0x20 && (code & 0x18) === 0x00) {
          if (k % 4 !== 0 || k + 4 > 64) throw new RangeError(`load at offset ${k} at pc ${pc}`);
          v = mem.readUInt32LE(k);
        } else throw new Error(`unsupported load 0x${code.toString(16)} at pc ${pc}`);
        if (cls === 0x00) a = v;
        else x = v;
        break;
      }
      case 0x02: // ST
        scratch[k & 15] = a;
        break;
      case 0x03: // STX
        scratch[k & 15] = x;
        break;
      case 0x04: {
        // ALU
        const op = code & 0xf0;
        if ((op === 0x30 || op === 0x90) && src === 0) throw new RangeError(`division by zero at pc ${pc}`);
        const r =
          op === 0x00 ? a + src
          : op === 0x10 ? a - src
          : op === 0x20 ? Math.imul(a, src)
          : op === 0x30 ? Math.floor((a >>> 0) / (src >>> 0))
          : op === 0x40 ? a | src
          : op === 0x50 ? a & src
          : op === 0x60 ? (src >= 32 ? 0 : a << src)
          : op === 0x70 ? (src >= 32 ? 0 : a >>> src)
          : op === 0x80 ? -a
          : op === 0x90 ? (a >>> 0) % (src >>> 0)
          : op === 0xa0 ? a ^ src
          : NaN;
        if (Number.isNaN(r)) throw new Error(`unsupported alu 0x${code.toString(16)} at pc ${pc}`);
        a = r >>> 0;
        break;
      }
      case 0x05: {
        // JMP
        const op = code & 0xf0;
        if (op === 0x00) {
          pc += k;
        } else {
          const ua = a >>> 0;
          const us = src >>> 0;
          const cond = op === 0x10 ? ua === us : op === 0x20 ? ua > us : op === 0x30 ? ua >= us : op === 0x40 ? (ua & us) !== 0 : undefined;
          if (cond === undefined) throw new Error(`unsupported jump 0x${code.toString(16)} at pc ${pc}`);
          pc += cond ? jt : jf;
        }
        if (pc + 1 >= n) throw new RangeError(`jump past the end at pc ${pc}`);
        break;
      }
      case 0x06: {
        // RET
        const rv = code & 0x18;
        return (rv === 0x10 ? a : rv === 0x08 ? x : k) >>> 0;
      }
      case 0x07: // MISC
        if ((code & 0xf8) === 0x00) x = a; // TAX
        else a = x; // TXA
        break;
      default:
        throw new Error(`unsupported instruction 0x${code.toString(16)} at pc ${pc}`);
    }
  }
  throw new RangeError('program ends without a return');
}

/** Splits a filter return value into the action the kernel takes and its data. */
export function seccompVerdict(ret: number): SeccompVerdict {
  const action = ret & 0xffff0000;
  const data = ret & 0xffff;
  // SECCOMP_RET_ACTION_FULL values, signed as the kernel compares them.
  switch (action | 0) {
    case 0x80000000 | 0:
      return { action: 'KILL_PROCESS' };
    case 0x00000000:
      return { action: 'KILL_THREAD' };
    case 0x00030000:
      return { action: 'TRAP', data };
    case 0x00050000:
      return { action: 'ERRNO', errno: data };
    case 0x7fc00000:
      return { action: 'USER_NOTIF' };
    case 0x7ff00000:
      return { action: 'TRACE', data };
    case 0x7ffc0000:
      return { action: 'LOG' };
    case 0x7fff0000:
      return { action: 'ALLOW' };
    default:
      // The kernel treats unknown actions as KILL_PROCESS.
      return { action: 'KILL_PROCESS' };
  }
}

/** runSeccompBpf + seccompVerdict. */
export function evaluateSeccomp(program: Buffer, data: SeccompData): SeccompVerdict {
  return seccompVerdict(runSeccompBpf(program, data));
}
