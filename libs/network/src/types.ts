/** What the controller persists: networks, and one sandbox per container with its endpoints. */
import type { IPAMConfigEntry } from '@berth/api';
import type { TransportPort } from '@berth/plugin-api';
import type { PortRun } from './ports.js';

/** One IPAM pool a network holds (v4 or v6), with the addresses reserved at network creation. */
export interface PoolLease {
  poolId: string;
  /** CIDR as the IPAM answered. */
  pool: string;
  subPool: string;
  /** Gateway as a CIDR with the pool's length, '' when none. */
  gateway: string;
  aux: Record<string, string>;
  v6: boolean;
  /** The user gave the subnet (static --ip is allowed only then). */
  userSubnet: boolean;
}

export interface NetworkRecord {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local';
  Driver: string;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IPAMConfigEntry[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigOnly: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
  pools: PoolLease[];
  /** bridge, host and none: made by the daemon, cannot be removed. */
  predefined: boolean;
}

export interface EndpointRecord {
  id: string;
  networkId: string;
  /** The interface name inside the sandbox (eth0); '' until joined. */
  ifName: string;
  /** The host-side name the driver handed over (SrcName), '' when the driver gave none. */
  srcName: string;
  /** CIDRs with the pool length, '' when none. */
  addressV4: string;
  addressV6: string;
  poolV4: string;
  poolV6: string;
  mac: string;
  gateway: string;
  gatewayV6: string;
  aliases: string[];
  /** This endpoint carries the sandbox's default route and its published ports. */
  gatewayEndpoint: boolean;
  /** Published ports as the driver reported them (HostPort filled), as runs. */
  ports: PortRun[];
  /** How far setup got: teardown after a crash undoes exactly that much. */
  stage: 'addressed' | 'created' | 'joined' | 'programmed';
}

export interface SandboxRecord {
  /** 64 hex; the netns is named after its first 12 characters. */
  id: string;
  containerId: string;
  containerName: string;
  /** The network namespace (a bind mount). */
  key: string;
  endpoints: EndpointRecord[];
  /** Next index for DstPrefix names (eth0, eth1...). */
  nextIf: number;
  /** What the container asked to publish, as runs. */
  portBindings: PortRun[];
  exposed: TransportPort[];
  dnsUpstream?: string[];
}
