import { BerthError } from '@berth/errors';

/**
 * Resource limits, shaped like OCI `linux.resources` (field names as in config.json), so a
 * spec's object can be passed as is. Every field is optional: `apply` changes only what is given.
 */
export interface Resources {
  cpu?: CpuResources | undefined;
  memory?: MemoryResources | undefined;
  pids?: PidsResources | undefined;
  blockIO?: BlockIOResources | undefined;
  devices?: DeviceRule[] | undefined;
  hugepageLimits?: HugepageLimit[] | undefined;
  /** cgroup v2 control files and values, written last, verbatim. */
  unified?: Record<string, string> | undefined;
}

export interface CpuResources {
  /** Relative weight, 2..262144 (v1 cpu.shares; v2 converted to cpu.weight). 0 = unset. */
  shares?: number | undefined;
  /** CFS quota in microseconds per period; -1 = unlimited. 0 = unset. */
  quota?: number | undefined;
  /** CFS period in microseconds. 0 = unset. */
  period?: number | undefined;
  realtimeRuntime?: number | undefined;
  realtimePeriod?: number | undefined;
  /** cpuset list, e.g. "0-1,3". */
  cpus?: string | undefined;
  /** memory node list, e.g. "0". */
  mems?: string | undefined;
}

export interface MemoryResources {
  /** Bytes; -1 = unlimited. */
  limit?: number | undefined;
  /** Soft limit in bytes (v1 soft_limit, v2 memory.low); -1 = unlimited. */
  reservation?: number | undefined;
  /** Memory plus swap in bytes (the OCI/v1 meaning); -1 = unlimited swap. */
  swap?: number | undefined;
  kernel?: number | undefined;
  kernelTCP?: number | undefined;
  /** 0..100. */
  swappiness?: number | undefined;
  disableOOMKiller?: boolean | undefined;
}

export interface PidsResources {
  /** Maximum number of tasks; -1 or 0 = unlimited. */
  limit: number;
}

export interface WeightDevice {
  major: number;
  minor: number;
  weight?: number | undefined;
  leafWeight?: number | undefined;
}

export interface ThrottleDevice {
  major: number;
  minor: number;
  /** Bytes or operations per second; 0 removes the limit. */
  rate: number;
}

export interface BlockIOResources {
  /** 10..1000. */
  weight?: number | undefined;
  leafWeight?: number | undefined;
  weightDevice?: WeightDevice[] | undefined;
  throttleReadBpsDevice?: ThrottleDevice[] | undefined;
  throttleWriteBpsDevice?: ThrottleDevice[] | undefined;
  throttleReadIOPSDevice?: ThrottleDevice[] | undefined;
  throttleWriteIOPSDevice?: ThrottleDevice[] | undefined;
}

export interface DeviceRule {
  allow: boolean;
  /** a (all), b (block) or c (char); default a. */
  type?: 'a' | 'b' | 'c' | undefined;
  /** Absent, null or -1 = any. */
  major?: number | null | undefined;
  minor?: number | null | undefined;
  /** Any of r, w, m; default rwm. */
  access?: string | undefined;
}

export interface HugepageLimit {
  /** e.g. "2MB", "1GB". */
  pageSize: string;
  /** Bytes. */
  limit: number;
}

/** Something the caller asked for that this host or cgroup version cannot do; it was not applied. */
export interface CgroupWarning {
  /** The resource field, e.g. "devices", "memory.swappiness". */
  item: string;
  reason: string;
}

function bad(field: string, message: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', `resources.${field}: ${message}`, { details: { field: `resources.${field}` } });
}

function int(field: string, v: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(field, `${String(v)} is not an integer`);
  if (v < min || v > max) throw bad(field, `${v} is out of range ${min}..${max}`);
}

const LIST = /^\s*$|^\d+(-\d+)?(,\d+(-\d+)?)*$/;
const PAGE_SIZE = /^[1-9]\d*[KMG]B$/;
// A control file name: "<controller>.<knob>"; never a path.
const UNIFIED_KEY = /^[a-z_]+(\.[A-Za-z0-9_]+)+$/;

function devices(field: string, list: WeightDevice[] | ThrottleDevice[] | undefined, kind: 'weight' | 'rate'): void {
  if (list === undefined) return;
  if (!Array.isArray(list)) throw bad(field, 'is not a list');
  list.forEach((d, i) => {
    const f = `${field}[${i}]`;
    int(`${f}.major`, d.major, 0);
    int(`${f}.minor`, d.minor, 0);
    if (typeof d.major !== 'number' || typeof d.minor !== 'number') throw bad(f, 'needs major and minor');
    if (kind === 'rate') int(`${f}.rate`, (d as ThrottleDevice).rate, 0);
    else {
      int(`${f}.weight`, (d as WeightDevice).weight, 10, 1000);
      int(`${f}.leafWeight`, (d as WeightDevice).leafWeight, 10, 1000);
    }
  });
}

/** Throws BERTH_INVALID_ARGUMENT naming the first field that is malformed or out of range. */
export function validateResources(r: Resources): void {
  const { cpu, memory, pids, blockIO } = r;
  if (cpu !== undefined) {
    if (cpu.shares !== 0) int('cpu.shares', cpu.shares, 2, 262144);
    if (cpu.quota !== -1 && cpu.quota !== 0) int('cpu.quota', cpu.quota, 1000);
    if (cpu.period !== 0) int('cpu.period', cpu.period, 1000, 1_000_000);
    int('cpu.realtimeRuntime', cpu.realtimeRuntime, -1);
    int('cpu.realtimePeriod', cpu.realtimePeriod, 0);
    for (const k of ['cpus', 'mems'] as const) {
      const v = cpu[k];
      if (v !== undefined && (typeof v !== 'string' || !LIST.test(v))) throw bad(`cpu.${k}`, `"${String(v)}" is not a list like "0-2,4"`);
    }
  }
  if (memory !== undefined) {
    for (const k of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP'] as const) {
      if (memory[k] !== -1) int(`memory.${k}`, memory[k], 0);
    }
    int('memory.swappiness', memory.swappiness, 0, 100);
    const { limit, swap } = memory;
    if (limit === -1 && swap !== undefined && swap > 0) {
      throw bad('memory.swap', `a memory+swap limit ${swap} with an unlimited memory limit`);
    }
    if (limit !== undefined && limit > 0 && swap !== undefined && swap > 0 && swap < limit) {
      throw bad('memory.swap', `memory+swap ${swap} is lower than memory limit ${limit}`);
    }
    if (memory.disableOOMKiller !== undefined && typeof memory.disableOOMKiller !== 'boolean') {
      throw bad('memory.disableOOMKiller', 'is not a boolean');
    }
  }
  if (pids !== undefined) {
    if (pids.limit !== -1) int('pids.limit', pids.limit, 0);
  }
  if (blockIO !== undefined) {
    int('blockIO.weight', blockIO.weight === 0 ? undefined : blockIO.weight, 10, 1000);
    int('blockIO.leafWeight', blockIO.leafWeight === 0 ? undefined : blockIO.leafWeight, 10, 1000);
    devices('blockIO.weightDevice', blockIO.weightDevice, 'weight');
    devices('blockIO.throttleReadBpsDevice', blockIO.throttleReadBpsDevice, 'rate');
    devices('blockIO.throttleWriteBpsDevice', blockIO.throttleWriteBpsDevice, 'rate');
    devices('blockIO.throttleReadIOPSDevice', blockIO.throttleReadIOPSDevice, 'rate');
    devices('blockIO.throttleWriteIOPSDevice', blockIO.throttleWriteIOPSDevice, 'rate');
  }
  r.devices?.forEach((d, i) => {
    const f = `devices[${i}]`;
    if (typeof d.allow !== 'boolean') throw bad(`${f}.allow`, 'is not a boolean');
    if (d.type !== undefined && !['a', 'b', 'c'].includes(d.type)) throw bad(`${f}.type`, `"${d.type}" is not a, b or c`);
    if (d.major !== null && d.major !== -1) int(`${f}.major`, d.major, 0);
    if (d.minor !== null && d.minor !== -1) int(`${f}.minor`, d.minor, 0);
    if (d.access !== undefined && !/^[rwm]{0,3}$/.test(d.access)) throw bad(`${f}.access`, `"${d.access}" is not made of r, w, m`);
  });
  r.hugepageLimits?.forEach((h, i) => {
    if (typeof h.pageSize !== 'string' || !PAGE_SIZE.test(h.pageSize)) throw bad(`hugepageLimits[${i}].pageSize`, `"${String(h.pageSize)}" is not like "2MB"`);
    int(`hugepageLimits[${i}].limit`, h.limit, 0);
  });
  if (r.unified !== undefined) {
    for (const [k, v] of Object.entries(r.unified)) {
      if (!UNIFIED_KEY.test(k) || k.startsWith('cgroup.')) throw bad(`unified["${k}"]`, 'is not a controller file name');
      if (typeof v !== 'string' || v.includes('\n')) throw bad(`unified["${k}"]`, 'value must be a one-line string');
    }
  }
}

/** v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000), the mapping runc and crun use. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** v1 blkio.weight (10..1000) -> v2 io.weight (1..10000), linear like runc. */
export function blkioWeightToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/**
 * OCI memory.swap is memory+swap (v1 semantics); v2's memory.swap.max is swap alone.
 * Returns the memory.swap.max value, "max", or undefined when nothing is to be written.
 */
export function swapToV2(swap: number | undefined, limit: number | undefined): string | undefined {
  // An unlimited memory with swap left unset means "both unlimited", as on v1.
  if (limit === -1 && (swap === undefined || swap === 0)) return 'max';
  if (swap === undefined || swap === 0) return undefined;
  if (swap === -1) return 'max';
  if (limit === undefined || limit <= 0) {
    throw bad('memory.swap', 'a memory+swap limit needs a memory limit on cgroup v2');
  }
  return String(swap - limit);
}
