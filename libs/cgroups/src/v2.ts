import { BerthError, errnoCodeOf, wrap } from '@berth/errors';
import {
  ancestors,
  join,
  killAll,
  parseKeyed,
  parseIoStatV2,
  parseLimit,
  pidsOfTree,
  pollUntil,
  removeGroupDir,
  tryRead,
  tryWrite,
  write,
  type Ctx,
} from './common.js';
import type { UnifiedMount } from './detect.js';
import { installDeviceFilter, type DeviceBpf } from './device-filter.js';
import { blkioWeightToIoWeight, sharesToWeight, swapToV2, validateResources, type CgroupWarning, type Resources } from './resources.js';
import type { CgroupHandle, CgroupStats, CpuStats, DestroyOptions, MemoryStats } from './types.js';

export interface V2Shared {
  ctx: Ctx;
  unified: UnifiedMount;
  /** Parent directories whose cgroup.subtree_control this manager already filled. */
  enabled: Set<string>;
  /** Learnt once: io.bfq.weight (BFQ, v1 scale) or io.weight (v2 scale); null for none. */
  ioWeightFile?: 'io.bfq.weight' | 'io.weight' | null;
  /** Loads and attaches the eBPF device filter; without it device rules are a warning. */
  deviceBpf?: DeviceBpf | undefined;
}

const FREEZE_TIMEOUT_MS = 2000;
// The kernel's CFS period when none was set (100 ms).
const DEFAULT_PERIOD_US = 100000;

export class V2Group implements CgroupHandle {
  readonly version = 2 as const;
  readonly warnings: CgroupWarning[];
  private readonly dir: string;

  constructor(
    private readonly s: V2Shared,
    readonly path: string,
    warnings: CgroupWarning[] = [],
  ) {
    this.dir = join(s.unified.mountPoint, path);
    this.warnings = warnings;
  }

  procsFiles(): string[] {
    return [join(this.dir, 'cgroup.procs')];
  }

  paths(): Record<string, string> {
    return { unified: this.dir };
  }

  exists(): boolean {
    return this.s.ctx.fs.exists(this.dir);
  }

  pids(): Promise<number[]> {
    return pidsOfTree(this.s.ctx, this.dir);
  }

  /**
   * Every controller of the root is enabled in cgroup.subtree_control of each parent, so any
   * later `apply` finds its files in the leaf. Done once per parent per manager.
   */
  private async enableControllers(): Promise<void> {
    const { ctx, unified } = this.s;
    const wanted = unified.controllers;
    if (wanted.length === 0) return;
    for (const dir of ancestors(unified.mountPoint, this.path)) {
      if (this.s.enabled.has(dir)) continue;
      try {
        await ctx.fs.writeFile(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
      } catch {
        // One controller the parent lacks fails the whole line: enable them one by one; a
        // controller left out surfaces later as a warning on the resource that needs it.
        for (const c of wanted) {
          await ctx.fs.writeFile(join(dir, 'cgroup.subtree_control'), `+${c}`).catch((err: unknown) => {
            ctx.logger.debug({ err, dir, controller: c }, 'controller not enabled');
          });
        }
      }
      this.s.enabled.add(dir);
    }
  }

  async create(resources: Resources): Promise<void> {
    validateResources(resources);
    let first: string | undefined;
    try {
      first = await this.s.ctx.fs.mkdir(this.dir);
    } catch (err) {
      throw wrap(err, 'mkdir');
    }
    try {
      // After mkdir: the parents must exist to be written; the leaf gains the files of a
      // controller as soon as its parent enables it.
      await this.enableControllers();
      this.warnings.push(...(await this.applyWith(resources, first !== undefined)));
    } catch (err) {
      if (first !== undefined) {
        for (let d = this.dir; d.length >= first.length; d = d.slice(0, d.lastIndexOf('/'))) {
          await this.s.ctx.fs.rmdir(d).catch(() => undefined);
        }
      }
      throw err;
    }
  }

  apply(resources: Resources): Promise<CgroupWarning[]> {
    return this.applyWith(resources, false);
  }

  /** `fresh`: the leaf was just made, so every file holds the kernel default. */
  async applyWith(r: Resources, fresh: boolean): Promise<CgroupWarning[]> {
    validateResources(r);
    const warnings: CgroupWarning[] = [];
    await Promise.all([
      this.applyCpu(r, fresh, warnings),
      this.applyMemory(r, fresh, warnings),
      this.applyPids(r, fresh, warnings),
      this.applyIo(r, warnings),
      this.applyHugetlb(r, warnings),
    ]);
    if (r.devices !== undefined) this.applyDevices(r.devices, warnings);
    // Verbatim keys last, so they win over the mapped values.
    if (r.unified !== undefined) {
      for (const [key, value] of Object.entries(r.unified)) {
        if (!(await tryWrite(this.s.ctx, this.dir, key, value))) {
          throw new BerthError('BERTH_INVALID_ARGUMENT', `resources.unified["${key}"]: no such file in ${this.dir} (controller not enabled or unknown key)`, {
            details: { field: `resources.unified.${key}` },
          });
        }
      }
    }
    return warnings;
  }

  /**
   * cgroup v2 has no devices controller: the rules become an eBPF program attached to the
   * group (device-filter.ts), replacing the one attached before, so an update takes effect.
   */
  private applyDevices(rules: NonNullable<Resources['devices']>, warnings: CgroupWarning[]): void {
    const bpf = this.s.deviceBpf;
    if (bpf === undefined) {
      warnings.push({ item: 'devices', reason: 'cgroup v2 controls devices with an eBPF program, and this manager was given no eBPF loader; the rules were not applied' });
      return;
    }
    const done = installDeviceFilter(bpf, this.dir, rules);
    this.s.ctx.logger.debug({ dir: this.dir, rules: rules.length, ...done }, 'device filter attached');
  }

  /** Writes a file of a controller; a missing file means the controller is not enabled here. */
  private async set(file: string, value: string, item: string, warnings: CgroupWarning[]): Promise<void> {
    if (!(await tryWrite(this.s.ctx, this.dir, file, value))) {
      warnings.push({ item, reason: `the ${file.split('.')[0]} controller is not enabled for this group (no ${file})` });
    }
  }

  private async applyCpu(r: Resources, fresh: boolean, warnings: CgroupWarning[]): Promise<void> {
    const cpu = r.cpu;
    if (cpu === undefined) return;
    const { ctx } = this.s;
    if (cpu.shares) await this.set('cpu.weight', String(sharesToWeight(cpu.shares)), 'cpu.shares', warnings);
    const quota = cpu.quota || undefined;
    const period = cpu.period || undefined;
    if (quota !== undefined || period !== undefined) {
      const q = quota === undefined ? undefined : quota < 0 ? 'max' : String(quota);
      let value: string;
      if (q !== undefined && period !== undefined) value = `${q} ${period}`;
      else if (q !== undefined) value = fresh ? `${q} ${DEFAULT_PERIOD_US}` : q; // the kernel keeps the period when given one token
      else {
        // Period alone: keep the current quota.
        const cur = fresh ? 'max' : ((await tryRead(ctx, join(this.dir, 'cpu.max'))) ?? 'max').trim().split(/\s+/)[0]!;
        value = `${cur} ${period}`;
      }
      await this.set('cpu.max', value, 'cpu.quota', warnings);
    }
    if (cpu.realtimeRuntime !== undefined || cpu.realtimePeriod !== undefined) {
      warnings.push({ item: 'cpu.realtimeRuntime', reason: 'cgroup v2 has no realtime CPU budget' });
    }
    if (cpu.mems !== undefined) await this.set('cpuset.mems', cpu.mems, 'cpu.mems', warnings);
    if (cpu.cpus !== undefined) await this.set('cpuset.cpus', cpu.cpus, 'cpu.cpus', warnings);
  }

  /**
   * memory.max and memory.swap.max are independent on v2 (no ordering constraint); OCI's swap is
   * memory+swap and is converted to swap alone, reading the current memory.max when only swap
   * changes.
   */
  private async applyMemory(r: Resources, fresh: boolean, warnings: CgroupWarning[]): Promise<void> {
    const m = r.memory;
    if (m === undefined) return;
    const { ctx } = this.s;
    const limit = m.limit || undefined;
    const swap = m.swap || undefined;
    if (limit !== undefined && !(fresh && limit === -1)) await this.set('memory.max', limit < 0 ? 'max' : String(limit), 'memory.limit', warnings);
    if (swap !== undefined || limit === -1) {
      let base = limit;
      if (base === undefined && swap !== undefined && swap > 0) {
        const cur = await tryRead(ctx, join(this.dir, 'memory.max'));
        const parsed = cur === undefined ? null : parseLimit(cur);
        base = parsed === null ? -1 : parsed;
      }
      const v = swapToV2(swap, base);
      if (v !== undefined && !(fresh && v === 'max')) {
        if (!(await tryWrite(ctx, this.dir, 'memory.swap.max', v)) && swap !== undefined) {
          warnings.push({ item: 'memory.swap', reason: 'swap accounting is off (no memory.swap.max)' });
        }
      }
    }
    if (m.reservation) await this.set('memory.low', m.reservation < 0 ? 'max' : String(m.reservation), 'memory.reservation', warnings);
    if (m.kernel) warnings.push({ item: 'memory.kernel', reason: 'cgroup v2 has no separate kernel memory limit' });
    if (m.kernelTCP) warnings.push({ item: 'memory.kernelTCP', reason: 'cgroup v2 has no separate kernel TCP memory limit' });
    if (m.swappiness !== undefined) warnings.push({ item: 'memory.swappiness', reason: 'cgroup v2 has no per-group swappiness' });
    if (m.disableOOMKiller) warnings.push({ item: 'memory.disableOOMKiller', reason: 'cgroup v2 cannot disable the OOM killer for a group' });
  }

  private async applyPids(r: Resources, fresh: boolean, warnings: CgroupWarning[]): Promise<void> {
    if (r.pids === undefined) return;
    const unlimited = r.pids.limit <= 0;
    if (unlimited && fresh) return;
    await this.set('pids.max', unlimited ? 'max' : String(r.pids.limit), 'pids.limit', warnings);
  }

  /** Writes a weight line to io.bfq.weight (v1 scale) where BFQ is in use, else io.weight. */
  private async writeIoWeight(target: string, weight: number): Promise<boolean> {
    const { ctx } = this.s;
    const line = (file: string): string => {
      const w = file === 'io.weight' ? blkioWeightToIoWeight(weight) : weight;
      return target === 'default' ? String(w) : `${target} ${w}`;
    };
    const known = this.s.ioWeightFile;
    if (known === null) return false;
    if (known !== undefined) {
      await write(ctx, this.dir, known, line(known));
      return true;
    }
    for (const file of ['io.bfq.weight', 'io.weight'] as const) {
      if (await tryWrite(ctx, this.dir, file, line(file))) {
        this.s.ioWeightFile = file;
        return true;
      }
    }
    return false;
  }

  private async applyIo(r: Resources, warnings: CgroupWarning[]): Promise<void> {
    const b = r.blockIO;
    if (b === undefined) return;
    const noWeight = { reason: 'no io.weight or io.bfq.weight in this group (io controller not enabled?)' };
    if (b.weight && !(await this.writeIoWeight('default', b.weight))) warnings.push({ item: 'blockIO.weight', ...noWeight });
    if (b.leafWeight) warnings.push({ item: 'blockIO.leafWeight', reason: 'cgroup v2 has no leaf weight' });
    for (const [i, d] of (b.weightDevice ?? []).entries()) {
      if (d.weight !== undefined && !(await this.writeIoWeight(`${d.major}:${d.minor}`, d.weight))) warnings.push({ item: `blockIO.weightDevice[${i}].weight`, ...noWeight });
      if (d.leafWeight !== undefined) warnings.push({ item: `blockIO.weightDevice[${i}].leafWeight`, reason: 'cgroup v2 has no leaf weight' });
    }
    // One io.max line per device carrying all its limits; 0 lifts a limit ("max").
    const lines = new Map<string, string[]>();
    const add = (list: { major: number; minor: number; rate: number }[] | undefined, key: string): void => {
      for (const d of list ?? []) {
        const dev = `${d.major}:${d.minor}`;
        const parts = lines.get(dev) ?? [];
        parts.push(`${key}=${d.rate === 0 ? 'max' : d.rate}`);
        lines.set(dev, parts);
      }
    };
    add(b.throttleReadBpsDevice, 'rbps');
    add(b.throttleWriteBpsDevice, 'wbps');
    add(b.throttleReadIOPSDevice, 'riops');
    add(b.throttleWriteIOPSDevice, 'wiops');
    for (const [dev, parts] of lines) await this.set('io.max', `${dev} ${parts.join(' ')}`, 'blockIO.throttle', warnings);
  }

  private async applyHugetlb(r: Resources, warnings: CgroupWarning[]): Promise<void> {
    const limits = r.hugepageLimits;
    if (limits === undefined || limits.length === 0) return;
    if (!this.s.unified.controllers.includes('hugetlb')) {
      warnings.push({ item: 'hugepageLimits', reason: 'the hugetlb controller is not available on this host' });
      return;
    }
    for (const [i, h] of limits.entries()) {
      const file = `hugetlb.${h.pageSize}.max`;
      if (!(await tryWrite(this.s.ctx, this.dir, file, String(h.limit)))) {
        throw new BerthError('BERTH_INVALID_ARGUMENT', `resources.hugepageLimits[${i}].pageSize: no ${file} in ${this.dir} (page size not supported by the kernel)`, {
          details: { field: `resources.hugepageLimits[${i}].pageSize` },
        });
      }
    }
  }

  async freeze(): Promise<void> {
    const { ctx } = this.s;
    if (!(await tryWrite(ctx, this.dir, 'cgroup.freeze', '1'))) {
      throw new BerthError('BERTH_CGROUP', `freeze ${this.path}: no cgroup.freeze (kernel older than 5.2, or the group is gone)`);
    }
    const ok = await pollUntil(async () => /^frozen 1$/m.test((await tryRead(ctx, join(this.dir, 'cgroup.events'))) ?? ''), FREEZE_TIMEOUT_MS);
    if (!ok) {
      await write(ctx, this.dir, 'cgroup.freeze', '0').catch(() => undefined);
      throw new BerthError('BERTH_CGROUP', `freeze ${this.path}: not frozen after ${FREEZE_TIMEOUT_MS} ms; thawed again`);
    }
  }

  async thaw(): Promise<void> {
    await write(this.s.ctx, this.dir, 'cgroup.freeze', '0');
  }

  async stats(): Promise<CgroupStats> {
    const { ctx } = this.s;
    const read = (file: string): Promise<string | undefined> => tryRead(ctx, join(this.dir, file));
    const [current, max, peak, stat, events, pidsCur, pidsMax, cpuStat, ioStat] = await Promise.all(
      ['memory.current', 'memory.max', 'memory.peak', 'memory.stat', 'memory.events', 'pids.current', 'pids.max', 'cpu.stat', 'io.stat'].map(read),
    );
    const out: CgroupStats = {};
    if (current !== undefined) {
      const memory: MemoryStats = { usage: Number(current.trim()), limit: max === undefined ? null : parseLimit(max), stat: parseKeyed(stat ?? '') };
      if (peak !== undefined) memory.maxUsage = Number(peak.trim());
      const kills = events === undefined ? undefined : parseKeyed(events)['oom_kill'];
      if (kills !== undefined) memory.oomKills = kills;
      out.memory = memory;
    }
    if (pidsCur !== undefined) out.pids = { current: Number(pidsCur.trim()), limit: pidsMax === undefined ? null : parseLimit(pidsMax) };
    if (cpuStat !== undefined) {
      const s = parseKeyed(cpuStat);
      const us = (k: string): number | undefined => (s[k] === undefined ? undefined : s[k] * 1000);
      const cpu: CpuStats = { usageNanos: us('usage_usec') ?? 0 };
      cpu.userNanos = us('user_usec');
      cpu.systemNanos = us('system_usec');
      cpu.periods = s['nr_periods'];
      cpu.throttledPeriods = s['nr_throttled'];
      cpu.throttledNanos = us('throttled_usec');
      out.cpu = cpu;
    }
    if (ioStat !== undefined) out.blkio = parseIoStatV2(ioStat);
    return out;
  }

  async destroy(options: DestroyOptions = {}): Promise<void> {
    const { ctx } = this.s;
    const kill = options.kill === true;
    try {
      if (kill) await this.killAndWait(options.timeoutMs ?? 5000);
      await removeGroupDir(ctx, this.dir, kill);
    } catch (err) {
      throw wrap(err, `destroy cgroup ${this.path}`);
    }
  }

  /** cgroup.kill (5.14+) kills the whole subtree atomically; older kernels: freeze, kill, thaw. */
  private async killAndWait(timeoutMs: number): Promise<void> {
    const { ctx } = this.s;
    const populated = async (): Promise<boolean> => {
      const events = await tryRead(ctx, join(this.dir, 'cgroup.events'));
      return events !== undefined && /^populated 1$/m.test(events);
    };
    if (!(await populated())) return;
    let killedByKernel = false;
    try {
      killedByKernel = await tryWrite(ctx, this.dir, 'cgroup.kill', '1');
    } catch (err) {
      if (errnoCodeOf(err) !== 'EINVAL') throw err;
    }
    if (!killedByKernel) {
      const frozen = await this.freeze().then(() => true, () => false);
      killAll(ctx, await this.pids());
      if (frozen) await this.thaw();
    }
    const empty = await pollUntil(async () => !(await populated()), timeoutMs);
    if (!empty) {
      const left = await this.pids();
      throw new BerthError('BERTH_CGROUP', `processes ${left.join(', ')} still in cgroup ${this.path} ${timeoutMs} ms after SIGKILL`, { details: { pids: left } });
    }
  }
}
