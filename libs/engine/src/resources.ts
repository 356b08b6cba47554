/**
 * The resource flags of run/create/update as the host sees them: Docker's checks that need
 * the host (CPU count, online CPUs and memory nodes, cgroup version, device nodes), and the
 * host's device numbers behind `--device`, `--device-*-bps/iops` and `--blkio-weight-device`.
 */
import { readFileSync, readdirSync, statSync, statfsSync, type Stats } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { HostConfig } from '@berth/api';
import type { OciDevice } from '@berth/runtime';
import { invalid } from './config.js';
import type { EngineContext } from './context.js';

export interface HostFacts {
  /** Online CPUs (Docker's sysinfo.NumCPU). */
  ncpu: number;
  /** cpuset lists the host offers, e.g. "0-1" and "0". */
  cpus: string;
  mems: string;
  /** /sys/fs/cgroup is a cgroup2 mount (unified-only host). */
  cgroupV2: boolean;
}

const CGROUP2_SUPER_MAGIC = 0x63677270;
let cachedFacts: HostFacts | undefined;

function readList(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8').trim() || fallback;
  } catch {
    return fallback;
  }
}

/** Read once per process: CPUs and memory nodes do not come and go under a running daemon often enough to matter. */
export function hostFacts(): HostFacts {
  if (cachedFacts) return cachedFacts;
  const ncpu = cpus().length || 1;
  let cgroupV2 = false;
  try {
    cgroupV2 = statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC;
  } catch {
    cgroupV2 = false;
  }
  cachedFacts = {
    ncpu,
    cpus: readList('/sys/devices/system/cpu/online', `0-${ncpu - 1}`),
    mems: readList('/sys/devices/system/node/online', '0'),
    cgroupV2,
  };
  return cachedFacts;
}

const thermalCache = new Map<string, string[]>();

/**
 * The per-CPU `thermal_throttle` directories under the host's `cpuDir` (Docker masks each of
 * /sys/devices/system/cpu/cpu<N>/thermal_throttle, found on the host), as container paths.
 * Read once per directory per process, as hostFacts.
 */
export function cpuThermalThrottlePaths(cpuDir = '/sys/devices/system/cpu'): string[] {
  const cached = thermalCache.get(cpuDir);
  if (cached) return cached;
  const out: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(cpuDir);
  } catch {
    names = [];
  }
  for (const name of names.filter((n) => /^cpu\d+$/.test(n)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)))) {
    try {
      if (statSync(join(cpuDir, name, 'thermal_throttle')).isDirectory()) out.push(`/sys/devices/system/cpu/${name}/thermal_throttle`);
    } catch {
      // No thermal_throttle for this CPU (not an x86 host with the driver, or a VM).
    }
  }
  thermalCache.set(cpuDir, out);
  return out;
}

/** "0-2,4" -> {0,1,2,4}; null when malformed. */
export function parseCpuList(list: string): Set<number> | null {
  const out = new Set<number>();
  if (list.trim() === '') return out;
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return null;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi - lo > 65536) return null;
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return out;
}

const MiB = 1024 * 1024;
const RULE = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/;

export interface ThrottleSpec {
  Path: string;
  Rate: number;
}
export interface WeightSpec {
  Path: string;
  Weight: number;
}

/** The resource keys of HostConfig that libs/api's type does not name (Docker's wire names). */
export interface ExtraResources {
  KernelMemory?: number;
  KernelMemoryTCP?: number;
  BlkioWeightDevice?: WeightSpec[] | null;
  BlkioDeviceReadBps?: ThrottleSpec[] | null;
  BlkioDeviceWriteBps?: ThrottleSpec[] | null;
  BlkioDeviceReadIOps?: ThrottleSpec[] | null;
  BlkioDeviceWriteIOps?: ThrottleSpec[] | null;
}

export const extraOf = (h: HostConfig): ExtraResources => h as unknown as ExtraResources;

function statOrThrow(path: string, field: string, what: (reason: string) => string): Stats {
  try {
    return statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw invalid(field, what(code === 'ENOENT' ? 'no such file or directory' : (err as Error).message));
  }
}

function devNumbers(st: Stats): { major: number; minor: number } {
  const rdev = BigInt(st.rdev);
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}

/**
 * Docker's verifyPlatformContainerResources checks that need the host, with its wording.
 * Called at create and at update on the merged HostConfig; throws InvalidArgument (400).
 */
export function validateHostResources(h: HostConfig, facts: HostFacts = hostFacts()): void {
  const x = extraOf(h);
  if (h.NanoCpus < 0 || (h.NanoCpus > 0 && h.NanoCpus < 1e7) || h.NanoCpus > facts.ncpu * 1e9)
    throw invalid('HostConfig.NanoCpus', `range of CPUs is from 0.01 to ${facts.ncpu}.00, as there are only ${facts.ncpu} CPUs available`);
  if (h.CpusetCpus) {
    const want = parseCpuList(h.CpusetCpus);
    const have = parseCpuList(facts.cpus) ?? new Set<number>();
    if (want === null) throw invalid('HostConfig.CpusetCpus', `Invalid value ${h.CpusetCpus} for cpuset cpus: invalid format: ${h.CpusetCpus}`);
    if ([...want].some((c) => !have.has(c)))
      throw invalid('HostConfig.CpusetCpus', `Requested CPUs are not available - requested ${h.CpusetCpus}, available: ${facts.cpus}`);
  }
  if (h.CpusetMems) {
    const want = parseCpuList(h.CpusetMems);
    const have = parseCpuList(facts.mems) ?? new Set<number>();
    if (want === null) throw invalid('HostConfig.CpusetMems', `Invalid value ${h.CpusetMems} for cpuset mems: invalid format: ${h.CpusetMems}`);
    if ([...want].some((c) => !have.has(c)))
      throw invalid('HostConfig.CpusetMems', `Requested memory nodes are not available - requested ${h.CpusetMems}, available: ${facts.mems}`);
  }
  if (h.MemoryReservation > 0 && h.MemoryReservation < 6 * MiB) throw invalid('HostConfig.MemoryReservation', 'Minimum memory reservation allowed is 6MB');
  if (h.Memory > 0 && h.MemoryReservation > 0 && h.Memory < h.MemoryReservation)
    throw invalid('HostConfig.MemoryReservation', 'Minimum memory limit can not be less than memory reservation limit, see usage');
  if (h.MemorySwappiness !== null && h.MemorySwappiness !== -1 && (h.MemorySwappiness < 0 || h.MemorySwappiness > 100))
    throw invalid('HostConfig.MemorySwappiness', `Invalid value: ${h.MemorySwappiness}, valid memory swappiness range is 0-100`);
  if ((x.KernelMemory ?? 0) > 0) {
    if (facts.cgroupV2)
      throw invalid('HostConfig.KernelMemory', 'kernel memory limit (--kernel-memory) is not supported on cgroup v2: the kernel accounts kernel memory in the memory limit; use --memory');
    if (x.KernelMemory! < 4 * MiB) throw invalid('HostConfig.KernelMemory', 'Minimum kernel memory limit allowed is 4MB');
  }
  if (h.PidsLimit !== null && h.PidsLimit < -1) throw invalid('HostConfig.PidsLimit', `invalid value for PidsLimit: ${h.PidsLimit}`);
  for (const [i, d] of (h.Devices ?? []).entries()) {
    const field = `HostConfig.Devices[${i}]`;
    if (!d || typeof d.PathOnHost !== 'string' || d.PathOnHost === '') throw invalid(field, 'invalid device: PathOnHost is empty');
    const perms = d.CgroupPermissions || 'rwm';
    if (!/^[rwm]{1,3}$/.test(perms)) throw invalid(field, `invalid device mode: ${d.CgroupPermissions}`);
    if (d.PathInContainer && !d.PathInContainer.startsWith('/')) throw invalid(field, `${d.PathInContainer} is not an absolute path`);
    const st = statOrThrow(d.PathOnHost, field, (r) => `error gathering device information while adding custom device "${d.PathOnHost}": ${r}`);
    if (!st.isCharacterDevice() && !st.isBlockDevice() && !st.isDirectory())
      throw invalid(field, `error gathering device information while adding custom device "${d.PathOnHost}": not a device node`);
  }
  for (const [i, rule] of (h.DeviceCgroupRules ?? []).entries()) {
    if (typeof rule !== 'string' || !RULE.test(rule)) throw invalid(`HostConfig.DeviceCgroupRules[${i}]`, `invalid device cgroup rule format: '${String(rule)}'`);
  }
  for (const [i, w] of (x.BlkioWeightDevice ?? []).entries()) {
    const field = `HostConfig.BlkioWeightDevice[${i}]`;
    if (!w || typeof w.Weight !== 'number' || w.Weight < 10 || w.Weight > 1000) throw invalid(field, `invalid weight for device: ${w?.Path}:${w?.Weight}, range of blkio weight is from 10 to 1000`);
    blockDevice(w.Path, field);
  }
  for (const key of ['BlkioDeviceReadBps', 'BlkioDeviceWriteBps', 'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps'] as const) {
    for (const [i, t] of (x[key] ?? []).entries()) {
      const field = `HostConfig.${key}[${i}]`;
      if (!t || typeof t.Rate !== 'number' || !Number.isSafeInteger(t.Rate) || t.Rate < 0) throw invalid(field, `invalid rate for device: ${t?.Path}:${t?.Rate}, the rate must be a positive integer`);
      blockDevice(t.Path, field);
    }
  }
}

function blockDevice(path: string, field: string): { major: number; minor: number } {
  if (typeof path !== 'string' || path === '') throw invalid(field, 'invalid device: the path is empty');
  const st = statOrThrow(path, field, (r) => `error gathering device information for ${path}: ${r}`);
  if (!st.isBlockDevice()) throw invalid(field, `${path} is not a block device`);
  return devNumbers(st);
}

/** One `--device` mapping as OCI device nodes (a directory maps every node below it). */
function devicesOf(onHost: string, inContainer: string): OciDevice[] {
  const st = statSync(onHost);
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    return [{ type: st.isCharacterDevice() ? 'c' : 'b', path: inContainer, ...devNumbers(st), fileMode: st.mode & 0o7777, uid: 0, gid: 0 }];
  }
  if (!st.isDirectory()) return [];
  const out: OciDevice[] = [];
  for (const name of readdirSync(onHost)) {
    try {
      out.push(...devicesOf(join(onHost, name), join(inContainer, name)));
    } catch {
      // A node that went away meanwhile is skipped, as Docker does.
    }
  }
  return out;
}

export interface DeviceRuleSpec {
  allow: boolean;
  type: 'a' | 'b' | 'c';
  major: number | null;
  minor: number | null;
  access: string;
}

export interface HostResources {
  /** Nodes made in the container's /dev. */
  devices: OciDevice[];
  /** Device cgroup rules for those nodes (their permissions) and `--device-cgroup-rule`. */
  deviceRules: DeviceRuleSpec[];
  /** OCI linux.resources.blockIO with the device numbers resolved. */
  blockIO?: Record<string, unknown>;
}

/** Resolves the host's device numbers; run at start (the nodes may change between create and start). */
export function hostResources(h: HostConfig): HostResources {
  const devices: OciDevice[] = [];
  const deviceRules: DeviceRuleSpec[] = [];
  for (const d of h.Devices ?? []) {
    const perms = d.CgroupPermissions || 'rwm';
    for (const dev of devicesOf(d.PathOnHost, d.PathInContainer || d.PathOnHost)) {
      devices.push(dev);
      deviceRules.push({ allow: true, type: dev.type as 'b' | 'c', major: dev.major ?? null, minor: dev.minor ?? null, access: perms });
    }
  }
  for (const rule of h.DeviceCgroupRules ?? []) {
    const m = RULE.exec(rule);
    if (!m) continue;
    deviceRules.push({ allow: true, type: m[1] as 'a' | 'b' | 'c', major: m[2] === '*' ? null : Number(m[2]), minor: m[3] === '*' ? null : Number(m[3]), access: m[4]! });
  }
  const x = extraOf(h);
  const blockIO: Record<string, unknown> = {};
  const throttle = (list: ThrottleSpec[] | null | undefined): { major: number; minor: number; rate: number }[] =>
    (list ?? []).map((t) => ({ ...blockDevice(t.Path, 'HostConfig'), rate: t.Rate }));
  if (x.BlkioWeightDevice?.length) blockIO.weightDevice = x.BlkioWeightDevice.map((w) => ({ ...blockDevice(w.Path, 'HostConfig'), weight: w.Weight }));
  if (x.BlkioDeviceReadBps?.length) blockIO.throttleReadBpsDevice = throttle(x.BlkioDeviceReadBps);
  if (x.BlkioDeviceWriteBps?.length) blockIO.throttleWriteBpsDevice = throttle(x.BlkioDeviceWriteBps);
  if (x.BlkioDeviceReadIOps?.length) blockIO.throttleReadIOPSDevice = throttle(x.BlkioDeviceReadIOps);
  if (x.BlkioDeviceWriteIOps?.length) blockIO.throttleWriteIOPSDevice = throttle(x.BlkioDeviceWriteIOps);
  return Object.keys(blockIO).length ? { devices, deviceRules, blockIO } : { devices, deviceRules };
}

/**
 * After recovery: a container of this daemon that does not run has no business with a cgroup;
 * one left by a crash (the daemon died between the exit and its cleanup, or during a start) is
 * removed, its processes killed. Only this daemon's containers are looked at: other daemons on
 * the host (tests on scratch roots) keep theirs.
 */
export async function sweepCgroups(ctx: EngineContext): Promise<void> {
  for (const c of ctx.containers.values()) {
    if (c.rec.State.Running) continue;
    const path = ctx.cgroupPathOf(c);
    if (!ctx.cgroups.open(path)) continue;
    ctx.log.info({ containerId: c.id, path }, 'removing a cgroup left behind');
    await ctx.rtCgroups.destroy(path).catch((err: unknown) => ctx.log.warn({ err, containerId: c.id }, 'removing a left-over cgroup failed'));
  }
}
