/** Container views: inspect and ps, shaped as Docker answers them. */
import type { ContainerInspect, ContainerSummary, Filters } from '@berth/api';
import type { EngineContext } from './context.js';
import { checkFilterKeys, containerStates, invalidFilter, matchLabels, matchRegexp, psFilterKeys } from './filters.js';
import { JsonSplice } from './json-splice.js';
import { networkSettingsOf, networksOf, storedPortsFor, summaryPortRuns, summaryPorts, summaryPortsFor } from './network.js';
import { checkHealthFilter, healthFilterValue, healthOf, withHealthText } from './health.js';
import { commandText, statusText } from './status.js';
import { parseRfc3339Nano } from './time.js';

export function inspectContainer(ctx: EngineContext, ref: string, opts?: { size: boolean }): Promise<ContainerInspect> {
  return inspectView(ctx, ref, opts);
}

/** inspectContainer's answer as JSON bytes, its large port maps from the cache of their JSON. */
export async function inspectContainerJson(ctx: EngineContext, ref: string, opts?: { size: boolean }): Promise<Buffer> {
  const splice = new JsonSplice();
  return splice.encode(await inspectView(ctx, ref, opts, splice));
}

async function inspectView(ctx: EngineContext, ref: string, opts: { size: boolean } | undefined, splice?: JsonSplice): Promise<ContainerInspect> {
  const c = ctx.get(ref);
  const r = c.rec;
  const s = r.State;
  let graph: { Name: string; Data: Record<string, string> | null } = { Name: r.Driver, Data: null };
  try {
    graph = await ctx.images.containerGraphDriver(c.id);
  } catch {
    // Shown without data.
  }
  const out: ContainerInspect = {
    Id: r.Id, Created: r.Created, Path: r.Path, Args: r.Args,
    State: {
      Status: s.Status, Running: s.Running, Paused: s.Paused, Restarting: s.Restarting, OOMKilled: s.OOMKilled, Dead: s.Dead,
      Pid: s.Pid, ExitCode: s.ExitCode, Error: s.Error, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt,
      ...(healthOf(s) ? { Health: healthOf(s) } : {}),
    },
    Image: r.Image, ResolvConfPath: r.ResolvConfPath, HostnamePath: r.HostnamePath, HostsPath: r.HostsPath, LogPath: r.LogPath,
    Name: r.Name, RestartCount: r.RestartCount, Driver: r.Driver, Platform: r.Platform, MountLabel: '', ProcessLabel: '', AppArmorProfile: '',
    ExecIDs: c.execs.size ? [...c.execs] : null, HostConfig: c.host, GraphDriver: graph,
    Mounts: r.MountPoints, Config: r.Config, NetworkSettings: networkSettingsOf(ctx, c, splice),
  };
  if (splice) {
    // Copies with the same keys in the same order, the large maps as marks.
    const stored = storedPortsFor(ctx, c, splice);
    if (stored.PortBindings !== c.host.PortBindings) out.HostConfig = { ...c.host, PortBindings: stored.PortBindings };
    if (stored.ExposedPorts !== r.Config.ExposedPorts) out.Config = { ...r.Config, ExposedPorts: stored.ExposedPorts };
  }
  if (opts?.size) {
    const rw = await ctx.images.size(c.id).catch(() => 0);
    out.SizeRw = rw;
    out.SizeRootFs = rw + (await imageSize(ctx, r.Image));
  }
  return out;
}

async function imageSize(ctx: EngineContext, imageId: string): Promise<number> {
  try {
    return (await ctx.images.inspect(imageId)).Size;
  } catch {
    return 0;
  }
}

export function listContainers(ctx: EngineContext, opts: { all: boolean; limit: number; size: boolean; filters: Filters }): Promise<ContainerSummary[]> {
  return listView(ctx, opts);
}

/** listContainers's answer as JSON bytes, the Ports of a container with thousands from a cache. */
export async function listContainersJson(ctx: EngineContext, opts: { all: boolean; limit: number; size: boolean; filters: Filters; portRuns?: boolean }): Promise<Buffer> {
  const splice = new JsonSplice();
  return splice.encode(await listView(ctx, opts, splice));
}

async function listView(ctx: EngineContext, opts: { all: boolean; limit: number; size: boolean; filters: Filters; portRuns?: boolean }, splice?: JsonSplice): Promise<ContainerSummary[]> {
  const f = opts.filters;
  checkFilterKeys(f, psFilterKeys);
  for (const st of f.get('status') ?? []) if (!containerStates.includes(st)) throw invalidFilter('status', st);
  const health = f.get('health');
  checkHealthFilter(health);
  const all = [...ctx.containers.values()].sort((a, b) => (a.rec.Created < b.rec.Created ? 1 : a.rec.Created > b.rec.Created ? -1 : 0));
  const ancestors = new Set<string>();
  for (const a of f.get('ancestor') ?? []) {
    try {
      ancestors.add((await ctx.images.resolve(a)).id);
    } catch {
      // An unknown image matches nothing.
    }
  }
  const refTime = (key: 'before' | 'since'): string | null => {
    const v = [...(f.get(key) ?? [])][0];
    return v === undefined ? null : ctx.get(v).rec.Created;
  };
  const before = refTime('before');
  const since = refTime('since');
  const showAll = opts.all || opts.limit > 0 || f.has('status') || before !== null || since !== null;
  const out: ContainerSummary[] = [];
  for (const c of all) {
    const r = c.rec;
    if (!showAll && !r.State.Running && !r.State.Restarting) continue;
    if (before !== null && r.Created >= before) continue;
    if (since !== null && r.Created <= since) continue;
    const status = f.get('status');
    if (status?.size && !status.has(r.State.Status)) continue;
    if (!matchRegexp(f.get('name'), r.Name) && !matchRegexp(f.get('name'), c.name)) continue;
    const ids = f.get('id');
    if (ids?.size && ![...ids].some((v) => c.id.startsWith(v)) && !matchRegexp(ids, c.id)) continue;
    if (!matchLabels(f.get('label'), r.Config.Labels)) continue;
    if (ancestors.size || f.get('ancestor')?.size) {
      if (!ancestors.has(r.Image) && !f.get('ancestor')!.has(r.Config.Image)) continue;
    }
    const exited = f.get('exited');
    if (exited?.size && (r.State.Status !== 'exited' || !exited.has(String(r.State.ExitCode)))) continue;
    if (health?.size && !health.has(healthFilterValue(r.State))) continue;
    // Docker's `volume` filter: a mount whose volume name or destination is the value.
    const vol = f.get('volume');
    if (vol?.size && !r.MountPoints.some((m) => (m.Name !== undefined && vol.has(m.Name)) || vol.has(m.Destination))) continue;
    const net = f.get('network');
    if (net?.size && !net.has(c.host.NetworkMode) && !Object.keys(r.Networks ?? {}).some((n) => net.has(n) || [...net].some((v) => ctx.network?.sandbox(c.id)?.endpoints.some((e) => e.networkName === n && e.networkId.startsWith(v))))) continue;
    const summary: ContainerSummary = {
      Id: c.id, Names: [r.Name], Image: r.Config.Image, ImageID: r.Image, Command: commandText(r.Path, r.Args),
      Created: Math.floor(Number(parseRfc3339Nano(r.Created) ?? 0n) / 1e9), Ports: opts.portRuns ? summaryPortRuns(ctx, c) : splice ? summaryPortsFor(ctx, c, splice) : summaryPorts(ctx, c),
      Labels: r.Config.Labels ?? {}, State: r.State.Status, Status: withHealthText(statusText(r.State), r.State),
      HostConfig: { NetworkMode: c.host.NetworkMode }, NetworkSettings: { Networks: networksOf(ctx, c) }, Mounts: r.MountPoints,
    };
    if (opts.size) {
      summary.SizeRw = await ctx.images.size(c.id).catch(() => 0);
      summary.SizeRootFs = summary.SizeRw + (await imageSize(ctx, r.Image));
    }
    out.push(summary);
    if (opts.limit > 0 && out.length >= opts.limit) break;
  }
  return out;
}

