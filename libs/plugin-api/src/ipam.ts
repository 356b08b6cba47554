/**
 * The IPAM-driver contract: one method per endpoint of Docker's IpamDriver plugin protocol,
 * requests and responses as on the wire (specs/plugin-protocol.md §6). A driver reports
 * failure by throwing; the plugin server answers `{"Error": ...}` (IPAM's field, not `Err`).
 */
import type { DriverLogger, DriverSkip } from './graph.js';

export interface IpamCapabilities {
  RequiresMACAddress: boolean;
  RequiresRequestReplay: boolean;
}

export interface AddressSpaces {
  LocalDefaultAddressSpace: string;
  GlobalDefaultAddressSpace: string;
}

export interface RequestPoolRequest {
  AddressSpace: string;
  /** CIDR from --subnet, or '' for "pick one". */
  Pool: string;
  /** CIDR from --ip-range, or ''. */
  SubPool: string;
  Options: Record<string, string> | null;
  V6: boolean;
}

export interface RequestPoolResponse {
  PoolID: string;
  Pool: string;
  /** May hold `com.docker.network.gateway` = "<ip>/<len>". */
  Data: Record<string, string>;
}

export interface PoolRef {
  PoolID: string;
}

export interface RequestAddressRequest {
  PoolID: string;
  /** Preferred plain IP, or '' for any. */
  Address: string;
  /** `{"RequestAddressType": "com.docker.network.gateway"}` for the gateway; MAC when required. */
  Options: Record<string, string> | null;
}

export interface RequestAddressResponse {
  /** CIDR, e.g. "172.18.0.5/16". */
  Address: string;
  Data: Record<string, string>;
}

export interface ReleaseAddressRequest {
  PoolID: string;
  /** Plain IP. */
  Address: string;
}

export const RequestAddressType = 'RequestAddressType';
export const IpamSerialOption = 'com.docker.network.ipam.serial';

export interface IpamDriver {
  /** The wire name (`default`). */
  readonly name: string;
  getCapabilities(): Promise<IpamCapabilities>;
  getDefaultAddressSpaces(): Promise<AddressSpaces>;
  requestPool(req: RequestPoolRequest): Promise<RequestPoolResponse>;
  releasePool(req: PoolRef): Promise<void>;
  requestAddress(req: RequestAddressRequest): Promise<RequestAddressResponse>;
  releaseAddress(req: ReleaseAddressRequest): Promise<void>;
}

export interface IpamDriverDeps {
  stateDir: string;
  logger: DriverLogger;
  options?: Record<string, string>;
}

export interface IpamDriverDescriptor {
  kind: 'ipam';
  name: string;
  create(deps: IpamDriverDeps): Promise<IpamDriver | DriverSkip>;
}

export const ipamDriverMethods = {
  'IpamDriver.GetCapabilities': 'getCapabilities',
  'IpamDriver.GetDefaultAddressSpaces': 'getDefaultAddressSpaces',
  'IpamDriver.RequestPool': 'requestPool',
  'IpamDriver.ReleasePool': 'releasePool',
  'IpamDriver.RequestAddress': 'requestAddress',
  'IpamDriver.ReleaseAddress': 'releaseAddress',
} as const satisfies Record<string, keyof IpamDriver>;

/** A failure of GetCapabilities (404 included) means default capabilities (§6.1). */
export const optionalIpamMethods: readonly string[] = ['IpamDriver.GetCapabilities'];
