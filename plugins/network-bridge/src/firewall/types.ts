import type { Iptables } from '@berth/iptables';
import type { DriverLogger, PortBinding } from '@berth/plugin-api';

/** What the firewall needs to know about one bridge network. */
export interface FirewallNetwork {
  id: string;
  bridge: string;
  /** IPv4 CIDR. */
  subnet: string;
  gateway: string;
  internal: boolean;
  icc: boolean;
  masquerade: boolean;
  /** Default host binding when a PortBinding's HostIP is '' (`host_binding_ipv4`), '0.0.0.0' normally. */
  hostIp: string;
}

/**
 * What got published: Docker's PortBinding plus the container IP. A run of consecutive ports
 * is one mapping (hostPort..hostPortEnd -> containerPort..containerPortEnd, same size), and one
 * rule set; a single port has hostPortEnd === hostPort.
 */
export interface PortMapping {
  proto: 'tcp' | 'udp' | 'sctp';
  hostIp: string;
  hostPort: number;
  hostPortEnd: number;
  containerIp: string;
  containerPort: number;
  containerPortEnd: number;
}

export interface Firewall {
  /** Idempotent: base chains and jumps, ip_forward; survives other programs' rules (dockerd). */
  init(): Promise<void>;
  /** NAT, FORWARD, isolation rules of one bridge. */
  addNetwork(n: FirewallNetwork): Promise<void>;
  removeNetwork(n: FirewallNetwork): Promise<void>;
  /**
   * bindings: the wire PortBinding[] of ProgramExternalConnectivity; HostPort 0 = allocate;
   * ranges allowed. Throws BerthError kind Conflict "... port is already allocated" and
   * installs nothing on conflict.
   */
  publish(n: FirewallNetwork, endpointId: string, containerIp: string, bindings: PortBinding[]): Promise<PortMapping[]>;
  unpublish(n: FirewallNetwork, endpointId: string): Promise<void>;
  /** Ports an endpoint holds (for EndpointOperInfo / restore). */
  published(endpointId: string): PortMapping[];
  /** At start: keep only the given networks/endpoints' rules, remove the rest (crash recovery). */
  reconcile(
    networks: FirewallNetwork[],
    endpoints: { networkId: string; endpointId: string; containerIp: string; mappings: PortMapping[] }[],
  ): Promise<void>;
}

/**
 * Files under /proc the firewall reads and writes (sysctls, /proc/net sockets). The default
 * is the daemon's own namespace; tests pass `procFiles(netnsPath)` to act inside theirs.
 */
export interface ProcFiles {
  read(path: string): Promise<string>;
  write(path: string, data: string): Promise<void>;
}

export interface FirewallDeps {
  iptables: Iptables;
  logger: DriverLogger;
  /** Where allocations and installed rules are persisted (firewall.json). */
  stateDir: string;
  /** Use a userland proxy for loopback and bridge-local traffic instead of route_localnet + hairpin NAT. */
  userlandProxy?: boolean;
  /** Chain prefix, default 'BERTH' (at most 10 characters, so BERTH-ISOLATION-STAGE-1 fits). */
  chainPrefix?: string;
  /** /proc access; default: this process's namespace. */
  proc?: ProcFiles;
  /** The userland proxy starter (tests replace it); default src/proxy.ts. */
  startProxy?: (m: PortMapping, logger: DriverLogger) => Promise<{ close(): Promise<void> }>;
}
