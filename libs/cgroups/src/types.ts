import type { CgroupLayout } from './detect.js';
import type { CgroupWarning, Resources } from './resources.js';

export interface MemoryStats {
  /** Bytes in use (v1 memory.usage_in_bytes, v2 memory.current). */
  usage: number;
  /** Bytes; null = unlimited. */
  limit: number | null;
  /** Peak usage, when the kernel reports it. */
  maxUsage?: number | undefined;
  /** memory.stat as numbers (keys as the kernel names them). */
  stat: Record<string, number>;
  /** v1 memory.failcnt: how often the limit was hit. */
  failcnt?: number | undefined;
  /** OOM kills in the group so far (v1 memory.oom_control oom_kill, v2 memory.events oom_kill). */
  oomKills?: number | undefined;
}

export interface PidsStats {
  current: number;
  /** null = unlimited. */
  limit: number | null;
}

export interface CpuStats {
  /** Total CPU time consumed, nanoseconds (v1 cpuacct.usage, v2 cpu.stat usage_usec). */
  usageNanos: number;
  userNanos?: number | undefined;
  systemNanos?: number | undefined;
  periods?: number | undefined;
  throttledPeriods?: number | undefined;
  throttledNanos?: number | undefined;
  /** v1 cpuacct.usage_percpu, nanoseconds per CPU (v2 has no per-CPU figure). */
  perCpuNanos?: number[] | undefined;
}

/** One line of a block IO counter: device, operation ("read", "write", "sync", "async", "discard", "total"), value. */
export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface BlkioStats {
  /** Bytes moved per device and operation. */
  serviceBytes: BlkioEntry[];
  /** Operations per device and operation. */
  serviced: BlkioEntry[];
}

/** A section is absent when its controller is not available for the group. */
export interface CgroupStats {
  memory?: MemoryStats | undefined;
  pids?: PidsStats | undefined;
  cpu?: CpuStats | undefined;
  blkio?: BlkioStats | undefined;
}

export interface DestroyOptions {
  /** SIGKILL every process still in the group (and its sub-groups) first. */
  kill?: boolean | undefined;
  /** How long to wait for killed processes to leave; default 5000 ms. */
  timeoutMs?: number | undefined;
}

/** One container's cgroup, in every hierarchy it lives in. */
export interface CgroupHandle {
  readonly version: 1 | 2;
  /** The normalised path, relative to each hierarchy's mount point ("berth/<id>"). */
  readonly path: string;
  /** What `create` could not apply (unsupported on this host); empty for `open`. */
  readonly warnings: readonly CgroupWarning[];
  /** Live update: writes only the fields given; returns what could not be applied. */
  apply(resources: Resources): Promise<CgroupWarning[]>;
  /** Absolute cgroup.procs paths the init writes its pid to, one per hierarchy. */
  procsFiles(): string[];
  /** Controller -> directory (v1: per controller incl. "name=systemd"; "unified" for cgroup2). */
  paths(): Record<string, string>;
  /** Pids in the group and its sub-groups, ascending. */
  pids(): Promise<number[]>;
  /** Freezes every process; resolves once the kernel reports the group frozen. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  stats(): Promise<CgroupStats>;
  /** Removes the group from every hierarchy; a group already gone is not an error. */
  destroy(options?: DestroyOptions): Promise<void>;
  /** Whether the group's directory exists (in its primary hierarchy). */
  exists(): boolean;
}

export interface CgroupManager {
  /** 1 for v1 and hybrid hosts, 2 for a unified-only host. */
  readonly version: 1 | 2;
  readonly layout: CgroupLayout;
  /** Creates the group (parents as needed) in every hierarchy and applies `resources`. */
  create(path: string, resources?: Resources): Promise<CgroupHandle>;
  /** A handle on an existing group, or null when it does not exist. */
  open(path: string): CgroupHandle | null;
  /** The relative form of an OCI cgroupsPath; throws BERTH_INVALID_ARGUMENT. */
  normalizePath(path: string): string;
}
