/**
 * `GET /containers/{id}/stats` (`docker stats`): samples of the container's cgroup, the host's
 * CPU time and the container's network counters, in Docker's StatsJSON shape, so the docker CLI
 * computes CPU % (Δ container usage / Δ system usage × online CPUs) and MEM % as it does for dockerd.
 */
import { readFile } from 'node:fs/promises';
import { totalmem } from 'node:os';
import type { BlkioEntry, CgroupStats } from '@berth/cgroups';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import type { ContainerStatsJson, StatsOptions } from './contract.js';
import { hostFacts } from './resources.js';
import { ZERO_TIME, nowNanos, rfc3339Nano } from './time.js';

/** Docker samples once a second. */
export const STATS_INTERVAL_MS = 1000;
// /proc/stat counts in USER_HZ ticks, 100 a second on Linux.
const NS_PER_TICK = 10_000_000;

interface CpuSection {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

/** Host CPU time in nanoseconds: the sum of user, nice, system, idle, iowait, irq and softirq of /proc/stat's "cpu" line (Docker's sum). */
export function parseProcStat(text: string): number {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  const fields = line.trim().split(/\s+/).slice(1, 8).map(Number);
  return fields.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) * NS_PER_TICK;
}

export interface NetCounters {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

/** /proc/<pid>/net/dev (the counters of that process's network namespace), loopback left out as Docker does. */
export function parseNetDev(text: string): Record<string, NetCounters> {
  const out: Record<string, NetCounters> = {};
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    if (f.length < 16) continue;
    out[m[1]!] = {
      rx_bytes: f[0]!, rx_packets: f[1]!, rx_errors: f[2]!, rx_dropped: f[3]!,
      tx_bytes: f[8]!, tx_packets: f[9]!, tx_errors: f[10]!, tx_dropped: f[11]!,
    };
  }
  return out;
}

function emptyCpu(): CpuSection {
  return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
}

const blkioList = (entries: BlkioEntry[] | undefined): { major: number; minor: number; op: string; value: number }[] | null =>
  entries && entries.length ? entries.map((e) => ({ major: e.major, minor: e.minor, op: e.op, value: e.value })) : null;

/** One raw sample; `stats` from the cgroup, `system` from /proc/stat. */
interface Sample {
  read: string;
  cpu: CpuSection;
  body: Omit<ContainerStatsJson, 'read' | 'preread' | 'cpu_stats' | 'precpu_stats' | 'name' | 'id'>;
}

/** Docker's StatsJSON of a container that does not run (every figure zero). */
export function zeroStats(c: Ctr): ContainerStatsJson {
  return {
    read: ZERO_TIME, preread: ZERO_TIME, pids_stats: {}, blkio_stats: blkioSection(undefined), num_procs: 0, storage_stats: {},
    cpu_stats: emptyCpu(), precpu_stats: emptyCpu(), memory_stats: {}, name: c.rec.Name, id: c.id,
  };
}

/**
 * Docker's lists: on v1 every list is there (empty when the kernel has none of it: CFQ's
 * queue/time figures are gone), on v2 only bytes and operations; no blkio controller: all null.
 */
function blkioSection(s: CgroupStats['blkio'], version: 1 | 2 = 1): ContainerStatsJson['blkio_stats'] {
  const other = s && version === 1 ? [] : null;
  const list = (e: BlkioEntry[] | undefined): ReturnType<typeof blkioList> => (s ? (blkioList(e) ?? []) : null);
  return {
    io_service_bytes_recursive: list(s?.serviceBytes), io_serviced_recursive: list(s?.serviced), io_queue_recursive: other,
    io_service_time_recursive: other, io_wait_time_recursive: other, io_merged_recursive: other, io_time_recursive: other, sectors_recursive: other,
  };
}

/** Turns the cgroup's figures into Docker's sections. Pure, for tests. */
export function toDockerSections(s: CgroupStats, systemNanos: number, onlineCpus: number, machineMemory: number, version: 1 | 2): Omit<Sample, 'read'> {
  const cpu = emptyCpu();
  if (s.cpu) {
    cpu.cpu_usage.total_usage = s.cpu.usageNanos;
    if (s.cpu.perCpuNanos?.length) cpu.cpu_usage.percpu_usage = s.cpu.perCpuNanos;
    cpu.cpu_usage.usage_in_kernelmode = s.cpu.systemNanos ?? 0;
    cpu.cpu_usage.usage_in_usermode = s.cpu.userNanos ?? 0;
    cpu.throttling_data = { periods: s.cpu.periods ?? 0, throttled_periods: s.cpu.throttledPeriods ?? 0, throttled_time: s.cpu.throttledNanos ?? 0 };
  }
  cpu.system_cpu_usage = systemNanos;
  cpu.online_cpus = onlineCpus;
  const memory: ContainerStatsJson['memory_stats'] = {};
  if (s.memory) {
    memory.usage = s.memory.usage;
    // Docker leaves max_usage and failcnt out when zero (omitempty); v2 has neither.
    if (version === 1 && s.memory.maxUsage) memory.max_usage = s.memory.maxUsage;
    memory.stats = s.memory.stat;
    if (version === 1 && s.memory.failcnt) memory.failcnt = s.memory.failcnt;
    // Unlimited shows as the machine's memory, as dockerd does, so MEM % means something.
    memory.limit = s.memory.limit === null || s.memory.limit > machineMemory ? machineMemory : s.memory.limit;
  }
  const pids: ContainerStatsJson['pids_stats'] = {};
  if (s.pids) {
    pids.current = s.pids.current;
    if (s.pids.limit !== null && s.pids.limit > 0) pids.limit = s.pids.limit;
  }
  return { cpu, body: { pids_stats: pids, blkio_stats: blkioSection(s.blkio, version), num_procs: 0, storage_stats: {}, memory_stats: memory } };
}

async function sample(ctx: EngineContext, c: Ctr): Promise<Sample | null> {
  const h = ctx.cgroups.open(ctx.cgroupPathOf(c));
  if (!h || !c.rec.State.Running) return null;
  const pid = c.rec.State.Pid;
  const ownNetns = c.host.NetworkMode !== 'host';
  const [s, procStat, netDev] = await Promise.all([
    h.stats(),
    readFile('/proc/stat', 'utf8').catch(() => ''),
    ownNetns && pid > 0 ? readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => '') : Promise.resolve(''),
  ]);
  const read = rfc3339Nano(nowNanos());
  const secs = toDockerSections(s, parseProcStat(procStat), hostFacts().ncpu, totalmem(), h.version);
  const networks = parseNetDev(netDev);
  if (Object.keys(networks).length) secs.body.networks = networks;
  return { read, ...secs };
}

function compose(c: Ctr, cur: Sample, prev: Sample | null): ContainerStatsJson {
  return {
    read: cur.read,
    preread: prev?.read ?? ZERO_TIME,
    ...cur.body,
    cpu_stats: cur.cpu,
    precpu_stats: prev?.cpu ?? emptyCpu(),
    name: c.rec.Name,
    id: c.id,
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Resolves (404 for an unknown container before anything is sent) with the objects to send:
 * one (stream=false: two samples one interval apart so precpu_stats is filled; one-shot: one
 * sample), or one a second until `signal` aborts.
 */
export async function containerStats(ctx: EngineContext, ref: string, opts: StatsOptions, signal: AbortSignal): Promise<AsyncIterable<ContainerStatsJson>> {
  const c = ctx.get(ref);
  async function* run(): AsyncGenerator<ContainerStatsJson> {
    if (!opts.stream) {
      const first = await sample(ctx, c);
      if (!first) {
        yield zeroStats(c);
        return;
      }
      if (opts.oneShot) {
        yield compose(c, first, null);
        return;
      }
      await sleep(STATS_INTERVAL_MS, signal);
      const second = signal.aborted ? null : await sample(ctx, c);
      yield second ? compose(c, second, first) : compose(c, first, null);
      return;
    }
    let prev: Sample | null = null;
    while (!signal.aborted && ctx.containers.has(c.id)) {
      const cur = await sample(ctx, c);
      yield cur ? compose(c, cur, prev) : zeroStats(c);
      prev = cur;
      await sleep(STATS_INTERVAL_MS, signal);
    }
  }
  return run();
}
