import { BerthError } from '@berth/errors';
import { SeccompFilterFlag } from './constants.js';

/** The actions of an OCI seccomp profile. */
export const seccompActions = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
] as const;
export type SeccompAction = (typeof seccompActions)[number];

/** The argument comparisons of an OCI seccomp profile. */
export const seccompOperators = [
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
] as const;
export type SeccompOperator = (typeof seccompOperators)[number];

/**
 * One argument comparison. Values are unsigned 64-bit words: a number (safe integers; a
 * negative one is taken as two's complement) or a bigint. For SCMP_CMP_MASKED_EQ, `value`
 * is the mask and `valueTwo` the expected result.
 */
export interface OciSeccompArg {
  index: number;
  value: number | bigint;
  valueTwo?: number | bigint;
  op: SeccompOperator;
}

export interface OciSeccompSyscall {
  names: string[];
  action: SeccompAction;
  /** errno for SCMP_ACT_ERRNO / SCMP_ACT_TRACE; EPERM when absent. */
  errnoRet?: number;
  /** Conditions, ANDed; when one index appears twice, each condition is its own rule (runc). */
  args?: OciSeccompArg[];
}

/** The OCI runtime spec's `linux.seccomp`. */
export interface OciSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  /** `SCMP_ARCH_X86_64`, ... The native architecture is always included. */
  architectures?: string[];
  /** `SECCOMP_FILTER_FLAG_*` names, applied when the filter is installed. */
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: OciSeccompSyscall[];
}

/** A compiled profile. */
export interface CompiledSeccomp {
  /** The program: an array of struct sock_filter, 8 bytes each. */
  bpf: Buffer;
  /** Syscall names libseccomp does not know; left out, as runc does. */
  skipped: string[];
  /** Names of rules whose action equals the default action; left out (they change nothing). */
  sameAsDefault: string[];
}

/**
 * The `flags` argument of seccomp(SECCOMP_SET_MODE_FILTER) for a profile's `flags`.
 * SECCOMP_FILTER_FLAG_NEW_LISTENER is refused: it needs a seccomp agent.
 */
export function seccompFilterFlags(profile: Pick<OciSeccomp, 'flags'>): number {
  let value = 0;
  for (const [i, name] of (profile.flags ?? []).entries()) {
    const bit = (SeccompFilterFlag as Record<string, number>)[name];
    if (bit === undefined || name === 'SECCOMP_FILTER_FLAG_NEW_LISTENER') {
      throw new BerthError('BERTH_SECCOMP_PROFILE', `seccomp.flags[${i}]: unsupported flag ${JSON.stringify(name)}`, {
        details: { field: `seccomp.flags[${i}]`, value: name },
      });
    }
    value |= bit;
  }
  return value;
}
