/**
 * Containers on networks: which networks a container asks for (at create), its sandbox at
 * start and stop, the network verbs of the API, and the NetworkSettings view.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PortBinding as ApiPortBinding, ContainerConfig, EndpointSettings, Filters, HostConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkResource, NetworkSettings } from '@berth/api';
import { BerthError, isNotFound } from '@berth/errors';
import { expandBindings, portsView, protoName, wirePorts, type NetworkController, type PortRun, type SandboxView } from '@berth/network';
import type { TransportPort } from '@berth/plugin-api';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { checkFilterKeys, invalidFilter, matchLabels, matchRegexp } from './filters.js';
import { hostsFile, readOr, resolvConf } from './host-files.js';
import type { JsonSplice } from './json-splice.js';

/** What a container asked of one network (the request part of EndpointSettings). */
export interface EndpointConfig {
  Aliases?: string[] | null;
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string } | null;
  MacAddress?: string;
  DriverOpts?: Record<string, string> | null;
}

/** Modes that get a sandbox of their own from the controller (bridge and user networks). */
export function usesSandbox(mode: string): boolean {
  return mode !== 'host' && mode !== 'none' && !mode.startsWith('container:');
}

function controller(ctx: EngineContext): NetworkController {
  if (!ctx.network) throw new BerthError('BERTH_NOT_IMPLEMENTED', 'networking is not enabled in this daemon');
  return ctx.network;
}

/**
 * Create: NetworkMode names a network (bridge or a user network, resolved to its name), and
 * NetworkingConfig.EndpointsConfig adds per-network settings (`default` = the mode's network).
 */
export function networksAtCreate(
  ctx: EngineContext,
  host: HostConfig,
  endpoints: Record<string, Partial<EndpointSettings> | null> | null | undefined,
): Record<string, EndpointConfig> {
  const mode = host.NetworkMode;
  const out: Record<string, EndpointConfig> = {};
  const cfgOf = (e: Partial<EndpointSettings> | null | undefined): EndpointConfig => {
    const c: EndpointConfig = {};
    if (e?.Aliases?.length) c.Aliases = [...e.Aliases];
    if (e?.IPAMConfig && (e.IPAMConfig.IPv4Address || e.IPAMConfig.IPv6Address)) c.IPAMConfig = { ...e.IPAMConfig };
    if (e?.MacAddress) c.MacAddress = e.MacAddress;
    if (e?.DriverOpts && Object.keys(e.DriverOpts).length) c.DriverOpts = { ...e.DriverOpts };
    return c;
  };
  if (!usesSandbox(mode)) {
    for (const [k, e] of Object.entries(endpoints ?? {})) {
      const c = cfgOf(e);
      if (c.IPAMConfig || c.Aliases?.length) throw new BerthError('BERTH_INVALID_ARGUMENT', `user specified IP address or aliases are not supported with network mode ${mode} (${k})`);
    }
    return out;
  }
  if (!ctx.network) {
    if (mode !== 'bridge') throw new BerthError('BERTH_NETWORK_NOT_FOUND', `network ${mode} not found`);
    return { bridge: {} };
  }
  const modeNet = ctx.network.network(mode);
  if (modeNet.Driver === 'host' || modeNet.Driver === 'null') {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `network mode ${mode} names the ${modeNet.Name} network: use --network ${modeNet.Name === 'none' ? 'none' : 'host'}`);
  }
  host.NetworkMode = modeNet.Name;
  out[modeNet.Name] = {};
  for (const [k, e] of Object.entries(endpoints ?? {})) {
    const n = k === 'default' ? modeNet : ctx.network.network(k);
    const c = cfgOf(e);
    if (c.Aliases?.length && n.Name === 'bridge') throw new BerthError('BERTH_INVALID_ARGUMENT', 'network-scoped alias is supported only for containers in user defined networks');
    if (c.IPAMConfig && n.predefined) {
      throw new BerthError('BERTH_INVALID_ARGUMENT', 'user specified IP address is supported on user defined networks only');
    }
    out[n.Name] = c;
  }
  return out;
}

/** The resolv.conf of a container on a user network points at the embedded DNS. */
export function resolvConfFor(hostResolv: string, host: HostConfig): string {
  if (!usesSandbox(host.NetworkMode) || host.NetworkMode === 'bridge') return resolvConf(hostResolv, host);
  const base = resolvConf(hostResolv, { ...host, Dns: [] });
  const kept = base.split('\n').filter((l) => l && !/^\s*nameserver\s/.test(l) && !/^\s*options\s/.test(l));
  const opts = host.DnsOptions?.length ? host.DnsOptions : ['ndots:0'];
  return `nameserver 127.0.0.11\n${kept.join('\n')}${kept.length ? '\n' : ''}options ${opts.join(' ')}\n`;
}

/** Upstream resolvers for the embedded DNS: --dns, else the host's. */
export function upstreamResolvers(host: HostConfig): string[] {
  if (host.Dns?.length) return [...host.Dns];
  return readOr('/etc/resolv.conf', '')
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((x): x is string => !!x);
}

/**
 * Start: the container's sandbox. Answers once its network namespace exists (the path the
 * init joins), while the endpoints are still being attached: `ready` settles when they are,
 * with the container's /etc/hosts rewritten in place (the init's bind mount of it may already
 * exist). The caller must handle `ready` before the container's process runs.
 */
export async function openNetwork(ctx: EngineContext, c: Ctr): Promise<{ key: string; ready: Promise<void> } | undefined> {
  // `none` is a sandbox too, as in Docker: its own namespace with lo up and no endpoint.
  const none = c.host.NetworkMode === 'none';
  if (!ctx.network || (!usesSandbox(c.host.NetworkMode) && !none)) return undefined;
  const nets = none ? {} : (c.rec.Networks ?? { [c.host.NetworkMode]: {} });
  const ports = wirePorts(c.host.PortBindings, c.rec.Config.ExposedPorts, c.host.PublishAllPorts);
  const opened = await ctx.network.openSandbox({
    containerId: c.id, containerName: c.name, portBindings: ports.bindings, exposed: ports.exposed, dnsUpstream: upstreamResolvers(c.host),
    networks: Object.entries(nets).map(([name, e]) => ({
      network: name, aliases: e.Aliases ?? null, ...(e.IPAMConfig?.IPv4Address ? { ipv4: e.IPAMConfig.IPv4Address } : {}),
      ...(e.IPAMConfig?.IPv6Address ? { ipv6: e.IPAMConfig.IPv6Address } : {}), ...(e.MacAddress ? { mac: e.MacAddress } : {}), driverOpts: e.DriverOpts ?? null,
    })),
  });
  const ready = opened.ready.then((sb) => {
    writeHosts(ctx, c, sb);
    if (ports.bindings.length > LARGE) compactSoon();
  });
  // Docker's order: network connect before the container's start (`none` included).
  for (const name of none ? ['none'] : Object.keys(nets)) publishEndpoint(ctx, 'connect', c, name);
  return { key: opened.key, ready };
}

/** A `network connect|disconnect` event of the container on the network named or id'd `ref` (as dockerd sends one per endpoint). */
function publishEndpoint(ctx: EngineContext, action: 'connect' | 'disconnect', c: Ctr, ref: string): void {
  try {
    const net = ctx.network!.network(ref);
    ctx.bus.publish('network', action, net.Id, { container: c.id, name: net.Name, type: net.Driver });
  } catch {
    // Removed meanwhile: no event.
  }
}

/** A port list this long (a range) allocates enough that berthd gives the memory back after it. */
const LARGE = 1000;
let compactPending = false;

/**
 * A full GC once the current work is done, where berthd runs with --expose-gc (apps/berthd/bin):
 * a 10,000-port range allocates ~30 MiB of short-lived objects that would otherwise stay in
 * RSS (bench/network: berthd's memory flat around such a container).
 */
function compactSoon(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc || compactPending) return;
  compactPending = true;
  setTimeout(() => {
    compactPending = false;
    gc();
  }, 200).unref();
}

/** The host's address as containers reach it: the default bridge's gateway (Docker's host-gateway). */
export function hostGatewayIp(ctx: EngineContext): string | undefined {
  try {
    const gw = ctx.network?.network('bridge').IPAM.Config?.find((c) => c.Gateway && !c.Gateway.includes(':'))?.Gateway;
    return gw ? gw.replace(/\/\d+$/, '') : undefined;
  } catch {
    return undefined;
  }
}

function writeHosts(ctx: EngineContext, c: Ctr, sb: SandboxView): void {
  const ip = sb.endpoints.find((e) => e.ipAddress)?.ipAddress;
  const hostname = c.rec.Config.Domainname ? `${c.rec.Config.Hostname}.${c.rec.Config.Domainname} ${c.rec.Config.Hostname}` : c.rec.Config.Hostname;
  // In place (same inode): the init may have bind-mounted it already.
  const extra = { ExtraHosts: [...(c.host.ExtraHosts ?? []), ...c.linkHosts] };
  writeFileSync(c.rec.HostsPath, hostsFile(extra, ip, hostname, hostGatewayIp(ctx)), { mode: 0o644 });
}

/**
 * Stop, exit, failed start, removal: every endpoint and the sandbox go. Answers the publication
 * of the `network disconnect` events, which an exit sends after its `die` (Docker's order).
 */
export async function teardownNetwork(ctx: EngineContext, c: Ctr): Promise<() => void> {
  const sb = ctx.network?.sandbox(c.id);
  const large = (sb?.ports ?? []).reduce((n, r) => n + r.Count, 0) > LARGE;
  await ctx.network?.removeSandbox(c.id).catch((err: unknown) => ctx.log.warn({ err, containerId: c.id }, 'removing the network sandbox failed'));
  if (large) compactSoon();
  return () => {
    for (const e of sb?.endpoints ?? []) publishEndpoint(ctx, 'disconnect', c, e.networkId);
    if (sb && c.host.NetworkMode === 'none') publishEndpoint(ctx, 'disconnect', c, 'none');
  };
}

// ---- the API's network verbs ----

export async function createNetwork(ctx: EngineContext, req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
  const res = await controller(ctx).createNetwork(req);
  ctx.bus.publish('network', 'create', res.Id, { name: req.Name, type: req.Driver || 'bridge' });
  return res;
}

export const networkFilterKeys = ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type'];

const BUILTIN = ['bridge', 'host', 'none'];

/** Any value of the filter matches (a set is an OR), no values: no constraint. */
function anyOf(values: Set<string> | undefined, test: (v: string) => boolean): boolean {
  if (!values || values.size === 0) return true;
  for (const v of values) if (test(v)) return true;
  return false;
}

export function listNetworks(ctx: EngineContext, filters: Filters): NetworkResource[] {
  checkFilterKeys(filters, networkFilterKeys);
  for (const v of filters.get('type') ?? []) if (v !== 'custom' && v !== 'builtin') throw invalidFilter('type', v);
  for (const v of filters.get('dangling') ?? []) if (!['0', '1', 'true', 'false'].includes(v)) throw invalidFilter('dangling', v);
  return controller(ctx).list().filter((n) =>
    anyOf(filters.get('id'), (v) => n.Id.startsWith(v)) &&
    matchRegexp(filters.get('name'), n.Name) &&
    anyOf(filters.get('driver'), (v) => n.Driver === v) &&
    anyOf(filters.get('scope'), (v) => n.Scope === v) &&
    anyOf(filters.get('type'), (v) => (v === 'builtin') === BUILTIN.includes(n.Name)) &&
    matchLabels(filters.get('label'), n.Labels) &&
    anyOf(filters.get('dangling'), (v) => (['1', 'true'].includes(v) ? !BUILTIN.includes(n.Name) && usedBy(ctx, n.Id).length === 0 : usedBy(ctx, n.Id).length > 0 || BUILTIN.includes(n.Name))),
  );
}

function usedBy(ctx: EngineContext, networkId: string): Ctr[] {
  const n = controller(ctx).list().find((x) => x.Id === networkId);
  return [...ctx.containers.values()].filter((c) => n && c.rec.Networks && n.Name in c.rec.Networks);
}

export function inspectNetwork(ctx: EngineContext, ref: string): NetworkResource {
  return controller(ctx).inspect(ref);
}

export async function removeNetwork(ctx: EngineContext, ref: string): Promise<void> {
  const n = controller(ctx).inspect(ref);
  await controller(ctx).removeNetwork(n.Id);
  ctx.bus.publish('network', 'destroy', n.Id, { name: n.Name, type: n.Driver });
}

export async function pruneNetworks(ctx: EngineContext, filters: Filters): Promise<{ NetworksDeleted: string[] }> {
  const deleted: string[] = [];
  checkFilterKeys(filters, ['label', 'until']);
  for (const n of controller(ctx).list()) {
    if (BUILTIN.includes(n.Name)) continue;
    if (usedBy(ctx, n.Id).length || controller(ctx).endpointsOn(n.Id)) continue;
    if (!matchLabels(filters.get('label'), n.Labels)) continue;
    await removeNetwork(ctx, n.Id).then(() => deleted.push(n.Name)).catch((err: unknown) => ctx.log.warn({ err, networkId: n.Id }, 'prune: network removal failed'));
  }
  return { NetworksDeleted: deleted };
}

export async function connectNetwork(ctx: EngineContext, ref: string, req: NetworkConnectRequest): Promise<void> {
  // dockerd's order: the container (404 No such container), then the network.
  const c = ctx.get(req.Container);
  const net = controller(ctx).inspect(ref);
  await c.locked(async () => {
    if (!usesSandbox(c.host.NetworkMode)) {
      throw new BerthError('BERTH_NETWORK_FORBIDDEN', `container sharing network namespace with another container or host cannot be connected to any other network`);
    }
    if (net.Driver === 'host' || net.Driver === 'null') throw new BerthError('BERTH_NETWORK_FORBIDDEN', `container cannot be disconnected from host network or connected to host network`);
    const nets = (c.rec.Networks ??= { [c.host.NetworkMode]: {} });
    if (net.Name in nets) throw new BerthError('BERTH_NETWORK_FORBIDDEN', `endpoint with name ${c.name} already exists in network ${net.Name}`);
    const e = req.EndpointConfig ?? {};
    const cfg = networksAtCreate(ctx, { ...c.host, NetworkMode: net.Name }, { [net.Name]: e as Partial<EndpointSettings> })[net.Name] ?? {};
    if (c.rec.State.Running) {
      await controller(ctx).connect(c.id, {
        network: net.Id, aliases: cfg.Aliases ?? null, ...(cfg.IPAMConfig?.IPv4Address ? { ipv4: cfg.IPAMConfig.IPv4Address } : {}),
        ...(cfg.IPAMConfig?.IPv6Address ? { ipv6: cfg.IPAMConfig.IPv6Address } : {}), ...(cfg.MacAddress ? { mac: cfg.MacAddress } : {}), driverOpts: cfg.DriverOpts ?? null,
      });
    }
    nets[net.Name] = cfg;
    ctx.save(c);
  });
  ctx.bus.publish('network', 'connect', net.Id, { container: c.id, name: net.Name, type: net.Driver });
}

export async function disconnectNetwork(ctx: EngineContext, ref: string, container: string, force: boolean): Promise<void> {
  let c: Ctr;
  try {
    c = ctx.get(container);
  } catch (err) {
    // dockerd's force: the endpoint of that name goes from the network; a container that is
    // gone has none here (endpoints live with their container's run).
    if (!force || !isNotFound(err)) throw err;
    controller(ctx).inspect(ref);
    throw new BerthError('BERTH_ENDPOINT_NOT_FOUND', `endpoint ${container} not found`);
  }
  const net = controller(ctx).inspect(ref);
  await c.locked(async () => {
    const nets = c.rec.Networks ?? {};
    if (!(net.Name in nets)) throw new BerthError('BERTH_NETWORK_FORBIDDEN', `container ${c.id} is not connected to the network ${net.Name}`);
    if (c.rec.State.Running) await controller(ctx).disconnect(c.id, net.Id);
    delete nets[net.Name];
    ctx.save(c);
  });
  ctx.bus.publish('network', 'disconnect', net.Id, { container: c.id, name: net.Name, type: net.Driver });
}

// ---- views ----

function endpointView(base: EndpointSettings, cfg: EndpointConfig | undefined): EndpointSettings {
  return {
    ...base,
    IPAMConfig: cfg?.IPAMConfig ? { ...cfg.IPAMConfig } : null,
    Aliases: cfg?.Aliases?.length ? [...cfg.Aliases] : base.Aliases,
    DriverOpts: cfg?.DriverOpts ?? null,
    MacAddress: base.MacAddress || cfg?.MacAddress || '',
  };
}

export function emptyEndpoint(): EndpointSettings {
  return {
    IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', DriverOpts: null, NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '',
    IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DNSNames: null,
  };
}

/** NetworkSettings.Networks: one EndpointSettings per network the container is on (inspect and ps). */
export function networksOf(ctx: EngineContext, c: Ctr, sb = ctx.network?.sandbox(c.id)): Record<string, EndpointSettings> {
  const nm = c.host.NetworkMode;
  const networks: Record<string, EndpointSettings> = {};
  if (nm === 'host' || nm === 'none') networks[nm] = emptyEndpoint();
  const cfgs = c.rec.Networks ?? (usesSandbox(nm) ? { [nm]: {} } : {});
  for (const [name, cfg] of Object.entries(cfgs)) {
    const ep = sb?.endpoints.find((e) => e.networkName === name);
    const base = emptyEndpoint();
    if (ep) {
      Object.assign(base, {
        NetworkID: ep.networkId, EndpointID: ep.endpointId, Gateway: ep.gateway, IPAddress: ep.ipAddress, IPPrefixLen: ep.ipPrefixLen,
        IPv6Gateway: ep.ipv6Gateway, GlobalIPv6Address: ep.ipv6Address, GlobalIPv6PrefixLen: ep.ipv6PrefixLen, MacAddress: ep.macAddress,
        DNSNames: ep.dnsNames.length ? ep.dnsNames : null,
      });
    } else if (ctx.network) {
      try {
        base.NetworkID = ctx.network.network(name).Id;
      } catch {
        // removed meanwhile
      }
    }
    networks[name] = endpointView(base, cfg);
  }
  return networks;
}

/**
 * NetworkSettings of inspect. With `splice`, a large Ports map is a mark for its cached JSON
 * (portJson) instead of an object.
 */
export function networkSettingsOf(ctx: EngineContext, c: Ctr, splice?: JsonSplice): NetworkSettings {
  const nm = c.host.NetworkMode;
  const sb = ctx.network?.sandbox(c.id);
  const networks = networksOf(ctx, c, sb);
  const def = networks.bridge && sb ? networks.bridge : undefined;
  const ports: NetworkSettings['Ports'] = c.rec.State.Running ? portsFor(c, sb, splice) : {};
  return {
    Bridge: '', SandboxID: sb?.id ?? '', SandboxKey: sb?.key ?? (c.rec.State.Running && nm !== 'host' ? `/proc/${c.rec.State.Pid}/ns/net` : ''),
    Ports: ports, HairpinMode: false,
    LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0, SecondaryIPAddresses: null, SecondaryIPv6Addresses: null,
    EndpointID: def?.EndpointID ?? '', Gateway: def?.Gateway ?? '', GlobalIPv6Address: def?.GlobalIPv6Address ?? '', GlobalIPv6PrefixLen: def?.GlobalIPv6PrefixLen ?? 0,
    IPAddress: def?.IPAddress ?? '', IPPrefixLen: def?.IPPrefixLen ?? 0, IPv6Gateway: def?.IPv6Gateway ?? '', MacAddress: def?.MacAddress ?? '', Networks: networks,
  };
}

type SummaryPort = { IP?: string; PrivatePort: number; PublicPort?: number; Type: string };

function exposedOf(c: Ctr, sb: SandboxView | undefined): TransportPort[] {
  return sb?.exposed ?? wirePorts(null, c.rec.Config.ExposedPorts, false).exposed;
}

/** Inspect's NetworkSettings.Ports of a running container: every exposed port, with what is published. */
function portsMap(c: Ctr, sb: SandboxView | undefined): Record<string, ApiPortBinding[] | null> {
  return portsView(exposedOf(c, sb), sb?.ports ? expandBindings(sb.ports) : []);
}

/** ps's Port list: each published port, then each exposed one that is not. */
export function summaryList(c: Ctr, sb: SandboxView | undefined): SummaryPort[] {
  const exposed = exposedOf(c, sb);
  const published = sb?.ports ? expandBindings(sb.ports) : [];
  const summary: SummaryPort[] = [];
  const seen = new Set<string>();
  for (const p of published) {
    const type = protoName(p.Proto);
    seen.add(`${p.Port}/${type}`);
    summary.push({ IP: p.HostIP || '0.0.0.0', PrivatePort: p.Port, PublicPort: p.HostPort, Type: type });
  }
  for (const e of exposed) {
    const type = protoName(e.Proto);
    if (!seen.has(`${e.Port}/${type}`)) summary.push({ PrivatePort: e.Port, Type: type });
  }
  return summary;
}

/** A Port object of ps standing for `Count` of them: private (and public) ports counting up. */
type SummaryRun = SummaryPort & { Count?: number };

/**
 * Appends `count` Port objects starting at `p` (ports counting up) to a run list, extending its
 * last run when they continue it (same IP and type, private and public ports counting on).
 */
function appendRun(out: SummaryRun[], p: SummaryPort, count: number): void {
  const last = out[out.length - 1];
  if (last && p.Type === last.Type && p.IP === last.IP) {
    const k = last.Count ?? 1;
    const pub = last.PublicPort === undefined ? p.PublicPort === undefined : p.PublicPort === last.PublicPort + k;
    if (pub && p.PrivatePort === last.PrivatePort + k) {
      last.Count = k + count;
      return;
    }
  }
  out.push(count > 1 ? { ...p, Count: count } : { ...p });
}

/** ps's Port list with consecutive entries (same IP and type, ports counting up) as one. */
export function compressSummary(list: readonly SummaryPort[]): SummaryRun[] {
  const out: SummaryRun[] = [];
  for (const p of list) appendRun(out, p, 1);
  return out;
}

/** Whether a published run covers the exposed port `e`. */
function coveredBy(runs: readonly PortRun[], e: TransportPort): boolean {
  return runs.some((r) => r.Proto === e.Proto && e.Port >= r.Port && e.Port < r.Port + r.Count);
}

/** Published ports for `ps` (Docker's Port objects). */
export function summaryPorts(ctx: EngineContext, c: Ctr): SummaryPort[] {
  return summaryList(c, c.rec.State.Running ? ctx.network?.sandbox(c.id) : undefined);
}

/**
 * The JSON of a container's large port views, for ps and inspect of a container with a range of
 * thousands of ports (bench/network: a 10,000-port range). Only lists and maps of more than
 * LARGE_VIEW entries are cached; a container's entry holds Buffers (outside V8's heap, ~2 MB for
 * 10,000 ports), is made on first use, dropped when what it is made of changes (start, stop, a
 * new sandbox) and VIEW_TTL_MS after its last use, so berthd keeps no expanded view of an idle
 * container (issue 5: memory flat around such a container). The expanded objects are garbage
 * as soon as their JSON is made.
 */
const LARGE_VIEW = 256;
const VIEW_TTL_MS = 60_000;

interface PortJson {
  running: boolean;
  /** The sandbox's id while it runs: a new sandbox (a restart) is a new state. */
  sandbox: string | null;
  runs: unknown;
  exposedRef: unknown;
  bindingsRef: unknown;
  /** NetworkSettings.Ports (running). */
  ports?: Buffer;
  /** ps's Ports. */
  summary?: Buffer;
  /** ps's Ports as runs (berth ps). */
  summaryRuns?: SummaryRun[];
  /** HostConfig.PortBindings and Config.ExposedPorts as stored. */
  bindings?: Buffer;
  exposedPorts?: Buffer;
  timer: NodeJS.Timeout;
}

const portJsonCache = new WeakMap<Ctr, PortJson>();

function portJsonEntry(c: Ctr, sb: SandboxView | undefined): PortJson {
  const running = c.rec.State.Running;
  // No runs is the same state whatever array stands for it (the controller makes a new empty one each time).
  const runs = running && sb?.ports.length ? sb.ports : null;
  let e = portJsonCache.get(c);
  const sandbox = running ? (sb?.id ?? null) : null;
  if (e && e.running === running && e.sandbox === sandbox && e.runs === runs && e.exposedRef === c.rec.Config.ExposedPorts && e.bindingsRef === c.host.PortBindings) {
    e.timer.refresh();
    return e;
  }
  if (e) clearTimeout(e.timer);
  // The timer must not keep a removed container (and so its entry) alive: it holds a WeakRef.
  const ref = new WeakRef(c);
  const timer = setTimeout(() => {
    const live = ref.deref();
    if (live) portJsonCache.delete(live);
  }, VIEW_TTL_MS).unref();
  e = { running, sandbox, runs, exposedRef: c.rec.Config.ExposedPorts, bindingsRef: c.host.PortBindings, timer };
  portJsonCache.set(c, e);
  return e;
}

/** Removal: the container's cached port views go now, with their timer. */
export function dropPortViews(c: Ctr): void {
  const e = portJsonCache.get(c);
  if (!e) return;
  clearTimeout(e.timer);
  portJsonCache.delete(c);
}

/** Whether a stored map (PortBindings, ExposedPorts: never changed in place) has more than LARGE_VIEW keys. */
const largeMaps = new WeakMap<object, boolean>();

function largeMap(o: object | null | undefined): boolean {
  if (!o) return false;
  let large = largeMaps.get(o);
  if (large === undefined) {
    let n = 0;
    for (const k in o) if (Object.hasOwn(o, k) && ++n > LARGE_VIEW) break;
    large = n > LARGE_VIEW;
    largeMaps.set(o, large);
  }
  return large;
}

/** Whether ps's and inspect's port views of a container (`sb`: its sandbox while it runs) are large. */
function largeView(c: Ctr, sb: SandboxView | undefined): boolean {
  if (!sb) return largeMap(c.rec.Config.ExposedPorts);
  let n = sb.exposed.length;
  for (const r of sb.ports) n += r.Count;
  return n > LARGE_VIEW;
}

function jsonOf(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}

type PortJsonPart = 'ports' | 'summary' | 'bindings' | 'exposedPorts';

/**
 * One cached JSON view of a container (`sb`: its sandbox while it runs), made on first use; null
 * when it is small enough to serialise each time (no cache entry is made for such a container).
 */
function portJson(c: Ctr, sb: SandboxView | undefined, part: PortJsonPart): Buffer | null {
  const running = c.rec.State.Running;
  const view = running ? sb : undefined;
  let large: boolean;
  if (part === 'bindings') large = largeMap(c.host.PortBindings);
  else if (part === 'exposedPorts') large = largeMap(c.rec.Config.ExposedPorts);
  else large = (part === 'summary' || running) && largeView(c, view);
  if (!large) return null;
  const e = portJsonEntry(c, view);
  let json = e[part];
  if (json) return json;
  if (part === 'ports') json = portsJsonOf(c, view) ?? jsonOf(portsMap(c, view));
  else if (part === 'summary') json = summaryJsonOf(c, view) ?? jsonOf(summaryList(c, view));
  else if (part === 'bindings') json = jsonOf(c.host.PortBindings);
  else json = jsonOf(c.rec.Config.ExposedPorts);
  e[part] = json;
  // The expanded objects it was made of are garbage now.
  compactSoon();
  return json;
}

/**
 * Inspect's Ports map as JSON text made from the sandbox's runs, without the 10,000 objects of
 * portsMap (half the time of making them and JSON.stringify in berthd's V8 without its optimising
 * compiler). The same text as jsonOf(portsMap()) when every published port is exposed (always,
 * for ports Docker's way: wirePorts exposes each) and there are few runs; else undefined.
 */
export function portsJsonOf(c: Ctr, sb: SandboxView | undefined): Buffer | undefined {
  const runs = sb?.ports ?? [];
  if (runs.length > 16) return undefined;
  const ips = runs.map((r) => JSON.stringify(r.HostIP || '0.0.0.0'));
  const parts: string[] = [];
  let covered = 0;
  let prev: TransportPort | undefined;
  for (const e of exposedOf(c, sb)) {
    // A map has each key once: exposed ports in order, none twice (wirePorts makes them so).
    if (prev && (e.Proto < prev.Proto || (e.Proto === prev.Proto && e.Port <= prev.Port))) return undefined;
    prev = e;
    let list = '';
    for (let k = 0; k < runs.length; k++) {
      const r = runs[k]!;
      if (r.Proto !== e.Proto || e.Port < r.Port || e.Port >= r.Port + r.Count) continue;
      covered++;
      const hp = r.HostPort === 0 ? 0 : r.HostPort + (e.Port - r.Port);
      list += `${list ? ',' : ''}{"HostIp":${ips[k]},"HostPort":"${hp}"}`;
    }
    parts.push(`"${e.Port}/${protoName(e.Proto)}":${list ? `[${list}]` : 'null'}`);
  }
  let published = 0;
  for (const r of runs) published += r.Count;
  if (covered !== published) return undefined;
  return Buffer.from(`{${parts.join(',')}}`);
}

/** ps's Ports (one per port) as JSON text made from the sandbox's runs; as portsJsonOf. */
export function summaryJsonOf(c: Ctr, sb: SandboxView | undefined): Buffer | undefined {
  const runs = sb?.ports ?? [];
  if (runs.length > 16) return undefined;
  const parts: string[] = [];
  for (const r of runs) {
    const head = `{"IP":${JSON.stringify(r.HostIP || '0.0.0.0')},"PrivatePort":`;
    const type = `,"Type":"${protoName(r.Proto)}"}`;
    for (let i = 0; i < r.Count; i++) parts.push(`${head}${r.Port + i},"PublicPort":${r.HostPort === 0 ? 0 : r.HostPort + i}${type}`);
  }
  for (const e of exposedOf(c, sb)) {
    if (!coveredBy(runs, e)) parts.push(`{"PrivatePort":${e.Port},"Type":"${protoName(e.Proto)}"}`);
  }
  return Buffer.from(`[${parts.join(',')}]`);
}

/** ps's Ports as runs (`berthPortRuns`): consecutive ports as one entry with a Count. */
export function summaryPortRuns(ctx: EngineContext, c: Ctr): SummaryRun[] {
  const sb = c.rec.State.Running ? ctx.network?.sandbox(c.id) : undefined;
  if (!largeView(c, sb)) return summaryRunsOf(c, sb);
  const e = portJsonEntry(c, sb);
  e.summaryRuns ??= summaryRunsOf(c, sb);
  return e.summaryRuns;
}

/**
 * compressSummary(summaryList(c, sb)) made from the sandbox's port runs without expanding them
 * (a 10,000-port range is one run): each published run, then the exposed ports no run covers.
 */
export function summaryRunsOf(c: Ctr, sb: SandboxView | undefined): SummaryRun[] {
  const runs = sb?.ports ?? [];
  // Many runs (ports published one by one on ephemeral host ports): the plain way.
  if (runs.length > 16) return compressSummary(summaryList(c, sb));
  const out: SummaryRun[] = [];
  for (const r of runs) {
    const Type = protoName(r.Proto);
    const IP = r.HostIP || '0.0.0.0';
    // Ephemeral host ports (0) are not consecutive: one entry each, as compressSummary leaves them.
    if (r.HostPort !== 0 || r.Count === 1) appendRun(out, { IP, PrivatePort: r.Port, PublicPort: r.HostPort, Type }, r.Count);
    else for (let i = 0; i < r.Count; i++) appendRun(out, { IP, PrivatePort: r.Port + i, PublicPort: 0, Type }, 1);
  }
  for (const e of exposedOf(c, sb)) if (!coveredBy(runs, e)) appendRun(out, { PrivatePort: e.Port, Type: protoName(e.Proto) }, 1);
  return out;
}

/** ps's Ports for a JSON answer: a mark for the cached JSON when large, else the objects. */
export function summaryPortsFor(ctx: EngineContext, c: Ctr, splice: JsonSplice): SummaryPort[] {
  const sb = c.rec.State.Running ? ctx.network?.sandbox(c.id) : undefined;
  const cached = portJson(c, sb, 'summary');
  return cached ? (splice.mark(cached) as unknown as SummaryPort[]) : summaryList(c, sb);
}

/** inspect's NetworkSettings.Ports of a running container: a mark for the cached JSON when large, else the map. */
function portsFor(c: Ctr, sb: SandboxView | undefined, splice: JsonSplice | undefined): NetworkSettings['Ports'] {
  const cached = splice ? portJson(c, sb, 'ports') : null;
  return cached ? (splice!.mark(cached) as unknown as NetworkSettings['Ports']) : portsMap(c, sb);
}

/** HostConfig.PortBindings and Config.ExposedPorts for a JSON answer: marks when large, else as stored. */
export function storedPortsFor(ctx: EngineContext, c: Ctr, splice: JsonSplice): { PortBindings: HostConfig['PortBindings']; ExposedPorts: ContainerConfig['ExposedPorts'] } {
  const sb = c.rec.State.Running ? ctx.network?.sandbox(c.id) : undefined;
  const bindings = portJson(c, sb, 'bindings');
  const exposed = portJson(c, sb, 'exposedPorts');
  return {
    PortBindings: bindings ? (splice.mark(bindings) as unknown as HostConfig['PortBindings']) : c.host.PortBindings,
    ExposedPorts: exposed ? (splice.mark(exposed) as unknown as ContainerConfig['ExposedPorts']) : c.rec.Config.ExposedPorts,
  };
}

export function netnsDirOf(execRoot: string): string {
  return join(execRoot, 'netns');
}
