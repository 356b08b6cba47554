import { errnoCodeOf, wrap } from '@berth/errors';
import { silentLogger, type Logger } from '@berth/log';
import type { Ctx } from './common.js';
import { realDeviceBpf, type DeviceBpf } from './device-filter.js';
import { detectLayout, findUnifiedMount, parseMountinfo, type CgroupLayout } from './detect.js';
import { realCgroupFs, realProcessKiller, type CgroupFs, type ProcessKiller } from './fs.js';
import { normalizeCgroupPath } from './path.js';
import { validateResources, type Resources } from './resources.js';
import type { CgroupHandle, CgroupManager } from './types.js';
import { V1Group, type V1Shared } from './v1.js';
import { V2Group, type V2Shared } from './v2.js';

export interface CreateCgroupManagerOptions {
  /** Filesystem seam; the host's by default. */
  fs?: CgroupFs | undefined;
  /** Signal seam for destroy({ kill }); process.kill by default. */
  killer?: ProcessKiller | undefined;
  /** mountinfo text; read from /proc/self/mountinfo (through `fs`) when absent. */
  mountinfo?: string | undefined;
  /** /proc/cgroups text; read through `fs` when absent (a missing file is fine). */
  procCgroups?: string | undefined;
  /** The injected component logger (`cgroups`). */
  logger?: Logger | undefined;
  /**
   * cgroup v2 device filter seam (eBPF). Default: @berth/native's when `fs` is the host's;
   * none with a fake `fs` (device rules are then a warning). Unused on v1.
   */
  deviceBpf?: DeviceBpf | undefined;
}

async function readOptional(fs: CgroupFs, path: string): Promise<string | undefined> {
  try {
    return await fs.readFile(path);
  } catch (err) {
    if (errnoCodeOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Detects the host's cgroup layout (one mountinfo read, one /proc/cgroups read, one
 * cgroup.controllers read) and returns the v1/hybrid or v2 manager for it.
 */
export async function createCgroupManager(opts: CreateCgroupManagerOptions = {}): Promise<CgroupManager> {
  const fs = opts.fs ?? realCgroupFs;
  const ctx: Ctx = { fs, killer: opts.killer ?? realProcessKiller, logger: opts.logger ?? silentLogger() };
  let layout: CgroupLayout;
  try {
    const mountinfo = opts.mountinfo ?? (await fs.readFile('/proc/self/mountinfo'));
    const procCgroups = opts.procCgroups ?? (await readOptional(fs, '/proc/cgroups'));
    const u = findUnifiedMount(parseMountinfo(mountinfo));
    const unifiedControllers = u === undefined ? undefined : await readOptional(fs, `${u.mountPoint}/cgroup.controllers`);
    layout = detectLayout({ mountinfo, procCgroups, unifiedControllers });
  } catch (err) {
    throw wrap(err, 'detect cgroup layout');
  }
  ctx.logger.debug({ layout }, 'cgroup layout detected');
  return layout.mode === 'v2' ? new V2Manager(ctx, layout, opts.deviceBpf ?? (fs === realCgroupFs ? realDeviceBpf() : undefined)) : new V1Manager(ctx, layout);
}

class V1Manager implements CgroupManager {
  readonly version = 1 as const;
  private readonly shared: V1Shared;
  private readonly roots: string[];

  constructor(
    ctx: Ctx,
    readonly layout: Extract<CgroupLayout, { mode: 'v1' | 'hybrid' }>,
  ) {
    const unified = layout.mode === 'hybrid' ? layout.unified : undefined;
    this.shared = { ctx, hierarchies: layout.hierarchies, unified, unifiedEnabled: new Set() };
    this.roots = [...layout.hierarchies.map((h) => h.mountPoint), ...(unified ? [unified.mountPoint] : [])];
  }

  normalizePath(path: string): string {
    return normalizeCgroupPath(path, this.roots);
  }

  async create(path: string, resources: Resources = {}): Promise<CgroupHandle> {
    const rel = this.normalizePath(path);
    validateResources(resources); // before the try: invalid input is the caller's, unwrapped
    return createGroup(new V1Group(this.shared, rel), rel, resources, this.shared.ctx);
  }

  open(path: string): CgroupHandle | null {
    const group = new V1Group(this.shared, this.normalizePath(path));
    return group.exists() ? group : null;
  }
}

class V2Manager implements CgroupManager {
  readonly version = 2 as const;
  private readonly shared: V2Shared;

  constructor(
    ctx: Ctx,
    readonly layout: Extract<CgroupLayout, { mode: 'v2' }>,
    deviceBpf: DeviceBpf | undefined,
  ) {
    this.shared = { ctx, unified: layout.unified, enabled: new Set(), deviceBpf };
  }

  normalizePath(path: string): string {
    return normalizeCgroupPath(path, [this.layout.unified.mountPoint]);
  }

  async create(path: string, resources: Resources = {}): Promise<CgroupHandle> {
    const rel = this.normalizePath(path);
    validateResources(resources);
    return createGroup(new V2Group(this.shared, rel), rel, resources, this.shared.ctx);
  }

  open(path: string): CgroupHandle | null {
    const group = new V2Group(this.shared, this.normalizePath(path));
    return group.exists() ? group : null;
  }
}

/** The one create path of both managers: make the group, wrap failures with its path, log. */
async function createGroup(
  group: (V1Group | V2Group) & CgroupHandle,
  rel: string,
  resources: Resources,
  ctx: Ctx,
): Promise<CgroupHandle> {
  try {
    await group.create(resources);
  } catch (err) {
    throw wrap(err, `create cgroup ${rel}`);
  }
  ctx.logger.debug({ path: rel, warnings: group.warnings }, 'cgroup created');
  return group;
}
