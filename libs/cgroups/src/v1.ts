import { BerthError, errnoCodeOf, wrap } from '@berth/errors';
import {
  ancestors,
  join,
  killAll,
  parseKeyed,
  parseBlkioV1,
  parseLimit,
  pidsOfTree,
  pollUntil,
  removeGroupDir,
  tryRead,
  tryWrite,
  write,
  type Ctx,
} from './common.js';
import type { UnifiedMount, V1Hierarchy } from './detect.js';
import { validateResources, type CgroupWarning, type Resources } from './resources.js';
import type { CgroupHandle, CgroupStats, CpuStats, DestroyOptions, MemoryStats, PidsStats } from './types.js';

/** State one v1 (or hybrid) manager shares with all its handles. */
export interface V1Shared {
  ctx: Ctx;
  hierarchies: V1Hierarchy[];
  /** The hybrid's cgroup2 mount; the init joins it too. */
  unified: UnifiedMount | undefined;
  /** Learnt once per manager: which blkio weight file this kernel offers (null: none). */
  blkioWeightFile?: 'blkio.weight' | 'blkio.bfq.weight' | null;
  /** Directories of the cgroup2 mount whose subtree_control already has +hugetlb. */
  unifiedEnabled: Set<string>;
}

/** Which leaf directories `create` made itself (so their values are the kernel defaults). */
export interface Freshness {
  fresh: Set<string>;
  /** cpuset.cpus/mems were already written while initialising the cpuset path. */
  cpusetDone: boolean;
}

const NOT_FRESH: Freshness = { fresh: new Set(), cpusetDone: false };
const FREEZE_TIMEOUT_MS = 2000;

// Primary hierarchy for listing pids: one the init always joins and that exists on most hosts.
const PRIMARY_ORDER = ['pids', 'freezer', 'memory', 'cpu', 'cpuacct', 'devices'];

export class V1Group implements CgroupHandle {
  readonly version = 1 as const;
  readonly warnings: CgroupWarning[];

  constructor(
    private readonly s: V1Shared,
    readonly path: string,
    warnings: CgroupWarning[] = [],
  ) {
    this.warnings = warnings;
  }

  /** Leaf directory of the hierarchy that holds `controller`, if mounted. */
  dirOf(controller: string): string | undefined {
    const h = this.s.hierarchies.find((x) => x.controllers.includes(controller));
    return h === undefined ? undefined : join(h.mountPoint, this.path);
  }

  unifiedDir(): string | undefined {
    return this.s.unified === undefined ? undefined : join(this.s.unified.mountPoint, this.path);
  }

  /** Every leaf directory: one per hierarchy, plus the hybrid's cgroup2 one. */
  allDirs(): string[] {
    const dirs = this.s.hierarchies.map((h) => join(h.mountPoint, this.path));
    const u = this.unifiedDir();
    if (u !== undefined) dirs.push(u);
    return dirs;
  }

  primaryDir(): string {
    for (const c of PRIMARY_ORDER) {
      const d = this.dirOf(c);
      if (d !== undefined) return d;
    }
    return this.allDirs()[0]!;
  }

  procsFiles(): string[] {
    return this.allDirs().map((d) => join(d, 'cgroup.procs'));
  }

  paths(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const h of this.s.hierarchies) for (const c of h.controllers) out[c] = join(h.mountPoint, this.path);
    const u = this.unifiedDir();
    if (u !== undefined) out['unified'] = u;
    return out;
  }

  exists(): boolean {
    return this.s.ctx.fs.exists(this.primaryDir());
  }

  pids(): Promise<number[]> {
    return pidsOfTree(this.s.ctx, this.primaryDir());
  }

  /**
   * Makes the directory in every hierarchy, initialises cpuset down the path, then applies.
   * On failure the directories made here are removed again.
   */
  async create(resources: Resources): Promise<void> {
    validateResources(resources);
    const { ctx } = this.s;
    const mounts = [...this.s.hierarchies.map((h) => h.mountPoint), ...(this.s.unified ? [this.s.unified.mountPoint] : [])];
    const made = await Promise.allSettled(mounts.map((m) => ctx.fs.mkdir(join(m, this.path))));
    const firstMade = new Map<string, string>();
    made.forEach((r, i) => {
      if (r.status === 'fulfilled' && r.value !== undefined) firstMade.set(mounts[i]!, r.value);
    });
    try {
      const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw wrap(failed.reason, 'mkdir');
      const fresh = new Set<string>();
      for (const h of this.s.hierarchies) if (firstMade.has(h.mountPoint)) for (const c of h.controllers) fresh.add(c);
      if (this.s.unified !== undefined && firstMade.has(this.s.unified.mountPoint)) fresh.add('unified');
      const cpuset = this.s.hierarchies.find((h) => h.controllers.includes('cpuset'));
      let cpusetDone = false;
      if (cpuset !== undefined && firstMade.has(cpuset.mountPoint)) {
        await this.initCpuset(cpuset.mountPoint, firstMade.get(cpuset.mountPoint)!, resources.cpu);
        cpusetDone = true;
      }
      this.warnings.push(...(await this.applyWith(resources, { fresh, cpusetDone })));
    } catch (err) {
      // Undo: remove what this call made, deepest first; the original error is what matters.
      await Promise.all(
        [...firstMade].map(async ([mount, first]) => {
          const dirs = [join(mount, this.path)];
          for (let d = dirs[0]!; d !== first && d.length > first.length; ) dirs.push((d = d.slice(0, d.lastIndexOf('/'))));
          for (const d of dirs) await ctx.fs.rmdir(d).catch(() => undefined);
        }),
      );
      throw err;
    }
  }

  /**
   * A new cpuset group starts with empty cpus and mems, and no task can join it until both are
   * set; so each directory this call made gets its parent's values, and an existing ancestor
   * still empty is filled from its own parent first. `override` (the container's own cpus/mems)
   * goes to the leaf directly.
   */
  private async initCpuset(mount: string, firstMade: string, override: Resources['cpu']): Promise<void> {
    const { ctx } = this.s;
    const made: string[] = [];
    for (let d = join(mount, this.path); ; d = d.slice(0, d.lastIndexOf('/'))) {
      made.unshift(d);
      if (d === firstMade || d.length <= firstMade.length) break;
    }
    const parentOf = (d: string): string => d.slice(0, d.lastIndexOf('/'));
    const valuesOf = async (dir: string): Promise<{ cpus: string; mems: string }> => {
      const [cpus, mems] = await Promise.all([ctx.fs.readFile(join(dir, 'cpuset.cpus')), ctx.fs.readFile(join(dir, 'cpuset.mems'))]);
      let v = { cpus: cpus.trim(), mems: mems.trim() };
      if ((v.cpus === '' || v.mems === '') && dir !== mount && dir.startsWith(`${mount}/`)) {
        const p = await valuesOf(parentOf(dir));
        if (v.cpus === '') await write(ctx, dir, 'cpuset.cpus', p.cpus);
        if (v.mems === '') await write(ctx, dir, 'cpuset.mems', p.mems);
        v = { cpus: v.cpus || p.cpus, mems: v.mems || p.mems };
      }
      return v;
    };
    const inherited = await valuesOf(parentOf(made[0]!));
    const leaf = made[made.length - 1];
    for (const d of made) {
      const cpus = d === leaf && override?.cpus ? override.cpus : inherited.cpus;
      const mems = d === leaf && override?.mems ? override.mems : inherited.mems;
      // mems first: cpus alone would not let a task in, and some kernels check mems on attach.
      await write(ctx, d, 'cpuset.mems', mems);
      await write(ctx, d, 'cpuset.cpus', cpus);
    }
  }

  async apply(resources: Resources): Promise<CgroupWarning[]> {
    return this.applyWith(resources, NOT_FRESH);
  }

  async applyWith(r: Resources, f: Freshness): Promise<CgroupWarning[]> {
    validateResources(r);
    const warnings: CgroupWarning[] = [];
    // Controllers live in different directories and do not constrain each other: write them
    // concurrently; inside one controller the order is fixed.
    await Promise.all([
      this.applyCpu(r, f, warnings),
      this.applyCpuset(r, f, warnings),
      this.applyMemory(r, f, warnings),
      this.applyPids(r, f, warnings),
      this.applyBlkio(r, warnings),
      this.applyHugetlb(r, warnings),
      this.applyDevices(r, warnings),
      this.applyUnified(r, warnings),
    ]);
    return warnings;
  }

  private missing(warnings: CgroupWarning[], item: string, controller: string): void {
    warnings.push({ item, reason: `the ${controller} controller is not mounted on this host` });
  }

  private async applyCpu(r: Resources, _f: Freshness, warnings: CgroupWarning[]): Promise<void> {
    const cpu = r.cpu;
    if (cpu === undefined) return;
    const wants = (cpu.shares ?? 0) !== 0 || (cpu.quota ?? 0) !== 0 || (cpu.period ?? 0) !== 0 || cpu.realtimePeriod !== undefined || cpu.realtimeRuntime !== undefined;
    if (!wants) return;
    const dir = this.dirOf('cpu');
    if (dir === undefined) return this.missing(warnings, 'cpu', 'cpu');
    const { ctx } = this.s;
    if (cpu.shares) await write(ctx, dir, 'cpu.shares', String(cpu.shares));
    let periodAgain = false;
    if (cpu.period) {
      try {
        await ctx.fs.writeFile(join(dir, 'cpu.cfs_period_us'), String(cpu.period));
      } catch (err) {
        // A shorter period can be refused while the old quota/new period ratio exceeds the
        // parent's; once the new quota is in, the same period is accepted.
        if (errnoCodeOf(err) !== 'EINVAL' || !cpu.quota) throw wrap(err, `set cpu.cfs_period_us to "${cpu.period}"`);
        periodAgain = true;
      }
    }
    if (cpu.quota) {
      await write(ctx, dir, 'cpu.cfs_quota_us', String(cpu.quota));
      if (periodAgain) await write(ctx, dir, 'cpu.cfs_period_us', String(cpu.period));
    }
    // The runtime is bounded by the period: period first.
    if (cpu.realtimePeriod !== undefined && !(await tryWrite(ctx, dir, 'cpu.rt_period_us', String(cpu.realtimePeriod)))) {
      warnings.push({ item: 'cpu.realtimePeriod', reason: 'the kernel has no RT group scheduling (cpu.rt_period_us)' });
    }
    if (cpu.realtimeRuntime !== undefined && !(await tryWrite(ctx, dir, 'cpu.rt_runtime_us', String(cpu.realtimeRuntime)))) {
      warnings.push({ item: 'cpu.realtimeRuntime', reason: 'the kernel has no RT group scheduling (cpu.rt_runtime_us)' });
    }
  }

  private async applyCpuset(r: Resources, f: Freshness, warnings: CgroupWarning[]): Promise<void> {
    const cpus = r.cpu?.cpus;
    const mems = r.cpu?.mems;
    if ((cpus === undefined && mems === undefined) || f.cpusetDone) return;
    const dir = this.dirOf('cpuset');
    if (dir === undefined) return this.missing(warnings, 'cpu.cpus', 'cpuset');
    if (mems !== undefined) await write(this.s.ctx, dir, 'cpuset.mems', mems);
    if (cpus !== undefined) await write(this.s.ctx, dir, 'cpuset.cpus', cpus);
  }

  /**
   * The kernel keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every step, so
   * when both change the order depends on direction: growing, memsw goes first (it must make
   * room for the new limit); shrinking, the limit goes first. The test "new memsw >= current
   * limit" picks the order that is always accepted.
   */
  private async applyMemory(r: Resources, f: Freshness, warnings: CgroupWarning[]): Promise<void> {
    const m = r.memory;
    if (m === undefined) return;
    const wants = Object.values(m).some((v) => v !== undefined);
    if (!wants) return;
    const dir = this.dirOf('memory');
    if (dir === undefined) return this.missing(warnings, 'memory', 'memory');
    const { ctx } = this.s;
    const fresh = f.fresh.has('memory');
    const limit = m.limit === 0 ? undefined : m.limit;
    let swap = m.swap === 0 ? undefined : m.swap;
    // Unlimited memory with swap unset means both unlimited; a finite memsw would refuse it.
    const impliedSwap = limit === -1 && swap === undefined;
    if (impliedSwap && !fresh) swap = -1;
    const setLimit = async (): Promise<void> => {
      if (limit !== undefined) await write(ctx, dir, 'memory.limit_in_bytes', String(limit));
    };
    const setSwap = async (): Promise<void> => {
      if (swap === undefined) return;
      if (!(await tryWrite(ctx, dir, 'memory.memsw.limit_in_bytes', String(swap))) && !impliedSwap) {
        warnings.push({ item: 'memory.swap', reason: 'swap accounting is off (no memory.memsw.limit_in_bytes)' });
      }
    };
    if (limit !== undefined && swap !== undefined) {
      let swapFirst: boolean;
      if (swap === -1) swapFirst = true;
      else if (fresh) swapFirst = false; // both start unlimited
      else {
        // null: the limit is unlimited now, so memsw is too and only limit-first can work.
        const cur = parseLimit(await ctx.fs.readFile(join(dir, 'memory.limit_in_bytes')));
        swapFirst = cur !== null && cur <= swap;
      }
      if (swapFirst) {
        await setSwap();
        await setLimit();
      } else {
        await setLimit();
        await setSwap();
      }
    } else {
      await setLimit();
      await setSwap();
    }
    if (m.reservation !== undefined && m.reservation !== 0) {
      await write(ctx, dir, 'memory.soft_limit_in_bytes', String(m.reservation));
    }
    if (m.kernel !== undefined && m.kernel !== 0) await this.deprecatedKmem(dir, 'memory.kmem.limit_in_bytes', m.kernel, 'memory.kernel', warnings);
    if (m.kernelTCP !== undefined && m.kernelTCP !== 0) await this.deprecatedKmem(dir, 'memory.kmem.tcp.limit_in_bytes', m.kernelTCP, 'memory.kernelTCP', warnings);
    if (m.swappiness !== undefined) await write(ctx, dir, 'memory.swappiness', String(m.swappiness));
    if (m.disableOOMKiller !== undefined && !(fresh && !m.disableOOMKiller)) {
      await write(ctx, dir, 'memory.oom_control', m.disableOOMKiller ? '1' : '0');
    }
  }

  /** Kernel memory limits are gone from recent kernels (the file stays, writes fail). */
  private async deprecatedKmem(dir: string, file: string, value: number, item: string, warnings: CgroupWarning[]): Promise<void> {
    try {
      await this.s.ctx.fs.writeFile(join(dir, file), String(value));
    } catch (err) {
      const code = errnoCodeOf(err);
      if (code !== 'ENOENT' && code !== 'EOPNOTSUPP' && code !== 'ENOTSUP' && code !== 'EINVAL') throw wrap(err, `set ${file} to "${value}"`);
      warnings.push({ item, reason: `this kernel does not limit it (${file}: ${code})` });
    }
  }

  private async applyPids(r: Resources, f: Freshness, warnings: CgroupWarning[]): Promise<void> {
    if (r.pids === undefined) return;
    const dir = this.dirOf('pids');
    if (dir === undefined) return this.missing(warnings, 'pids.limit', 'pids');
    const unlimited = r.pids.limit <= 0;
    if (unlimited && f.fresh.has('pids')) return; // already "max"
    await write(this.s.ctx, dir, 'pids.max', unlimited ? 'max' : String(r.pids.limit));
  }

  /** blkio.weight on CFQ kernels, blkio.bfq.weight where BFQ is the only proportional scheduler. */
  private async writeBlkioWeight(dir: string, suffix: '' | '_device', value: string): Promise<boolean> {
    const { ctx } = this.s;
    const known = this.s.blkioWeightFile;
    if (known === null) return false;
    if (known !== undefined) {
      await write(ctx, dir, known + suffix, value);
      return true;
    }
    for (const file of ['blkio.weight', 'blkio.bfq.weight'] as const) {
      if (await tryWrite(ctx, dir, file + suffix, value)) {
        this.s.blkioWeightFile = file;
        return true;
      }
    }
    this.s.blkioWeightFile = null;
    return false;
  }

  private async applyBlkio(r: Resources, warnings: CgroupWarning[]): Promise<void> {
    const b = r.blockIO;
    if (b === undefined) return;
    const wants = Object.values(b).some((v) => v !== undefined && !(Array.isArray(v) && v.length === 0));
    if (!wants) return;
    const dir = this.dirOf('blkio');
    if (dir === undefined) return this.missing(warnings, 'blockIO', 'blkio');
    const { ctx } = this.s;
    const noWeight = { reason: 'the kernel offers no proportional IO weight (blkio.weight, blkio.bfq.weight)' };
    if (b.weight) {
      if (!(await this.writeBlkioWeight(dir, '', String(b.weight)))) warnings.push({ item: 'blockIO.weight', ...noWeight });
    }
    if (b.leafWeight && !(await tryWrite(ctx, dir, 'blkio.leaf_weight', String(b.leafWeight)))) {
      warnings.push({ item: 'blockIO.leafWeight', reason: 'the kernel has no blkio.leaf_weight (CFQ only)' });
    }
    for (const [i, d] of (b.weightDevice ?? []).entries()) {
      if (d.weight !== undefined && !(await this.writeBlkioWeight(dir, '_device', `${d.major}:${d.minor} ${d.weight}`))) {
        warnings.push({ item: `blockIO.weightDevice[${i}].weight`, ...noWeight });
      }
      if (d.leafWeight !== undefined && !(await tryWrite(ctx, dir, 'blkio.leaf_weight_device', `${d.major}:${d.minor} ${d.leafWeight}`))) {
        warnings.push({ item: `blockIO.weightDevice[${i}].leafWeight`, reason: 'the kernel has no blkio.leaf_weight_device (CFQ only)' });
      }
    }
    const throttles = [
      ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
      ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
      ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
      ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
    ] as const;
    for (const [field, file] of throttles) {
      for (const d of b[field] ?? []) await write(ctx, dir, file, `${d.major}:${d.minor} ${d.rate}`);
    }
  }

  private async applyHugetlb(r: Resources, warnings: CgroupWarning[]): Promise<void> {
    const limits = r.hugepageLimits;
    if (limits === undefined || limits.length === 0) return;
    const { ctx } = this.s;
    let dir = this.dirOf('hugetlb');
    let suffix = 'limit_in_bytes';
    if (dir === undefined && this.s.unified?.controllers.includes('hugetlb')) {
      // Hybrid host with hugetlb on the cgroup2 side: enable it down the path, then use v2 names.
      dir = this.unifiedDir()!;
      suffix = 'max';
      await this.enableUnified('hugetlb');
    }
    if (dir === undefined) return this.missing(warnings, 'hugepageLimits', 'hugetlb');
    for (const [i, h] of limits.entries()) {
      const file = `hugetlb.${h.pageSize}.${suffix}`;
      if (!(await tryWrite(ctx, dir, file, String(h.limit)))) {
        throw new BerthError('BERTH_INVALID_ARGUMENT', `resources.hugepageLimits[${i}].pageSize: the kernel has no ${h.pageSize} huge pages (${file})`, {
          details: { field: `resources.hugepageLimits[${i}].pageSize` },
        });
      }
    }
  }

  /** Enables a controller in cgroup.subtree_control of each parent of the group on the cgroup2 mount. */
  private async enableUnified(controller: string): Promise<void> {
    const mount = this.s.unified!.mountPoint;
    for (const dir of ancestors(mount, this.path)) {
      const key = `${dir}\0${controller}`;
      if (this.s.unifiedEnabled.has(key)) continue;
      await write(this.s.ctx, dir, 'cgroup.subtree_control', `+${controller}`);
      this.s.unifiedEnabled.add(key);
    }
  }

  private async applyDevices(r: Resources, warnings: CgroupWarning[]): Promise<void> {
    if (r.devices === undefined) return;
    const dir = this.dirOf('devices');
    if (dir === undefined) return this.missing(warnings, 'devices', 'devices');
    const { ctx } = this.s;
    // Start from deny-all so the list is the whole truth, whatever was allowed before.
    await write(ctx, dir, 'devices.deny', 'a');
    for (const d of r.devices) {
      await write(ctx, dir, d.allow ? 'devices.allow' : 'devices.deny', deviceRule(d));
    }
  }

  private async applyUnified(r: Resources, warnings: CgroupWarning[]): Promise<void> {
    if (r.unified === undefined || Object.keys(r.unified).length === 0) return;
    const dir = this.unifiedDir();
    if (dir === undefined) {
      warnings.push({ item: 'unified', reason: 'this host has no cgroup2 mount; unified keys need cgroup v2' });
      return;
    }
    for (const [key, value] of Object.entries(r.unified)) {
      if (!(await tryWrite(this.s.ctx, dir, key, value))) {
        throw new BerthError('BERTH_INVALID_ARGUMENT', `resources.unified["${key}"]: no such file in the cgroup2 group ${dir} (controller not available there)`, {
          details: { field: `resources.unified.${key}` },
        });
      }
    }
  }

  private freezerDir(): string {
    const dir = this.dirOf('freezer');
    if (dir === undefined) throw new BerthError('BERTH_CGROUP', `freeze ${this.path}: the freezer controller is not mounted on this host`);
    return dir;
  }

  async freeze(): Promise<void> {
    const { ctx } = this.s;
    const dir = this.freezerDir();
    const state = join(dir, 'freezer.state');
    // FREEZING can linger while a task sits in an uninterruptible wait; re-asking helps it along.
    const ok = await pollUntil(async () => {
      await write(ctx, dir, 'freezer.state', 'FROZEN');
      return (await ctx.fs.readFile(state)).trim() === 'FROZEN';
    }, FREEZE_TIMEOUT_MS);
    if (!ok) {
      await write(ctx, dir, 'freezer.state', 'THAWED').catch(() => undefined);
      throw new BerthError('BERTH_CGROUP', `freeze ${this.path}: still FREEZING after ${FREEZE_TIMEOUT_MS} ms; thawed again`);
    }
  }

  async thaw(): Promise<void> {
    await write(this.s.ctx, this.freezerDir(), 'freezer.state', 'THAWED');
  }

  async stats(): Promise<CgroupStats> {
    const { ctx } = this.s;
    const read = (c: string, file: string): Promise<string | undefined> => {
      const dir = this.dirOf(c);
      return dir === undefined ? Promise.resolve(undefined) : tryRead(ctx, join(dir, file));
    };
    const [usage, limit, max, stat, failcnt, oomControl, pidsCur, pidsMax, cpuUsage, cpuUser, cpuSys, cpuStat, perCpu, ioBytes, ioServiced] = await Promise.all([
      read('memory', 'memory.usage_in_bytes'),
      read('memory', 'memory.limit_in_bytes'),
      read('memory', 'memory.max_usage_in_bytes'),
      read('memory', 'memory.stat'),
      read('memory', 'memory.failcnt'),
      read('memory', 'memory.oom_control'),
      read('pids', 'pids.current'),
      read('pids', 'pids.max'),
      read('cpuacct', 'cpuacct.usage'),
      read('cpuacct', 'cpuacct.usage_user'),
      read('cpuacct', 'cpuacct.usage_sys'),
      read('cpu', 'cpu.stat'),
      read('cpuacct', 'cpuacct.usage_percpu'),
      read('blkio', 'blkio.throttle.io_service_bytes_recursive'),
      read('blkio', 'blkio.throttle.io_serviced_recursive'),
    ]);
    const out: CgroupStats = {};
    if (usage !== undefined) {
      const memory: MemoryStats = { usage: Number(usage.trim()), limit: limit === undefined ? null : parseLimit(limit), stat: parseKeyed(stat ?? '') };
      if (max !== undefined) memory.maxUsage = Number(max.trim());
      if (failcnt !== undefined) memory.failcnt = Number(failcnt.trim());
      const kills = oomControl === undefined ? undefined : parseKeyed(oomControl)['oom_kill'];
      if (kills !== undefined) memory.oomKills = kills;
      out.memory = memory;
    }
    if (pidsCur !== undefined) {
      const pids: PidsStats = { current: Number(pidsCur.trim()), limit: pidsMax === undefined ? null : parseLimit(pidsMax) };
      out.pids = pids;
    }
    if (cpuUsage !== undefined) {
      const s = parseKeyed(cpuStat ?? '');
      const cpu: CpuStats = { usageNanos: Number(cpuUsage.trim()) };
      if (cpuUser !== undefined) cpu.userNanos = Number(cpuUser.trim());
      if (cpuSys !== undefined) cpu.systemNanos = Number(cpuSys.trim());
      if (s['nr_periods'] !== undefined) cpu.periods = s['nr_periods'];
      if (s['nr_throttled'] !== undefined) cpu.throttledPeriods = s['nr_throttled'];
      if (s['throttled_time'] !== undefined) cpu.throttledNanos = s['throttled_time'];
      if (perCpu !== undefined) cpu.perCpuNanos = perCpu.trim().split(/\s+/).filter(Boolean).map(Number);
      out.cpu = cpu;
    }
    if (ioBytes !== undefined || ioServiced !== undefined) {
      out.blkio = { serviceBytes: parseBlkioV1(ioBytes ?? ''), serviced: parseBlkioV1(ioServiced ?? '') };
    }
    return out;
  }

  async destroy(options: DestroyOptions = {}): Promise<void> {
    const { ctx } = this.s;
    const kill = options.kill === true;
    try {
      if (kill) await this.killAndWait(options.timeoutMs ?? 5000);
      await Promise.all(this.allDirs().map((d) => removeGroupDir(ctx, d, kill)));
    } catch (err) {
      throw wrap(err, `destroy cgroup ${this.path}`);
    }
  }

  /**
   * SIGKILLs everything in the group. With a freezer, the group is frozen first so nothing can
   * fork between listing and killing; the kills land on thaw.
   */
  private async killAndWait(timeoutMs: number): Promise<void> {
    const { ctx } = this.s;
    let pids = await this.pids();
    if (pids.length === 0) return;
    const freezer = this.dirOf('freezer');
    const frozen = freezer !== undefined && (await this.freeze().then(() => true, () => false));
    if (frozen) pids = await this.pids();
    killAll(ctx, pids);
    if (frozen) await this.thaw();
    const empty = await pollUntil(async () => {
      const left = await this.pids();
      if (!frozen) killAll(ctx, left); // catch children forked meanwhile
      return left.length === 0;
    }, timeoutMs);
    if (!empty) {
      const left = await this.pids();
      throw new BerthError('BERTH_CGROUP', `processes ${left.join(', ')} still in cgroup ${this.path} ${timeoutMs} ms after SIGKILL`, { details: { pids: left } });
    }
  }
}

/** An OCI device rule in the devices.allow/deny syntax: "c 1:3 rwm", "a *:* rwm". */
export function deviceRule(d: { type?: string | undefined; major?: number | null | undefined; minor?: number | null | undefined; access?: string | undefined }): string {
  const num = (n: number | null | undefined): string => (n === undefined || n === null || n < 0 ? '*' : String(n));
  return `${d.type ?? 'a'} ${num(d.major)}:${num(d.minor)} ${d.access || 'rwm'}`;
}
