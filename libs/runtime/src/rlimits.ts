import { BerthError } from '@berth/errors';
import type { PlanRlimit } from '@berth/native';

const rlimitNumbers: Readonly<Record<string, number>> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

const INFINITY = 0xffffffffffffffffn;

function limit(v: number): bigint {
  // -1 and the 64-bit all-ones both mean unlimited (JSON cannot carry 2^64-1 exactly).
  if (v < 0 || v >= 2 ** 64 - 1) return INFINITY;
  return BigInt(Math.trunc(v));
}

export function planRlimits(rlimits: { type: string; soft: number; hard: number }[] | undefined): PlanRlimit[] {
  return (rlimits ?? []).map((r, i) => {
    const type = rlimitNumbers[r.type];
    if (type === undefined) throw new BerthError('BERTH_SPEC_INVALID', `process.rlimits[${i}].type: unknown rlimit "${r.type}"`);
    const soft = limit(r.soft);
    const hard = limit(r.hard);
    if (soft > hard) throw new BerthError('BERTH_SPEC_INVALID', `process.rlimits[${i}]: soft limit ${r.soft} is above the hard limit ${r.hard}`);
    return { type, soft, hard };
  });
}
