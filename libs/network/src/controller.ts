/**
 * The CNM controller: it owns Networks (made by a NetworkDriver with pools from an IpamDriver),
 * Sandboxes (a network namespace bind-mounted per container) and Endpoints (one sandbox on one
 * network). Drivers only make their objects in the host namespace; the controller moves the
 * interface a driver hands over into the sandbox, names it, gives it its addresses and routes.
 *
 * Every mutating operation is serialised by one lock and written to the store step by step,
 * so a teardown (also after a crash of the daemon) undoes exactly what was done.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { BerthError, isNotFound, wrap } from '@berth/errors';
import type { Logger } from '@berth/log';
import type { NetworkContainer, NetworkCreateRequest, NetworkResource } from '@berth/api';
import {
  NetLabel,
  RequestAddressType,
  type IpamDriver,
  type IPAMData,
  type NetworkDriver,
  type PortBinding,
  type TransportPort,
} from '@berth/plugin-api';
import { createNetns, deleteNetns, inNetns, netnsExists } from '@berth/native';
import { createIptables, type Iptables } from '@berth/iptables';
import { openNetlink, openNetlinkIn, type Netlink } from '@berth/netlink';
import { addressOf, bitsOfCidr, cidrOf, contains, ipOfCidr, overlaps, prefixOf, type Prefix } from './cidr.js';
import { startEmbeddedDns, type DnsRecords, type EmbeddedDns } from './dns/index.js';
import type { KernelNetworkView } from '@berth/api';
import { readKernelNetwork } from './kernel-view.js';
import { compressBindings, expandBindings, type PortRun } from './ports.js';
import { NetworkStore } from './store.js';
import type { EndpointRecord, NetworkRecord, PoolLease, SandboxRecord } from './types.js';

export interface NetworkControllerOptions {
  /** Where records live, e.g. /var/lib/berth/network. */
  stateDir: string;
  /** Where sandboxes are bind-mounted, e.g. /run/berth/netns. */
  netnsDir: string;
  logger: Logger;
  drivers: ReadonlyMap<string, NetworkDriver>;
  ipams: ReadonlyMap<string, IpamDriver>;
  /** Options of the default `bridge` network (bridge name, MTU, subnet). */
  defaultBridge?: { name?: string; subnet?: string; gateway?: string; mtu?: number; icc?: boolean };
  /** Seams for tests. */
  netlink?: () => Netlink;
  netlinkIn?: (nsPath: string) => Netlink;
  /** For reading the rules back (kernelView); default: the iptables binary. */
  iptables?: Iptables;
  netns?: { create(path: string): void; remove(path: string): void; exists(path: string): boolean };
  startDns?: typeof startEmbeddedDns;
  /** How long after a namespace is dropped its endpoints are deleted (default 100 ms; tests 0). */
  reapDelayMs?: number;
  /** Drivers that are not built in: v1 plugins by name (discovery). */
  plugins?: { network(name: string): Promise<NetworkDriver>; ipam(name: string): Promise<IpamDriver> };
}

/** What a container asks of one network. */
export interface AttachRequest {
  network: string;
  aliases?: string[] | null;
  ipv4?: string;
  ipv6?: string;
  mac?: string;
  driverOpts?: Record<string, string> | null;
}

export interface SandboxRequest {
  containerId: string;
  containerName: string;
  networks: AttachRequest[];
  portBindings: PortBinding[];
  exposed: TransportPort[];
  /** Resolvers the embedded DNS forwards to (--dns, else the host's). */
  dnsUpstream?: string[];
}

/** An endpoint as the engine shows it (inspect's EndpointSettings, minus the request fields). */
export interface EndpointView {
  networkId: string;
  networkName: string;
  endpointId: string;
  ipAddress: string;
  ipPrefixLen: number;
  gateway: string;
  ipv6Address: string;
  ipv6PrefixLen: number;
  ipv6Gateway: string;
  macAddress: string;
  aliases: string[];
  dnsNames: string[];
}

export interface SandboxView {
  id: string;
  key: string;
  endpoints: EndpointView[];
  /** Published ports of the gateway endpoint (HostPort filled), as runs (expandBindings gives one per port). */
  ports: PortRun[];
  exposed: TransportPort[];
}

const PREDEFINED: Record<string, string> = { bridge: 'bridge', host: 'host', none: 'null' };
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function rfc3339(d = new Date()): string {
  return d.toISOString().replace('Z', '000000Z').replace(/\.(\d{9})\d*Z$/, '.$1Z');
}

function newId(): string {
  return randomBytes(32).toString('hex');
}

function boolOpt(v: string | undefined, dflt: boolean): boolean {
  if (v === undefined || v === '') return dflt;
  return !['0', 'false', 'no', 'off'].includes(v.toLowerCase());
}

export class NetworkController {
  private readonly log: Logger;
  private readonly store: NetworkStore;
  private readonly networks = new Map<string, NetworkRecord>();
  private readonly sandboxes = new Map<string, SandboxRecord>();
  private tail: Promise<unknown> = Promise.resolve();
  /** Endpoint deletions that run after a sandbox's namespace is gone (see teardown). */
  private reaper: Promise<void> = Promise.resolve();
  private reapDelayMs: number;
  /** Dropped sandboxes a crash left half deleted: finished by reconcile. */
  private pendingReap: SandboxRecord[] = [];
  /** Dropped sandboxes whose endpoints are not deleted yet, by sandbox id. */
  private readonly reaping = new Map<string, SandboxRecord>();
  private hostNl: Netlink | undefined;
  private readonly netns: NonNullable<NetworkControllerOptions['netns']>;
  private readonly drivers: Map<string, NetworkDriver>;
  private readonly ipams: Map<string, IpamDriver>;
  /** Embedded DNS servers by container id (sandboxes on user-defined networks). */
  private readonly dns = new Map<string, EmbeddedDns>();

  private constructor(private readonly opts: NetworkControllerOptions) {
    this.log = opts.logger;
    this.store = new NetworkStore(opts.stateDir, opts.logger);
    this.netns = opts.netns ?? { create: createNetns, remove: deleteNetns, exists: netnsExists };
    this.reapDelayMs = opts.reapDelayMs ?? 100;
    this.drivers = new Map(opts.drivers);
    this.ipams = new Map(opts.ipams);
  }

  /** Loads the records, replays IPAM where the driver asks for it, makes the predefined networks. */
  static async open(opts: NetworkControllerOptions): Promise<NetworkController> {
    const c = new NetworkController(opts);
    await c.locked(() => c.load());
    return c;
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    // The tail holds no result: a sandbox of a 10,000-port container must not stay reachable.
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private nl(): Netlink {
    return (this.hostNl ??= (this.opts.netlink ?? openNetlink)());
  }

  private nlIn(key: string): Netlink {
    return this.opts.netlinkIn ? this.opts.netlinkIn(key) : openNetlinkIn(key, inNetns);
  }

  /** A built-in driver, else a plugin found by discovery (activated once, then kept). */
  private driver(name: string): Promise<NetworkDriver> {
    return this.resolve(this.drivers, name, (n) => this.opts.plugins?.network(n));
  }

  private ipam(name: string): Promise<IpamDriver> {
    return this.resolve(this.ipams, name || 'default', (n) => this.opts.plugins?.ipam(n));
  }

  private async resolve<T>(known: Map<string, T>, name: string, lookup: (name: string) => Promise<T> | undefined): Promise<T> {
    const d = known.get(name);
    if (d) return d;
    const found = await lookup(name)?.catch((err: unknown) => {
      this.log.debug({ err, plugin: name }, 'plugin lookup failed');
      return undefined;
    });
    if (!found) throw new BerthError('BERTH_DRIVER_NOT_FOUND', `plugin "${name}" not found`);
    known.set(name, found);
    return found;
  }

  /** For teardown: the driver if it can be had, else undefined (a plugin that went away). */
  private async driverIfAny(name: string): Promise<NetworkDriver | undefined> {
    return this.driver(name).catch(() => undefined);
  }
  private async ipamIfAny(name: string): Promise<IpamDriver | undefined> {
    return this.ipam(name).catch(() => undefined);
  }

  private async load(): Promise<void> {
    for (const n of this.store.networks()) this.networks.set(n.Id, n);
    for (const s of this.store.sandboxes()) this.sandboxes.set(s.containerId, s);
    this.pendingReap = this.store.reaping();
    // An IPAM driver that keeps its allocations in memory gets them back (RequiresRequestReplay).
    for (const n of this.networks.values()) {
      if (!n.pools.length) continue;
      const ipam = await this.ipamIfAny(n.IPAM.Driver);
      if (!ipam) continue;
      const caps = await ipam.getCapabilities().catch(() => ({ RequiresRequestReplay: false, RequiresMACAddress: false }));
      if (!caps.RequiresRequestReplay) continue;
      for (const p of n.pools) {
        try {
          const sp = await ipam.getDefaultAddressSpaces();
          const r = await ipam.requestPool({ AddressSpace: sp.LocalDefaultAddressSpace, Pool: p.pool, SubPool: p.subPool, Options: n.IPAM.Options, V6: p.v6 });
          p.poolId = r.PoolID;
          if (p.gateway) await ipam.requestAddress({ PoolID: p.poolId, Address: ipOfCidr(p.gateway), Options: { [RequestAddressType]: NetLabel.gateway } });
          for (const a of Object.values(p.aux)) await ipam.requestAddress({ PoolID: p.poolId, Address: ipOfCidr(a), Options: null }).catch(() => undefined);
        } catch (err) {
          this.log.warn({ err, networkId: n.Id }, 'IPAM replay of a network pool failed');
        }
      }
      this.store.saveNetwork(n);
    }
    for (const s of this.sandboxes.values()) {
      for (const ep of s.endpoints) {
        const n = this.networks.get(ep.networkId);
        if (!n) continue;
        const ipam = await this.ipamIfAny(n.IPAM.Driver);
        const caps = await ipam?.getCapabilities().catch(() => undefined);
        if (!ipam || !caps?.RequiresRequestReplay) continue;
        for (const [addr, pool] of [[ep.addressV4, ep.poolV4], [ep.addressV6, ep.poolV6]] as const) {
          const lease = n.pools.find((p) => p.pool === pool);
          if (addr && lease) await ipam.requestAddress({ PoolID: lease.poolId, Address: ipOfCidr(addr), Options: null }).catch(() => undefined);
        }
      }
    }
    await this.ensurePredefined();
  }

  private async ensurePredefined(): Promise<void> {
    for (const [name, driver] of Object.entries(PREDEFINED)) {
      if (this.byName(name)) continue;
      if (!this.drivers.has(driver)) {
        this.log.warn({ driver }, `network driver ${driver} is not available; network ${name} not created`);
        continue;
      }
      const options: Record<string, string> = {};
      const config: { Subnet?: string; Gateway?: string }[] = [];
      if (name === 'bridge') {
        const b = this.opts.defaultBridge ?? {};
        Object.assign(options, {
          [NetLabel.bridgeDefaultBridge]: 'true',
          [NetLabel.bridgeEnableIcc]: String(b.icc ?? true),
          [NetLabel.bridgeEnableIpMasquerade]: 'true',
          [NetLabel.bridgeHostBindingIpv4]: '0.0.0.0',
          [NetLabel.bridgeName]: b.name ?? 'berth0',
          [NetLabel.mtu]: String(b.mtu ?? 1500),
        });
        if (b.subnet) config.push({ Subnet: b.subnet, ...(b.gateway ? { Gateway: b.gateway } : {}) });
        else {
          // As dockerd does with docker0: a bridge that is already there (another data root, an
          // earlier install) keeps its address as the network's gateway and subnet, instead of
          // the IPAM picking a new pool (its route is "taken") and the bridge getting one more.
          const have = (await this.nl().addresses(b.name ?? 'berth0').catch(() => [])).find((a) => a.family === 4);
          if (have) config.push({ Subnet: prefixOf(have.cidr).text, Gateway: ipOfCidr(have.cidr) });
        }
      }
      await this.create({ Name: name, Driver: driver, Options: options, IPAM: { Driver: 'default', Config: config } }, true);
    }
  }

  // ---- networks ----

  private byName(name: string): NetworkRecord | undefined {
    for (const n of this.networks.values()) if (n.Name === name) return n;
    return undefined;
  }

  /** By full id, name, or unique id prefix (Docker's order). */
  network(ref: string): NetworkRecord {
    const exact = this.networks.get(ref) ?? this.byName(ref);
    if (exact) return exact;
    const matches = ref ? [...this.networks.values()].filter((n) => n.Id.startsWith(ref)) : [];
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) throw new BerthError('BERTH_INVALID_ARGUMENT', `network ${ref} is ambiguous (${matches.length} matches found based on ID prefix)`);
    throw new BerthError('BERTH_NETWORK_NOT_FOUND', `network ${ref} not found`);
  }

  list(): NetworkResource[] {
    return [...this.networks.values()].sort((a, b) => a.Created.localeCompare(b.Created)).map((n) => this.view(n, false));
  }

  inspect(ref: string): NetworkResource {
    return this.view(this.network(ref), true);
  }

  private view(n: NetworkRecord, withContainers: boolean): NetworkResource {
    const containers: Record<string, NetworkContainer> = {};
    if (withContainers) {
      for (const s of this.sandboxes.values()) {
        for (const ep of s.endpoints) {
          if (ep.networkId !== n.Id) continue;
          containers[s.containerId] = { Name: s.containerName, EndpointID: ep.id, MacAddress: ep.mac, IPv4Address: ep.addressV4, IPv6Address: ep.addressV6 };
        }
      }
    }
    return {
      Name: n.Name, Id: n.Id, Created: n.Created, Scope: n.Scope, Driver: n.Driver, EnableIPv6: n.EnableIPv6,
      IPAM: n.IPAM, Internal: n.Internal, Attachable: n.Attachable, Ingress: n.Ingress, ConfigFrom: { Network: '' }, ConfigOnly: n.ConfigOnly,
      Containers: containers, Options: n.Options, Labels: n.Labels,
    };
  }

  /** Containers with an endpoint on the network (for `network rm` and prune). */
  endpointsOn(networkId: string): number {
    let count = 0;
    for (const s of this.sandboxes.values()) count += s.endpoints.filter((e) => e.networkId === networkId).length;
    return count;
  }

  createNetwork(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    return this.locked(() => this.create(req, false));
  }

  private async create(req: NetworkCreateRequest, predefined: boolean): Promise<{ Id: string; Warning: string }> {
    const name = req.Name ?? '';
    if (!name) throw new BerthError('BERTH_INVALID_ARGUMENT', 'network name is required');
    if (!NAME.test(name)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid network name "${name}": must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
    // dockerd's words, trailing space included.
    if (!predefined && name in PREDEFINED) throw new BerthError('BERTH_NETWORK_FORBIDDEN', `operation is not permitted on predefined ${name} network `);
    if (this.byName(name)) throw new BerthError('BERTH_NETWORK_EXISTS', `network with name ${name} already exists`);
    const driverName = req.Driver || 'bridge';
    if (!predefined && (driverName === 'host' || driverName === 'null')) {
      throw new BerthError('BERTH_NETWORK_FORBIDDEN', `only one instance of "${driverName}" network is allowed`);
    }
    if (req.ConfigOnly || req.ConfigFrom?.Network) throw new BerthError('BERTH_NOT_IMPLEMENTED', 'config-only networks are not supported');
    const driver = await this.driver(driverName);
    const ipamName = req.IPAM?.Driver || 'default';
    const usesIpam = driverName !== 'host' && driverName !== 'null';
    const id = newId();
    const rec: NetworkRecord = {
      Name: name, Id: id, Created: rfc3339(), Scope: 'local', Driver: driverName, EnableIPv6: req.EnableIPv6 === true,
      IPAM: { Driver: ipamName, Options: req.IPAM?.Options ?? null, Config: (req.IPAM?.Config ?? []).map((c) => ({ ...c })) },
      Internal: req.Internal === true, Attachable: req.Attachable === true, Ingress: req.Ingress === true, ConfigOnly: false,
      Options: { ...(req.Options ?? {}) }, Labels: { ...(req.Labels ?? {}) }, pools: [], predefined,
    };
    const log = this.log.child({ networkId: id });
    const undo: (() => Promise<unknown>)[] = [];
    let configs: NetworkRecord['IPAM']['Config'] = [];
    try {
      if (usesIpam) configs = await this.allocatePools(rec, undo);
      const data = (v6: boolean): IPAMData[] =>
        rec.pools.filter((p) => p.v6 === v6).map((p) => ({
          AddressSpace: 'LocalDefault', Pool: p.pool, ...(p.gateway ? { Gateway: p.gateway } : {}),
          ...(Object.keys(p.aux).length ? { AuxAddresses: p.aux } : {}),
        }));
      const options: Record<string, unknown> = { [NetLabel.enableIPv6]: rec.EnableIPv6, [NetLabel.generic]: rec.Options };
      if (rec.Internal) options[NetLabel.internal] = true;
      await driver.createNetwork({ NetworkID: id, Options: options, IPv4Data: data(false), IPv6Data: data(true) }).catch((err) => {
        throw wrap(err, `create network ${name} with driver ${driverName}`);
      });
    } catch (err) {
      for (const u of undo.reverse()) await u().catch((e) => log.warn({ err: e }, 'network create rollback step failed'));
      throw err;
    }
    // Docker's inspect shows the chosen subnet and gateway even when the user gave none.
    rec.IPAM.Config = rec.pools.map((p, i) => ({
      ...(configs[i] ?? {}), Subnet: p.pool, ...(p.subPool ? { IPRange: p.subPool } : {}), ...(p.gateway ? { Gateway: ipOfCidr(p.gateway) } : {}),
    }));
    this.networks.set(id, rec);
    this.store.saveNetwork(rec);
    log.info({ name, driver: driverName }, 'network created');
    return { Id: id, Warning: '' };
  }

  /** Host routes other than the default route: an automatic pool must not overlap them. */
  private async hostPrefixes(): Promise<Prefix[]> {
    const out: Prefix[] = [];
    for (const fam of [4, 6] as const) {
      const routes = await this.nl().routes(fam).catch(() => []);
      for (const r of routes) {
        if (r.dst === 'default' || r.dst.endsWith('/0')) continue;
        try {
          out.push(prefixOf(r.dst));
        } catch {
          // a route the parser does not know: not an obstacle
        }
      }
    }
    return out;
  }

  /** Leases one pool per IPAM config entry (v4 first, then v6); answers the entries in lease order. */
  private async allocatePools(rec: NetworkRecord, undo: (() => Promise<unknown>)[]): Promise<NetworkRecord['IPAM']['Config']> {
    const ipam = await this.ipam(rec.IPAM.Driver);
    const spaces = await ipam.getDefaultAddressSpaces();
    const configs = rec.IPAM.Config;
    const v4 = configs.filter((c) => !c.Subnet || prefixOf(c.Subnet, 'subnet').family === 4);
    const v6 = configs.filter((c) => c.Subnet && prefixOf(c.Subnet, 'subnet').family === 6);
    if (!v4.length) v4.push({});
    if (rec.EnableIPv6 && !v6.length) v6.push({});
    if (!rec.EnableIPv6 && v6.length) throw new BerthError('BERTH_INVALID_ARGUMENT', 'IPv6 subnets require --ipv6 (EnableIPv6)');
    const taken = [...this.networks.values()].flatMap((n) => n.pools.map((p) => prefixOf(p.pool)));
    const host = await this.hostPrefixes();
    for (const [family, list] of [[4, v4], [6, v6]] as const) {
      for (const c of list) {
        const subnet = c.Subnet ? cidrOf(c.Subnet, 'subnet') : undefined;
        if (subnet && subnet.family !== family) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid subnet ${c.Subnet}`);
        if (subnet && subnet.text !== c.Subnet) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid subnet ${c.Subnet}: it should be ${subnet.text}`);
        const range = c.IPRange ? cidrOf(c.IPRange, 'ip-range') : undefined;
        if (range && (!subnet || !contains(subnet, range))) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ip-range ${c.IPRange}: it must be inside the subnet ${c.Subnet ?? '(none given)'}`);
        const gw = c.Gateway ? addressOf(c.Gateway, 'gateway') : undefined;
        if (gw && (!subnet || !contains(subnet, gw))) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid gateway ${c.Gateway}: it is not in the subnet ${c.Subnet ?? '(none given)'}`);
        if (subnet) {
          const clash = taken.find((t) => overlaps(t, subnet));
          if (clash) throw new BerthError('BERTH_NETWORK_FORBIDDEN', `invalid pool request: Pool overlaps with other one on this address space (${subnet.text} overlaps ${clash.text})`);
          const route = host.find((h) => overlaps(h, subnet));
          if (route && !rec.predefined) throw new BerthError('BERTH_NETWORK_FORBIDDEN', `invalid pool request: ${subnet.text} overlaps the host route ${route.text}`);
        }
        // Without --subnet the IPAM picks; one that lands on a host route is kept leased and asked
        // again (Docker's loop), and those leases are released once a clean pool is found.
        const rejected: string[] = [];
        let pool: { PoolID: string; Pool: string; Data: Record<string, string> };
        try {
          for (;;) {
            pool = await ipam.requestPool({
              AddressSpace: spaces.LocalDefaultAddressSpace, Pool: subnet?.text ?? '', SubPool: range?.text ?? '', Options: rec.IPAM.Options, V6: family === 6,
            });
            if (subnet) break;
            const got = prefixOf(pool.Pool);
            if (!host.some((h) => overlaps(h, got)) && !taken.some((t) => overlaps(t, got))) break;
            rejected.push(pool.PoolID);
            if (rejected.length > 64) throw new BerthError('BERTH_NETWORK_FORBIDDEN', 'could not find an available, non-overlapping IPv' + family + ' address pool among the defaults to assign to the network');
          }
        } finally {
          for (const r of rejected) await ipam.releasePool({ PoolID: r }).catch(() => undefined);
        }
        const lease: PoolLease = { poolId: pool.PoolID, pool: pool.Pool, subPool: range?.text ?? '', gateway: '', aux: {}, v6: family === 6, userSubnet: !!subnet };
        undo.push(() => ipam.releasePool({ PoolID: lease.poolId }));
        taken.push(prefixOf(pool.Pool));
        const dataGw = pool.Data?.[NetLabel.gateway];
        if (dataGw && !gw) {
          lease.gateway = dataGw;
        } else {
          const a = await ipam.requestAddress({ PoolID: lease.poolId, Address: gw ? c.Gateway! : '', Options: { [RequestAddressType]: NetLabel.gateway } }).catch((err) => {
            throw wrap(err, `allocate the gateway of ${pool.Pool}`);
          });
          lease.gateway = a.Address;
          undo.push(() => ipam.releaseAddress({ PoolID: lease.poolId, Address: ipOfCidr(a.Address) }));
        }
        for (const [k, ip] of Object.entries(c.AuxiliaryAddresses ?? {})) {
          const a = addressOf(ip, 'auxiliary address');
          if (!contains(prefixOf(pool.Pool), a)) continue;
          const got = await ipam.requestAddress({ PoolID: lease.poolId, Address: ip, Options: null });
          lease.aux[k] = got.Address;
          undo.push(() => ipam.releaseAddress({ PoolID: lease.poolId, Address: ip }));
        }
        rec.pools.push(lease);
      }
    }
    return [...v4, ...v6];
  }

  removeNetwork(ref: string): Promise<void> {
    return this.locked(async () => {
      const n = this.network(ref);
      if (n.predefined) throw new BerthError('BERTH_NETWORK_FORBIDDEN', `${n.Name} is a pre-defined network and cannot be removed`);
      // Endpoints of removed containers still being deleted in the background: finish them now.
      for (const s of [...this.reaping.values()]) if (s.endpoints.some((e) => e.networkId === n.Id)) await this.reap(s);
      if (this.endpointsOn(n.Id)) throw new BerthError('BERTH_NETWORK_FORBIDDEN', `error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
      await (await this.driver(n.Driver)).deleteNetwork({ NetworkID: n.Id }).catch((err) => {
        throw wrap(err, `remove network ${n.Name}`);
      });
      await this.releasePools(n);
      this.networks.delete(n.Id);
      this.store.deleteNetwork(n.Id);
      this.log.info({ networkId: n.Id, name: n.Name }, 'network removed');
    });
  }

  private async releasePools(n: NetworkRecord): Promise<void> {
    const ipam = await this.ipamIfAny(n.IPAM.Driver);
    if (!ipam) return;
    for (const p of n.pools) {
      if (p.gateway) await ipam.releaseAddress({ PoolID: p.poolId, Address: ipOfCidr(p.gateway) }).catch(() => undefined);
      for (const a of Object.values(p.aux)) await ipam.releaseAddress({ PoolID: p.poolId, Address: ipOfCidr(a) }).catch(() => undefined);
      await ipam.releasePool({ PoolID: p.poolId }).catch((err) => this.log.warn({ err, networkId: n.Id }, 'release of a pool failed'));
    }
  }

  // ---- sandboxes and endpoints ----

  sandbox(containerId: string): SandboxView | undefined {
    const s = this.sandboxes.get(containerId);
    return s && this.sandboxView(s);
  }

  private sandboxView(s: SandboxRecord): SandboxView {
    const gwEp = s.endpoints.find((e) => e.gatewayEndpoint);
    return {
      id: s.id, key: s.key, exposed: s.exposed, ports: gwEp?.ports ?? [],
      endpoints: s.endpoints.map((e) => {
        const n = this.networks.get(e.networkId);
        return {
          networkId: e.networkId, networkName: n?.Name ?? '', endpointId: e.id,
          ipAddress: ipOfCidr(e.addressV4), ipPrefixLen: bitsOfCidr(e.addressV4), gateway: e.gateway,
          ipv6Address: ipOfCidr(e.addressV6), ipv6PrefixLen: bitsOfCidr(e.addressV6), ipv6Gateway: e.gatewayV6,
          macAddress: e.mac, aliases: e.aliases,
          dnsNames: n && !n.predefined ? [s.containerName, s.containerId.slice(0, 12), ...e.aliases] : [],
        };
      }),
    };
  }

  /** The container's network as the kernel has it now (kernel-view.ts); undefined without a sandbox. */
  async kernelView(containerId: string): Promise<KernelNetworkView | undefined> {
    const s = this.sandboxes.get(containerId);
    if (!s) return undefined;
    const inside = this.nlIn(s.key);
    try {
      this.iptables ??= this.opts.iptables ?? createIptables({ logger: this.log });
      return await readKernelNetwork(s.key, inside, this.nl(), this.iptables);
    } finally {
      inside.close();
    }
  }

  private iptables: Iptables | undefined;

  /** All sandboxes (for DNS lookups and recovery). */
  allSandboxes(): SandboxView[] {
    return [...this.sandboxes.values()].map((s) => this.sandboxView(s));
  }

  /**
   * Makes the container's network namespace and attaches it to each network, in order; the
   * first non-internal network with a gateway carries the default route and the published
   * ports. Any failure undoes everything made so far.
   */
  async createSandbox(req: SandboxRequest): Promise<SandboxView> {
    return (await this.openSandbox(req)).ready;
  }

  /**
   * createSandbox in two steps, so that a caller can start the container's init (which only
   * needs the namespace to exist) while the endpoints are attached: answers as soon as the
   * network namespace exists at `key`; `ready` settles when the attachment is done (or failed
   * and was undone). The controller stays locked until then. The caller must handle `ready`.
   */
  openSandbox(req: SandboxRequest): Promise<{ key: string; ready: Promise<SandboxView> }> {
    let opened!: (key: string) => void;
    const namespace = new Promise<string>((resolve) => (opened = resolve));
    const ready = this.attachSandbox(req, opened);
    return Promise.race([namespace.then((key) => ({ key, ready })), ready.then((sb) => ({ key: sb.key, ready }))]);
  }

  private attachSandbox(req: SandboxRequest, opened: (key: string) => void): Promise<SandboxView> {
    return this.locked(async () => {
      if (this.sandboxes.has(req.containerId)) await this.teardown(this.sandboxes.get(req.containerId)!);
      const id = newId();
      const s: SandboxRecord = {
        id, containerId: req.containerId, containerName: req.containerName.replace(/^\//, ''),
        key: join(this.opts.netnsDir, req.containerId.slice(0, 12)), endpoints: [], nextIf: 0,
        portBindings: compressBindings(req.portBindings), exposed: req.exposed,
      };
      const log = this.log.child({ sandboxId: id.slice(0, 12), containerId: req.containerId });
      this.sandboxes.set(req.containerId, s);
      this.store.saveSandbox(s);
      try {
        this.netns.create(s.key);
        opened(s.key);
        const inside = this.nlIn(s.key);
        try {
          await inside.setLink('lo', { up: true });
        } finally {
          inside.close();
        }
        for (const a of req.networks) await this.join(s, a, log);
        s.dnsUpstream = req.dnsUpstream ?? [];
        await this.ensureDns(s);
      } catch (err) {
        await this.teardown(s).catch((e) => log.warn({ err: e }, 'sandbox rollback failed'));
        throw err;
      }
      log.debug({ key: s.key }, 'sandbox created');
      return this.sandboxView(s);
    });
  }

  /** Attaches a running container's sandbox to one more network. */
  connect(containerId: string, a: AttachRequest): Promise<EndpointView> {
    return this.locked(async () => {
      const s = this.sandboxes.get(containerId);
      if (!s) throw new BerthError('BERTH_CONTAINER_STATE', `container ${containerId} has no network sandbox (not running)`);
      const ep = await this.join(s, a, this.log.child({ containerId }));
      await this.ensureDns(s);
      return this.sandboxView(s).endpoints.find((e) => e.endpointId === ep.id)!;
    });
  }

  disconnect(containerId: string, networkRef: string): Promise<void> {
    return this.locked(async () => {
      const s = this.sandboxes.get(containerId);
      const n = this.network(networkRef);
      const ep = s?.endpoints.find((e) => e.networkId === n.Id);
      if (!s || !ep) throw new BerthError('BERTH_NETWORK_FORBIDDEN', `container ${containerId} is not connected to the network ${n.Name}`);
      const wasGateway = ep.gatewayEndpoint;
      await this.leave(s, ep);
      if (wasGateway) await this.electGateway(s);
    });
  }

  /** Removes the sandbox and every endpoint of the container (container stop or removal). */
  removeSandbox(containerId: string): Promise<void> {
    return this.locked(async () => {
      const s = this.sandboxes.get(containerId);
      if (s) await this.teardown(s);
    });
  }

  /** Startup recovery: sandboxes of containers that are not running any more are torn down. */
  reconcile(running: (containerId: string) => boolean): Promise<void> {
    return this.locked(async () => {
      for (const s of this.pendingReap.splice(0)) {
        try {
          this.netns.remove(s.key);
        } catch {
          // gone already
        }
        await this.reap(s);
      }
      for (const s of [...this.sandboxes.values()]) {
        if (running(s.containerId) && this.netns.exists(s.key)) {
          await this.ensureDns(s).catch((err) => this.log.warn({ err, containerId: s.containerId }, 'restarting the embedded DNS failed'));
          continue;
        }
        this.log.info({ containerId: s.containerId }, 'removing the network sandbox of a container that is not running');
        await this.teardown(s);
      }
    });
  }

  private async join(s: SandboxRecord, a: AttachRequest, log: Logger): Promise<EndpointRecord> {
    const n = this.network(a.network);
    if (n.Driver === 'host' || n.Driver === 'null') {
      throw new BerthError('BERTH_NETWORK_FORBIDDEN', `container cannot be connected to network ${n.Name} (driver ${n.Driver}) together with other networks`);
    }
    if (s.endpoints.some((e) => e.networkId === n.Id)) throw new BerthError('BERTH_ENDPOINT_EXISTS', `endpoint with name ${s.containerName} already exists in network ${n.Name}`);
    const driver = await this.driver(n.Driver);
    const ipam = await this.ipam(n.IPAM.Driver);
    const aliases = [...new Set(a.aliases ?? [])];
    const ep: EndpointRecord = {
      id: newId(), networkId: n.Id, ifName: '', srcName: '', addressV4: '', addressV6: '', poolV4: '', poolV6: '',
      mac: a.mac ?? '', gateway: '', gatewayV6: '', aliases, gatewayEndpoint: false, ports: [], stage: 'addressed',
    };
    const epLog = log.child({ endpointId: ep.id.slice(0, 12), networkId: n.Id.slice(0, 12) });
    s.endpoints.push(ep);
    try {
      for (const [fam, want] of [[4, a.ipv4], [6, a.ipv6]] as const) {
        const pools = n.pools.filter((p) => p.v6 === (fam === 6));
        if (!pools.length) {
          if (want) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid IPv${fam} address ${want}: network ${n.Name} has no IPv${fam} subnet`);
          continue;
        }
        let lease = pools[0]!;
        if (want) {
          const ip = addressOf(want, `IPv${fam} address`);
          if (!pools.some((p) => p.userSubnet)) throw new BerthError('BERTH_INVALID_ARGUMENT', 'user specified IP address is supported only when connecting to networks with user configured subnets');
          const inPool = pools.find((p) => contains(prefixOf(p.subPool || p.pool), ip));
          if (!inPool) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid address ${want}: it does not belong to any of this network's subnets`);
          lease = inPool;
        }
        const got = await ipam.requestAddress({ PoolID: lease.poolId, Address: want ?? '', Options: null });
        if (fam === 4) {
          ep.addressV4 = got.Address;
          ep.poolV4 = lease.pool;
        } else {
          ep.addressV6 = got.Address;
          ep.poolV6 = lease.pool;
        }
        this.store.saveSandbox(s);
      }
      const first = s.endpoints.length === 1;
      const epOptions: Record<string, unknown> = { ...(a.driverOpts ?? {}) };
      if (first && !n.Internal) {
        epOptions[NetLabel.portMap] = expandBindings(s.portBindings);
        epOptions[NetLabel.exposedPorts] = s.exposed;
      }
      const created = await driver.createEndpoint({
        NetworkID: n.Id, EndpointID: ep.id, Interface: { Address: ep.addressV4, AddressIPv6: ep.addressV6, MacAddress: ep.mac }, Options: epOptions,
      });
      ep.stage = 'created';
      if (created.Interface?.MacAddress && !ep.mac) ep.mac = created.Interface.MacAddress;
      this.store.saveSandbox(s);
      const sbOptions = { [NetLabel.portMap]: expandBindings(s.portBindings), [NetLabel.exposedPorts]: s.exposed };
      const joined = await driver.join({ NetworkID: n.Id, EndpointID: ep.id, SandboxKey: s.key, Options: sbOptions });
      ep.stage = 'joined';
      ep.gateway = joined.Gateway ?? '';
      ep.gatewayV6 = joined.GatewayIPv6 ?? '';
      this.store.saveSandbox(s);
      if (joined.InterfaceName?.SrcName) {
        ep.srcName = joined.InterfaceName.SrcName;
        ep.ifName = `${joined.InterfaceName.DstPrefix || 'eth'}${s.nextIf++}`;
        this.store.saveSandbox(s);
        const inside = this.nlIn(s.key);
        try {
          // A driver may make the interface inside the sandbox already (bridge does: a move costs
          // the kernel ~20 ms); else it is moved in from the host namespace, as the protocol says.
          if ((await inside.link(ep.srcName)) === undefined) await this.nl().setLink(ep.srcName, { netnsPath: s.key });
          await inside.setLink(ep.srcName, { name: ep.ifName });
          if (ep.addressV4) await inside.addAddress(ep.ifName, ep.addressV4);
          if (ep.addressV6) await inside.addAddress(ep.ifName, ep.addressV6);
          await inside.setLink(ep.ifName, { up: true });
          for (const r of joined.StaticRoutes ?? []) {
            await inside.addRoute({ dst: r.Destination, ...(r.RouteType === 0 && r.NextHop ? { gateway: r.NextHop } : {}), dev: ep.ifName });
          }
          const link = await inside.link(ep.ifName);
          if (link?.mac && !ep.mac) ep.mac = link.mac;
        } finally {
          inside.close();
        }
      }
      if (!s.endpoints.some((e) => e.gatewayEndpoint) && !n.Internal && (ep.gateway || ep.gatewayV6)) await this.makeGateway(s, ep, n);
      this.store.saveSandbox(s);
      epLog.debug({ address: ep.addressV4, ifName: ep.ifName }, 'endpoint joined');
      return ep;
    } catch (err) {
      await this.leave(s, ep).catch((e) => epLog.warn({ err: e }, 'endpoint rollback failed'));
      throw wrap(err, `attach container ${s.containerName} to network ${n.Name}`);
    }
  }

  /** Default route through this endpoint, and the published ports through its driver. */
  private async makeGateway(s: SandboxRecord, ep: EndpointRecord, n: NetworkRecord): Promise<void> {
    ep.gatewayEndpoint = true;
    this.store.saveSandbox(s);
    if (ep.ifName) {
      const inside = this.nlIn(s.key);
      try {
        if (ep.gateway) await inside.addRoute({ dst: 'default', gateway: ep.gateway, dev: ep.ifName });
        if (ep.gatewayV6) await inside.addRoute({ dst: '::/0', gateway: ep.gatewayV6, dev: ep.ifName });
      } finally {
        inside.close();
      }
    }
    const driver = await this.driver(n.Driver);
    const ip = ipOfCidr(ep.addressV4);
    const bindings = expandBindings(s.portBindings);
    for (const b of bindings) b.IP = ip;
    await driver.programExternalConnectivity({ NetworkID: n.Id, EndpointID: ep.id, Options: { [NetLabel.portMap]: bindings, [NetLabel.exposedPorts]: s.exposed } });
    ep.stage = 'programmed';
    const info = await driver.endpointOperInfo({ NetworkID: n.Id, EndpointID: ep.id }).catch(() => ({ Value: {} as Record<string, unknown> }));
    const pm = info.Value[NetLabel.portMap];
    ep.ports = Array.isArray(pm) ? compressBindings(pm as PortBinding[]) : [];
    this.store.saveSandbox(s);
  }

  /** After the gateway endpoint left: the next eligible endpoint takes over. */
  private async electGateway(s: SandboxRecord): Promise<void> {
    for (const ep of s.endpoints) {
      const n = this.networks.get(ep.networkId);
      if (n && !n.Internal && (ep.gateway || ep.gatewayV6)) {
        await this.makeGateway(s, ep, n);
        return;
      }
    }
  }

  /** A sandbox with an endpoint on a user-defined network answers names at 127.0.0.11 (Docker's embedded DNS). */
  private async ensureDns(s: SandboxRecord): Promise<void> {
    if (this.dns.has(s.containerId)) return;
    const userNet = s.endpoints.some((e) => {
      const n = this.networks.get(e.networkId);
      return n && !n.predefined;
    });
    if (!userNet) return;
    const dns = await (this.opts.startDns ?? startEmbeddedDns)({
      netnsPath: s.key, records: this.records(s.containerId), upstream: s.dnsUpstream ?? [], logger: this.log.child({ component: 'dns', containerId: s.containerId }),
    });
    this.dns.set(s.containerId, dns);
  }

  /**
   * What a container's resolver knows: the containers on the user-defined networks it is on, by
   * name, network alias and short id, with their addresses on those networks.
   */
  private records(containerId: string): DnsRecords {
    const shared = (): Set<string> => {
      const self = this.sandboxes.get(containerId);
      return new Set((self?.endpoints ?? []).map((e) => e.networkId).filter((id) => this.networks.get(id)?.predefined === false));
    };
    return {
      lookup: (name) => {
        const nets = shared();
        const a: string[] = [];
        const aaaa: string[] = [];
        for (const t of this.sandboxes.values()) {
          const names = [t.containerName.toLowerCase(), t.containerId.slice(0, 12)];
          for (const ep of t.endpoints) {
            if (!nets.has(ep.networkId)) continue;
            // `name`, `alias`, `id12`, and each qualified with the network's name (`db.app`).
            const suffix = `.${(this.networks.get(ep.networkId)?.Name ?? '').toLowerCase()}`;
            const bare = name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
            if (!names.includes(bare) && !ep.aliases.some((x) => x.toLowerCase() === bare)) continue;
            if (ep.addressV4) a.push(ipOfCidr(ep.addressV4));
            if (ep.addressV6) aaaa.push(ipOfCidr(ep.addressV6));
          }
        }
        return a.length || aaaa.length ? { a: [...new Set(a)], aaaa: [...new Set(aaaa)] } : undefined;
      },
      reverse: (ip) => {
        const nets = shared();
        for (const t of this.sandboxes.values()) {
          for (const ep of t.endpoints) {
            if (!nets.has(ep.networkId)) continue;
            if (ipOfCidr(ep.addressV4) === ip || ipOfCidr(ep.addressV6) === ip) return `${t.containerName}.${this.networks.get(ep.networkId)?.Name ?? ''}`;
          }
        }
        return undefined;
      },
    };
  }

  /** The first half of an endpoint's teardown: its published ports and its join. */
  private async revokeAndLeave(s: SandboxRecord, ep: EndpointRecord): Promise<void> {
    const n = this.networks.get(ep.networkId);
    const driver = n ? await this.driverIfAny(n.Driver) : undefined;
    const ref = { NetworkID: ep.networkId, EndpointID: ep.id };
    const warn = (what: string) => (err: unknown): void => {
      if (!isNotFound(err)) this.log.warn({ err, endpointId: ep.id.slice(0, 12), containerId: s.containerId }, `endpoint teardown: ${what} failed`);
    };
    if (driver && ep.stage === 'programmed') await driver.revokeExternalConnectivity(ref).catch(warn('revoke external connectivity'));
    if (driver && (ep.stage === 'joined' || ep.stage === 'programmed')) await driver.leave(ref).catch(warn('leave'));
    if (ep.stage === 'programmed' || ep.stage === 'joined') ep.stage = 'created';
  }

  /** Undoes one endpoint from whatever stage it reached; every step is attempted. */
  private async leave(s: SandboxRecord, ep: EndpointRecord, opts: { reaping?: boolean } = {}): Promise<void> {
    const n = this.networks.get(ep.networkId);
    const driver = n ? await this.driverIfAny(n.Driver) : undefined;
    const log = this.log.child({ endpointId: ep.id.slice(0, 12), containerId: s.containerId });
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        if (!isNotFound(err)) log.warn({ err }, `endpoint teardown: ${what} failed`);
      }
    };
    const ref = { NetworkID: ep.networkId, EndpointID: ep.id };
    if (driver && ep.stage === 'programmed') await step('revoke external connectivity', () => driver.revokeExternalConnectivity(ref));
    if (driver && (ep.stage === 'joined' || ep.stage === 'programmed')) await step('leave', () => driver.leave(ref));
    if (ep.ifName && !opts.reaping && this.netns.exists(s.key)) {
      await step('delete the interface in the sandbox', async () => {
        const inside = this.nlIn(s.key);
        try {
          await inside.deleteLink(ep.ifName);
          if (ep.srcName) await inside.deleteLink(ep.srcName);
        } finally {
          inside.close();
        }
      });
    }
    if (driver && ep.stage !== 'addressed') await step('delete endpoint', () => driver.deleteEndpoint(ref));
    const ipam = n ? await this.ipamIfAny(n.IPAM.Driver) : undefined;
    for (const [addr, pool] of [[ep.addressV4, ep.poolV4], [ep.addressV6, ep.poolV6]] as const) {
      const lease = n?.pools.find((p) => p.pool === pool);
      if (ipam && addr && lease) await step('release address', () => ipam.releaseAddress({ PoolID: lease.poolId, Address: ipOfCidr(addr) }));
    }
    s.endpoints = s.endpoints.filter((e) => e !== ep);
    if (opts.reaping) this.store.saveReaping(s);
    else this.store.saveSandbox(s);
  }

  /**
   * A whole sandbox goes: its ports and joins are revoked and its namespace dropped at once;
   * the kernel then destroys the namespace with the container ends of the veths (and so their
   * host ends) in the background, in one batch. Deleting each veth ourselves costs ~20 ms of
   * kernel time per endpoint on the stop path (bench/network), so the endpoints are deleted in
   * the driver and their addresses released shortly after, off that path. The sandbox is kept
   * in `reaping/` until then, so a crash meanwhile is finished at the next start.
   */
  private async teardown(s: SandboxRecord): Promise<void> {
    const dns = this.dns.get(s.containerId);
    this.dns.delete(s.containerId);
    await dns?.close().catch(() => undefined);
    for (const ep of [...s.endpoints].reverse()) await this.revokeAndLeave(s, ep);
    try {
      this.netns.remove(s.key);
    } catch (err) {
      this.log.warn({ err, containerId: s.containerId }, 'removing the sandbox network namespace failed');
    }
    this.sandboxes.delete(s.containerId);
    if (s.endpoints.length) this.store.saveReaping(s);
    this.store.deleteSandbox(s.containerId);
    if (s.endpoints.length) {
      this.reaping.set(s.id, s);
      this.scheduleReap(s);
    }
  }

  private scheduleReap(s: SandboxRecord): void {
    const delay = this.reapDelayMs;
    this.reaper = this.reaper.then(async () => {
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      await this.locked(() => this.reap(s)).catch((err: unknown) => this.log.warn({ err, containerId: s.containerId }, 'deleting the endpoints of a removed sandbox failed'));
    });
  }

  /** Deletes what is left of a dropped sandbox's endpoints: the driver's endpoint, the addresses. */
  private async reap(s: SandboxRecord): Promise<void> {
    for (const ep of [...s.endpoints].reverse()) await this.leave(s, ep, { reaping: true });
    this.store.deleteReaping(s.id);
    this.reaping.delete(s.id);
  }

  /** Background endpoint deletions finished (tests, shutdown). */
  settled(): Promise<void> {
    return this.reaper;
  }

  /** Daemon shutdown: closes the host netlink socket and the DNS servers (sandboxes stay for live restore). */
  close(): void {
    for (const d of this.dns.values()) void d.close().catch(() => undefined);
    this.dns.clear();
    this.hostNl?.close();
    this.hostNl = undefined;
  }

  /** Booleans of a bridge network's options (for views). */
  static option(n: NetworkRecord, key: string, dflt: boolean): boolean {
    return boolOpt(n.Options[key], dflt);
  }
}
