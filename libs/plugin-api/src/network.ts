/**
 * The network-driver contract: one method per endpoint of Docker's NetworkDriver plugin
 * protocol (`/NetworkDriver.CreateEndpoint` <-> `createEndpoint(req)`), with request and
 * response objects exactly as on the wire (specs/plugin-protocol.md §4 and §5). A driver
 * reports failure by throwing; the plugin server turns that into `{"Err": ...}`.
 */
import type { DriverLogger, DriverSkip } from './graph.js';

/** §4.1: one IPAM pool as the engine hands it to the driver. Gateway is a CIDR (ip/poolLen). */
export interface IPAMData {
  AddressSpace: string;
  Pool?: string;
  Gateway?: string;
  AuxAddresses?: Record<string, string>;
}

/** IANA protocol numbers used in port bindings. */
export const Proto = { icmp: 1, tcp: 6, udp: 17, sctp: 132 } as const;

/** §4.2: one published port (value of `com.docker.network.portmap`). HostPort 0 = pick one. */
export interface PortBinding {
  Proto: number;
  IP: string;
  Port: number;
  HostIP: string;
  HostPort: number;
  HostPortEnd: number;
}

/**
 * A run of published ports: `Count` consecutive container ports from `Port`, each on its own
 * host port counting up from `HostPort` (or all 0: ephemeral). A 10,000-port range is one run,
 * so records and memory stay small; the wire (one PortBinding per port) is made on demand.
 */
export interface PortRun extends PortBinding {
  Count: number;
}

function extends_(run: PortRun, b: PortBinding): boolean {
  if (b.Proto !== run.Proto || b.IP !== run.IP || b.HostIP !== run.HostIP || b.Port !== run.Port + run.Count) return false;
  if (run.HostPort === 0) return run.HostPortEnd === 0 && b.HostPort === 0 && b.HostPortEnd === 0;
  return run.HostPortEnd === run.HostPort && b.HostPort === run.HostPort + run.Count && b.HostPortEnd === b.HostPort;
}

export function compressBindings(bindings: readonly PortBinding[]): PortRun[] {
  const out: PortRun[] = [];
  for (const b of bindings) {
    const last = out[out.length - 1];
    if (last && extends_(last, b)) last.Count++;
    else out.push({ Proto: b.Proto, IP: b.IP, Port: b.Port, HostIP: b.HostIP, HostPort: b.HostPort, HostPortEnd: b.HostPortEnd, Count: 1 });
  }
  return out;
}

export function expandBindings(runs: readonly PortRun[]): PortBinding[] {
  const out: PortBinding[] = [];
  for (const r of runs) {
    if (r.Count === 1) {
      out.push({ Proto: r.Proto, IP: r.IP, Port: r.Port, HostIP: r.HostIP, HostPort: r.HostPort, HostPortEnd: r.HostPortEnd });
      continue;
    }
    for (let i = 0; i < r.Count; i++) {
      const hp = r.HostPort === 0 ? 0 : r.HostPort + i;
      out.push({ Proto: r.Proto, IP: r.IP, Port: r.Port + i, HostIP: r.HostIP, HostPort: hp, HostPortEnd: hp });
    }
  }
  return out;
}

/** §4.3: one exposed port (value of `com.docker.network.endpoint.exposedports`). */
export interface TransportPort {
  Proto: number;
  Port: number;
}

/** Well-known option keys (§5.3, §5.4, §10). */
export const NetLabel = {
  generic: 'com.docker.network.generic',
  enableIPv6: 'com.docker.network.enable_ipv6',
  internal: 'com.docker.network.internal',
  portMap: 'com.docker.network.portmap',
  exposedPorts: 'com.docker.network.endpoint.exposedports',
  macAddress: 'com.docker.network.endpoint.macaddress',
  dnsServers: 'com.docker.network.endpoint.dnsservers',
  mtu: 'com.docker.network.driver.mtu',
  gateway: 'com.docker.network.gateway',
  containerIfacePrefix: 'com.docker.network.container_iface_prefix',
  hostIPv4: 'com.docker.network.host_ipv4',
  bridgeName: 'com.docker.network.bridge.name',
  bridgeEnableIcc: 'com.docker.network.bridge.enable_icc',
  bridgeEnableIpMasquerade: 'com.docker.network.bridge.enable_ip_masquerade',
  bridgeHostBindingIpv4: 'com.docker.network.bridge.host_binding_ipv4',
  bridgeDefaultBridge: 'com.docker.network.bridge.default_bridge',
  bridgeInhibitIpv4: 'com.docker.network.bridge.inhibit_ipv4',
} as const;

export interface NetworkCapabilities {
  Scope: 'local' | 'global';
  ConnectivityScope?: 'local' | 'global';
}

export interface CreateNetworkRequest {
  NetworkID: string;
  /** `com.docker.network.enable_ipv6`, `com.docker.network.generic` (the -o options), `com.docker.network.internal`. */
  Options: Record<string, unknown>;
  IPv4Data: IPAMData[];
  IPv6Data: IPAMData[];
}

export interface NetworkRef {
  NetworkID: string;
}

export interface EndpointRef {
  NetworkID: string;
  EndpointID: string;
}

/** Addresses are CIDRs with the pool's prefix length; `''` = not set. */
export interface EndpointInterface {
  Address: string;
  AddressIPv6: string;
  MacAddress: string;
}

export interface CreateEndpointRequest extends EndpointRef {
  Interface: EndpointInterface;
  Options: Record<string, unknown>;
}

/** The driver may fill only the fields that were empty in the request. */
export interface CreateEndpointResponse {
  Interface?: Partial<EndpointInterface> | null;
}

export interface EndpointOperInfoResponse {
  Value: Record<string, unknown>;
}

export interface JoinRequest extends EndpointRef {
  /** Path of the sandbox's network namespace (a bind mount). */
  SandboxKey: string;
  Options: Record<string, unknown>;
}

/** RouteType 0: via NextHop; 1: connected (no NextHop). */
export interface StaticRoute {
  Destination: string;
  RouteType: 0 | 1;
  NextHop?: string;
}

export interface JoinResponse {
  /** SrcName: a host interface the driver made, moved into the sandbox and named DstPrefix + index. */
  InterfaceName?: { SrcName: string; DstPrefix: string } | null;
  Gateway?: string;
  GatewayIPv6?: string;
  StaticRoutes?: StaticRoute[] | null;
  DisableGatewayService?: boolean;
}

export interface ExternalConnectivityRequest extends EndpointRef {
  Options: Record<string, unknown>;
}

export interface AllocateNetworkRequest {
  NetworkID: string;
  Options: Record<string, string>;
  IPv4Data: IPAMData[];
  IPv6Data: IPAMData[];
}

export interface DiscoveryNotification {
  DiscoveryType: number;
  DiscoveryData: unknown;
}

export interface NetworkDriver {
  /** The wire name (`bridge`, `host`, `null`). */
  readonly name: string;
  getCapabilities(): Promise<NetworkCapabilities>;
  createNetwork(req: CreateNetworkRequest): Promise<void>;
  deleteNetwork(req: NetworkRef): Promise<void>;
  createEndpoint(req: CreateEndpointRequest): Promise<CreateEndpointResponse>;
  endpointOperInfo(req: EndpointRef): Promise<EndpointOperInfoResponse>;
  deleteEndpoint(req: EndpointRef): Promise<void>;
  join(req: JoinRequest): Promise<JoinResponse>;
  leave(req: EndpointRef): Promise<void>;
  /** Port publishing: Options carries the portmap and exposed ports. */
  programExternalConnectivity(req: ExternalConnectivityRequest): Promise<void>;
  revokeExternalConnectivity(req: EndpointRef): Promise<void>;
  /** Swarm only; local drivers answer with the options unchanged. */
  allocateNetwork(req: AllocateNetworkRequest): Promise<{ Options: Record<string, string> }>;
  freeNetwork(req: NetworkRef): Promise<void>;
  discoverNew(req: DiscoveryNotification): Promise<void>;
  discoverDelete(req: DiscoveryNotification): Promise<void>;
}

export interface NetworkDriverDeps {
  /** A directory the driver owns for its persistent state (e.g. /var/lib/berth/network/bridge). */
  stateDir: string;
  logger: DriverLogger;
  /** Daemon-level options for this driver (daemon.json: bip, mtu, icc, ip-forward, userland-proxy...). */
  options?: Record<string, string>;
}

export interface NetworkDriverDescriptor {
  kind: 'network';
  name: string;
  create(deps: NetworkDriverDeps): Promise<NetworkDriver | DriverSkip>;
}

/** Wire method name <-> interface method. */
export const networkDriverMethods = {
  'NetworkDriver.GetCapabilities': 'getCapabilities',
  'NetworkDriver.CreateNetwork': 'createNetwork',
  'NetworkDriver.DeleteNetwork': 'deleteNetwork',
  'NetworkDriver.CreateEndpoint': 'createEndpoint',
  'NetworkDriver.EndpointOperInfo': 'endpointOperInfo',
  'NetworkDriver.DeleteEndpoint': 'deleteEndpoint',
  'NetworkDriver.Join': 'join',
  'NetworkDriver.Leave': 'leave',
  'NetworkDriver.ProgramExternalConnectivity': 'programExternalConnectivity',
  'NetworkDriver.RevokeExternalConnectivity': 'revokeExternalConnectivity',
  'NetworkDriver.AllocateNetwork': 'allocateNetwork',
  'NetworkDriver.FreeNetwork': 'freeNetwork',
  'NetworkDriver.DiscoverNew': 'discoverNew',
  'NetworkDriver.DiscoverDelete': 'discoverDelete',
} as const satisfies Record<string, keyof NetworkDriver>;

/** Methods whose 404 from a remote plugin means "not implemented, fine" (§3). */
export const optionalNetworkMethods: readonly string[] = ['NetworkDriver.ProgramExternalConnectivity', 'NetworkDriver.RevokeExternalConnectivity'];
