import { existsSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { BerthError, wrap } from '@berth/errors';
import type { Netlink } from '@berth/netlink';
import {
  NetLabel,
  Proto,
  compressBindings,
  expandBindings,
  type AllocateNetworkRequest,
  type CreateEndpointRequest,
  type CreateEndpointResponse,
  type CreateNetworkRequest,
  type DiscoveryNotification,
  type DriverLogger,
  type EndpointOperInfoResponse,
  type EndpointRef,
  type ExternalConnectivityRequest,
  type JoinRequest,
  type JoinResponse,
  type NetworkCapabilities,
  type NetworkDriver,
  type NetworkRef,
  type PortBinding,
} from '@berth/plugin-api';
import type { Firewall, FirewallNetwork, PortMapping, ProcFiles } from './firewall/types.js';
import { randomVethName, setupBridge, setupVeth, withSteps } from './links.js';
import { defaultBridgeName, macFromIPv4, parseNetworkOptions } from './options.js';
import { runsOf, saveState, type BridgeState, type EndpointState, type NetworkState } from './state.js';

export interface BridgeDriverConfig {
  stateDir: string;
  logger: DriverLogger;
  netlink: Netlink;
  firewall: Firewall;
  /** /proc of the namespace the driver works in (sysctls). */
  proc: ProcFiles;
  /** Daemon-level options (daemon.json): `mtu` (default MTU), `userland-proxy` ('true': no hairpin NAT). */
  options?: Record<string, string>;
  /** Called when a br_netfilter sysctl is missing (module not loaded); default: none. */
  loadBrNetfilter?: () => Promise<void>;
  /** Whether a Join's SandboxKey is a live namespace (the container end is then made inside it); default: never. */
  isNetns?: (path: string) => boolean;
}

const protoNumber: Record<PortMapping['proto'], number> = { tcp: Proto.tcp, udp: Proto.udp, sctp: Proto.sctp };

function ipOf(cidr: string): string {
  const i = cidr.indexOf('/');
  return i < 0 ? cidr : cidr.slice(0, i);
}

function invalid(msg: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', msg);
}

function checkCidr(cidr: string, family: 4 | 6, what: string): string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  const ip = m?.[1] ?? '';
  const ok = m !== null && (family === 4 ? isIPv4(ip) && Number(m[2]) <= 32 : ip.includes(':') && Number(m[2]) <= 128);
  if (!ok) throw invalid(`invalid ${what} ${JSON.stringify(cidr)}: an IPv${family} address with a prefix length`);
  return cidr;
}

function parseBindings(v: unknown): PortBinding[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(`option ${NetLabel.portMap} must be an array of port bindings`);
  return v.map((b, i) => {
    const x = b as Partial<PortBinding> | null;
    if (x === null || typeof x !== 'object' || typeof x.Proto !== 'number' || typeof x.Port !== 'number') {
      throw invalid(`option ${NetLabel.portMap}[${i}]: Proto and Port must be numbers`);
    }
    return { Proto: x.Proto, IP: x.IP ?? '', Port: x.Port, HostIP: x.HostIP ?? '', HostPort: x.HostPort ?? 0, HostPortEnd: x.HostPortEnd ?? 0 };
  });
}

/** Published mappings as the wire's PortBinding list: one entry per container port. */
export function mappingsToBindings(ms: readonly PortMapping[]): PortBinding[] {
  const out: PortBinding[] = [];
  for (const m of ms) {
    for (let i = 0; i <= m.containerPortEnd - m.containerPort; i++) {
      const hp = m.hostPort + i;
      out.push({ Proto: protoNumber[m.proto], IP: m.containerIp, Port: m.containerPort + i, HostIP: m.hostIp, HostPort: hp, HostPortEnd: hp });
    }
  }
  return out;
}

/**
 * The bridge network driver (Docker's `bridge`): a Linux bridge per network with the gateway
 * address on it, a veth pair per endpoint, and the Firewall for NAT, isolation and published
 * ports. Operations are serialised; state is persisted after each one, so a restarted driver
 * knows its networks (the engine does not re-send CreateNetwork, plugin-protocol.md §5.1).
 */
export class BridgeDriver implements NetworkDriver {
  readonly name = 'bridge';
  private queue: Promise<unknown> = Promise.resolve();
  private firewallReady = false;

  /** The networks as last fsynced (as loaded, at first). */
  private savedNetworks: string;

  constructor(
    private readonly cfg: BridgeDriverConfig,
    private readonly state: BridgeState,
  ) {
    this.savedNetworks = JSON.stringify(state.networks);
  }

  private get log(): DriverLogger {
    return this.cfg.logger;
  }

  private get hairpin(): boolean {
    // Without a userland proxy, traffic from a container to a port its own bridge publishes
    // comes back through the same port (hairpin NAT), as Docker with --userland-proxy=false.
    return this.cfg.options?.['userland-proxy'] !== 'true';
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    // The queue holds no result: the last request's answer (a 10,000-port map) must not stay reachable.
    this.queue = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  /**
   * Persists the state; fsynced only when the networks changed: endpoints are rewritten at every
   * container start and stop and describe veths that do not outlive a reboot (an fsync costs
   * 1-4 ms on ext4 here), while a lost network would be a lost user object.
   */
  private save(): void {
    const networks = JSON.stringify(this.state.networks);
    saveState(this.cfg.stateDir, this.state, networks !== this.savedNetworks);
    this.savedNetworks = networks;
  }

  private network(id: string): NetworkState {
    const n = this.state.networks[id];
    if (n === undefined) throw new BerthError('BERTH_NETWORK_NOT_FOUND', `network ${id} not found in the bridge driver`);
    return n;
  }

  private endpoint(networkId: string, endpointId: string): { n: NetworkState; ep: EndpointState } {
    const n = this.network(networkId);
    const ep = this.state.endpoints[endpointId];
    if (ep === undefined || ep.networkId !== networkId) throw new BerthError('BERTH_ENDPOINT_NOT_FOUND', `endpoint ${endpointId} not found in network ${networkId}`);
    return { n, ep };
  }

  private fw(n: NetworkState): FirewallNetwork {
    return {
      id: n.id,
      bridge: n.bridge,
      subnet: n.subnet,
      gateway: ipOf(n.gatewayCidr),
      internal: n.options.internal,
      icc: n.options.icc,
      masquerade: n.options.masquerade,
      hostIp: n.options.hostIp,
    };
  }

  /**
   * Once per driver life, before the first network's rules: the firewall's base chains and
   * ip_forward, and br_netfilter's bridge-nf-call-iptables=1 so traffic between ports of one
   * bridge passes iptables (icc=false, hairpin NAT to published ports), as Docker does.
   */
  private async initHost(): Promise<void> {
    if (this.firewallReady) return;
    await this.cfg.firewall.init();
    await this.bridgeNetfilter();
    this.firewallReady = true;
  }

  private async bridgeNetfilter(): Promise<void> {
    const path = '/proc/sys/net/bridge/bridge-nf-call-iptables';
    let cur: string | undefined;
    try {
      cur = (await this.cfg.proc.read(path)).trim();
    } catch {
      try {
        await this.cfg.loadBrNetfilter?.();
        cur = (await this.cfg.proc.read(path)).trim();
      } catch (err) {
        this.log.warn({ err }, 'br_netfilter is not available: icc=false and hairpin NAT on one bridge will not be filtered');
        return;
      }
    }
    if (cur !== '1') await this.cfg.proc.write(path, '1');
  }

  async getCapabilities(): Promise<NetworkCapabilities> {
    return { Scope: 'local', ConnectivityScope: 'local' };
  }

  createNetwork(req: CreateNetworkRequest): Promise<void> {
    return this.serial(async () => {
      const id = req.NetworkID;
      if (typeof id !== 'string' || id === '') throw invalid('create network: NetworkID is empty');
      if (this.state.networks[id] !== undefined) throw new BerthError('BERTH_NETWORK_EXISTS', `network ${id} already exists in the bridge driver`);
      const opts = parseNetworkOptions(req.Options ?? {}, this.cfg.options);
      const v4 = req.IPv4Data ?? [];
      if (v4.length !== 1) throw invalid(`create network ${id}: the bridge driver needs exactly one IPv4 pool (got ${v4.length})`);
      const pool = v4[0]!;
      if (pool.Pool === undefined || pool.Gateway === undefined) throw invalid(`create network ${id}: the IPv4 pool needs Pool and Gateway`);
      const subnet = checkCidr(pool.Pool, 4, 'IPv4 pool');
      const gatewayCidr = checkCidr(pool.Gateway, 4, 'IPv4 gateway');
      const v6 = opts.enableIPv6 ? req.IPv6Data?.[0] : undefined;
      const gatewayCidrV6 = v6?.Gateway !== undefined ? checkCidr(v6.Gateway, 6, 'IPv6 gateway') : undefined;
      if (opts.defaultBridge && opts.bridgeName === undefined) throw invalid(`create network ${id}: a default bridge needs ${NetLabel.bridgeName}`);
      const bridge = opts.bridgeName ?? defaultBridgeName(id);
      const clash = Object.values(this.state.networks).find((x) => x.bridge === bridge);
      if (clash !== undefined && clash.options.defaultBridge && opts.defaultBridge) {
        // There is one default bridge: a new default network takes it over. This is the engine
        // re-creating its predefined `bridge` network after it lost its own record of the old
        // one (a crash between our CreateNetwork and its save), which would otherwise never work again.
        await this.forget(clash, `taken over by default network ${id}`);
      } else if (clash !== undefined) {
        throw new BerthError('BERTH_NETWORK_EXISTS', `cannot create network ${id} (${bridge}): conflicts with network ${clash.id} (${clash.bridge}): networks have same bridge name`);
      }
      const log = this.log.child({ networkId: id.slice(0, 12) });
      await this.initHost().catch((err: unknown) => {
        throw wrap(err, `create network ${id}: set up the host firewall`);
      });
      const addresses = [...(opts.inhibitIpv4 ? [] : [gatewayCidr]), ...(gatewayCidrV6 !== undefined ? [gatewayCidrV6] : [])];
      await withSteps(log, `create network ${id} on bridge ${bridge}`, async (steps) => {
        const { created, added } = await setupBridge(steps, this.cfg.netlink, { name: bridge, mtu: opts.mtu, addresses });
        const n: NetworkState = {
          id,
          bridge,
          options: opts,
          subnet,
          gatewayCidr,
          ...(v6?.Pool !== undefined ? { subnetV6: v6.Pool } : {}),
          ...(gatewayCidrV6 !== undefined ? { gatewayCidrV6 } : {}),
          createdBridge: created,
          addedAddresses: added,
        };
        await steps.step(
          `firewall rules of ${bridge}`,
          () => this.cfg.firewall.addNetwork(this.fw(n)),
          () => this.cfg.firewall.removeNetwork(this.fw(n)),
        );
        await steps.step(
          'save state',
          async () => {
            this.state.networks[id] = n;
            this.save();
          },
          async () => {
            delete this.state.networks[id];
          },
        );
      });
      log.info({ bridge, subnet }, 'bridge network created');
    });
  }

  /**
   * Drops a network's record after taking out what it holds (published ports, endpoint veths,
   * firewall rules, the addresses it put on the bridge); the bridge device stays. Best effort:
   * failures are logged.
   */
  private async forget(n: NetworkState, why: string): Promise<void> {
    const log = this.log.child({ networkId: n.id.slice(0, 12) });
    log.warn({ bridge: n.bridge }, `network record dropped: ${why}`);
    const fwn = this.fw(n);
    for (const ep of Object.values(this.state.endpoints).filter((e) => e.networkId === n.id)) {
      if (ep.programmed || ep.ports.length > 0) await this.cfg.firewall.unpublish(fwn, ep.id).catch((err: unknown) => log.warn({ err }, 'unpublish failed'));
      await this.cfg.netlink.deleteLink(ep.hostIf).catch((err: unknown) => log.warn({ err }, 'veth delete failed'));
      delete this.state.endpoints[ep.id];
    }
    await this.cfg.firewall.removeNetwork(fwn).catch((err: unknown) => log.warn({ err }, 'firewall rules not removed'));
    for (const cidr of n.addedAddresses) await this.cfg.netlink.delAddress(n.bridge, cidr).catch(() => undefined);
    delete this.state.networks[n.id];
    this.save();
  }

  deleteNetwork(req: NetworkRef): Promise<void> {
    return this.serial(async () => {
      const n = this.network(req.NetworkID);
      const eps = Object.values(this.state.endpoints).filter((e) => e.networkId === n.id);
      if (eps.length > 0) {
        throw new BerthError('BERTH_NETWORK_FORBIDDEN', `network ${n.id} has active endpoints (${eps.map((e) => e.id.slice(0, 12)).join(', ')})`);
      }
      const nl = this.cfg.netlink;
      await withSteps(this.log.child({ networkId: n.id.slice(0, 12) }), `delete network ${n.id} (bridge ${n.bridge})`, async (steps) => {
        await steps.step(
          `remove firewall rules of ${n.bridge}`,
          () => this.cfg.firewall.removeNetwork(this.fw(n)),
          () => this.cfg.firewall.addNetwork(this.fw(n)),
        );
        if (n.createdBridge && !n.options.defaultBridge) {
          await steps.step(`delete bridge ${n.bridge}`, () => nl.deleteLink(n.bridge));
        } else {
          // An adopted bridge (or the default one) stays; only the addresses we put there go.
          for (const cidr of n.addedAddresses) {
            await steps.step(`delete address ${cidr} from ${n.bridge}`, () => nl.delAddress(n.bridge, cidr), () => nl.addAddress(n.bridge, cidr));
          }
        }
        delete this.state.networks[n.id];
        this.save();
      });
    });
  }

  createEndpoint(req: CreateEndpointRequest): Promise<CreateEndpointResponse> {
    return this.serial(async () => {
      const n = this.network(req.NetworkID);
      const id = req.EndpointID;
      if (typeof id !== 'string' || id === '') throw invalid('create endpoint: EndpointID is empty');
      if (this.state.endpoints[id] !== undefined) throw new BerthError('BERTH_ENDPOINT_EXISTS', `endpoint ${id} already exists`);
      const iface = req.Interface ?? { Address: '', AddressIPv6: '', MacAddress: '' };
      if (!iface.Address) throw invalid(`create endpoint ${id}: no IPv4 address was given (Interface.Address)`);
      const address = checkCidr(iface.Address, 4, 'endpoint address');
      const addressV6 = iface.AddressIPv6 ? checkCidr(iface.AddressIPv6, 6, 'endpoint IPv6 address') : '';
      let mac = iface.MacAddress ?? '';
      if (mac !== '' && !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) throw invalid(`create endpoint ${id}: invalid MAC address ${JSON.stringify(mac)}`);
      mac = mac === '' ? macFromIPv4(ipOf(address)) : mac.toLowerCase();
      const portMap = compressBindings(parseBindings(req.Options?.[NetLabel.portMap]));
      const log = this.log.child({ networkId: n.id.slice(0, 12), endpointId: id.slice(0, 12) });
      const nl = this.cfg.netlink;
      // A random name can collide with a link someone else made; try a few.
      for (let attempt = 0; ; attempt++) {
        const hostIf = randomVethName('veth');
        const containerIf = randomVethName('vethc');
        try {
          // The veth pair is made at Join, when the sandbox is known, with its container end born
          // inside it: moving a link between namespaces costs the kernel ~20 ms (bench/network).
          // Here the names are only checked free in this namespace.
          if ((await nl.link(hostIf)) !== undefined || (await nl.link(containerIf)) !== undefined) throw Object.assign(new Error('name taken'), { cause: { code: 'EEXIST' } });
          await withSteps(log, `create endpoint ${id} on network ${n.id}`, async (steps) => {
            this.state.endpoints[id] = { id, networkId: n.id, hostIf, containerIf, mac, address, addressV6, portMap, programmed: false, ports: [] };
            await steps.step(
              'save state',
              async () => this.save(),
              async () => {
                delete this.state.endpoints[id];
              },
            );
          });
          log.debug({ hostIf, containerIf, mac }, 'endpoint created');
          break;
        } catch (err) {
          const code = (err as { cause?: { code?: unknown } }).cause?.code;
          if (code !== 'EEXIST' || attempt >= 2) throw err;
        }
      }
      return iface.MacAddress ? {} : { Interface: { MacAddress: mac } };
    });
  }

  endpointOperInfo(req: EndpointRef): Promise<EndpointOperInfoResponse> {
    return this.serial(async () => {
      const { ep } = this.endpoint(req.NetworkID, req.EndpointID);
      return { Value: { [NetLabel.portMap]: mappingsToBindings(ep.ports), [NetLabel.macAddress]: ep.mac } };
    });
  }

  deleteEndpoint(req: EndpointRef): Promise<void> {
    return this.serial(async () => {
      const { n, ep } = this.endpoint(req.NetworkID, req.EndpointID);
      if (ep.programmed || ep.ports.length > 0) {
        await this.cfg.firewall.unpublish(this.fw(n), ep.id).catch((err: unknown) => {
          throw wrap(err, `delete endpoint ${ep.id}: unpublish its ports`);
        });
        ep.programmed = false;
        ep.ports = [];
      }
      try {
        // Deleting the host end removes the peer too while it is still in this namespace.
        await this.cfg.netlink.deleteLink(ep.hostIf);
        await this.cfg.netlink.deleteLink(ep.containerIf);
      } catch (err) {
        throw wrap(err, `delete endpoint ${ep.id}`);
      }
      delete this.state.endpoints[ep.id];
      this.save();
    });
  }

  join(req: JoinRequest): Promise<JoinResponse> {
    return this.serial(async () => {
      const { n, ep } = this.endpoint(req.NetworkID, req.EndpointID);
      if ((await this.cfg.netlink.link(ep.hostIf)) === undefined) {
        // The container end goes straight into the sandbox when it is a live namespace (the
        // engine then finds SrcName there and only renames it); else it waits in this one.
        const live = this.cfg.isNetns?.(req.SandboxKey) ?? false;
        const log = this.log.child({ networkId: n.id.slice(0, 12), endpointId: ep.id.slice(0, 12) });
        // A random name can collide with a link someone else made meanwhile; try a few.
        for (let attempt = 0; ; attempt++) {
          try {
            await withSteps(log, `join endpoint ${ep.id} to ${req.SandboxKey}`, async (steps) => {
              await setupVeth(steps, this.cfg.netlink, {
                hostIf: ep.hostIf, containerIf: ep.containerIf, bridge: n.bridge, mtu: n.options.mtu, mac: ep.mac, hairpin: this.hairpin,
                ...(live ? { peerNetnsPath: req.SandboxKey } : {}),
              });
            });
            break;
          } catch (err) {
            const code = (err as { cause?: { code?: unknown } }).cause?.code;
            if (code !== 'EEXIST' || attempt >= 2) throw err;
            ep.hostIf = randomVethName('veth');
            ep.containerIf = randomVethName('vethc');
            this.save();
          }
        }
      }
      // Informational only (nothing is undone from it), so it rides along with the next save
      // instead of costing an fsync on every container start.
      ep.sandboxKey = req.SandboxKey;
      const res: JoinResponse = { InterfaceName: { SrcName: ep.containerIf, DstPrefix: n.options.ifacePrefix } };
      if (n.options.internal) {
        res.DisableGatewayService = true;
      } else {
        // inhibit_ipv4 only keeps the address off the bridge (someone else routes for it);
        // the containers' gateway is the same.
        res.Gateway = ipOf(n.gatewayCidr);
        if (n.gatewayCidrV6 !== undefined && ep.addressV6 !== '') res.GatewayIPv6 = ipOf(n.gatewayCidrV6);
      }
      return res;
    });
  }

  leave(req: EndpointRef): Promise<void> {
    return this.serial(async () => {
      const { ep } = this.endpoint(req.NetworkID, req.EndpointID);
      delete ep.sandboxKey;
    });
  }

  programExternalConnectivity(req: ExternalConnectivityRequest): Promise<void> {
    return this.serial(async () => {
      const { n, ep } = this.endpoint(req.NetworkID, req.EndpointID);
      if (n.options.internal) return; // an internal network publishes nothing
      const given = req.Options?.[NetLabel.portMap];
      const bindings = given === undefined ? expandBindings(runsOf(ep.portMap)) : parseBindings(given);
      const containerIp = ipOf(ep.address);
      const fwn = this.fw(n);
      if (ep.programmed) {
        await this.cfg.firewall.unpublish(fwn, ep.id);
        ep.programmed = false;
        ep.ports = [];
        this.save();
      }
      // No ports (most containers): nothing to install, nothing to persist.
      if (bindings.length === 0) return;
      const ports = await this.cfg.firewall.publish(fwn, ep.id, containerIp, bindings);
      ep.programmed = true;
      ep.ports = ports;
      try {
        this.save();
      } catch (err) {
        await this.cfg.firewall.unpublish(fwn, ep.id).catch(() => undefined);
        ep.programmed = false;
        ep.ports = [];
        throw wrap(err, `program external connectivity of endpoint ${ep.id}`);
      }
    });
  }

  revokeExternalConnectivity(req: EndpointRef): Promise<void> {
    return this.serial(async () => {
      const { n, ep } = this.endpoint(req.NetworkID, req.EndpointID);
      if (!ep.programmed && ep.ports.length === 0) return;
      await this.cfg.firewall.unpublish(this.fw(n), ep.id);
      ep.programmed = false;
      ep.ports = [];
      this.save();
    });
  }

  /** Closes the driver's netlink socket (daemon shutdown, tests). */
  close(): void {
    this.cfg.netlink.close();
  }

  async allocateNetwork(req: AllocateNetworkRequest): Promise<{ Options: Record<string, string> }> {
    return { Options: req.Options ?? {} };
  }

  async freeNetwork(_req: NetworkRef): Promise<void> {}

  async discoverNew(_req: DiscoveryNotification): Promise<void> {}

  async discoverDelete(_req: DiscoveryNotification): Promise<void> {}

  /**
   * At start: every persisted network's bridge exists again with its addresses and is up
   * (after a reboot they are gone), then the firewall keeps exactly these networks' and
   * endpoints' rules. Endpoints whose host veth vanished stay recorded until the engine
   * deletes them (DeleteEndpoint of an absent link succeeds).
   */
  async restore(): Promise<void> {
    const nets = Object.values(this.state.networks);
    // Nothing of ours and no firewall record either: a fresh host, leave iptables alone.
    if (nets.length === 0 && Object.keys(this.state.endpoints).length === 0 && !existsSync(join(this.cfg.stateDir, 'firewall.json'))) return;
    await this.initHost();
    for (const n of nets) {
      const log = this.log.child({ networkId: n.id.slice(0, 12) });
      try {
        await withSteps(log, `restore network ${n.id} (bridge ${n.bridge})`, async (steps) => {
          const addresses = [...(n.options.inhibitIpv4 ? [] : [n.gatewayCidr]), ...(n.gatewayCidrV6 !== undefined ? [n.gatewayCidrV6] : [])];
          const r = await setupBridge(steps, this.cfg.netlink, { name: n.bridge, mtu: n.options.mtu, addresses });
          if (r.created) n.createdBridge = true;
          for (const a of r.added) if (!n.addedAddresses.includes(a)) n.addedAddresses.push(a);
        });
      } catch (err) {
        log.error({ err }, 'bridge network could not be restored');
      }
    }
    for (const e of Object.values(this.state.endpoints)) {
      if (this.state.networks[e.networkId] !== undefined) continue;
      // An endpoint whose network is gone cannot be reached by any call: drop it.
      this.log.warn({ endpointId: e.id.slice(0, 12), networkId: e.networkId.slice(0, 12) }, 'endpoint of an unknown network dropped');
      await this.cfg.netlink.deleteLink(e.hostIf).catch(() => undefined);
      delete this.state.endpoints[e.id];
    }
    const eps = Object.values(this.state.endpoints);
    await this.cfg.firewall.reconcile(
      nets.map((n) => this.fw(n)),
      eps.map((e) => ({ networkId: e.networkId, endpointId: e.id, containerIp: ipOf(e.address), mappings: e.ports })),
    );
    for (const e of eps) {
      const host = await this.cfg.netlink.link(e.hostIf).catch(() => undefined);
      if (host !== undefined && this.hairpin) await this.cfg.netlink.setHairpin(e.hostIf, true).catch(() => undefined);
    }
    this.save();
  }
}
