/** The network objects of the Engine API (`/networks`), field names as Docker's. */
import type { StringMap } from './types.js';

export interface IPAMConfigEntry {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

export interface NetworkIPAM {
  Driver: string;
  Options: StringMap | null;
  Config: IPAMConfigEntry[];
}

/** `POST /networks/create`. */
export interface NetworkCreateRequest {
  Name: string;
  Driver?: string;
  Scope?: string;
  EnableIPv6?: boolean;
  IPAM?: Partial<NetworkIPAM> | null;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  ConfigOnly?: boolean;
  ConfigFrom?: { Network: string } | null;
  Options?: StringMap | null;
  Labels?: StringMap | null;
  CheckDuplicate?: boolean;
}

export interface NetworkCreateResponse {
  Id: string;
  Warning: string;
}

/** One attached container in `GET /networks/{id}`. */
export interface NetworkContainer {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  IPv4Address: string;
  IPv6Address: string;
}

/** `GET /networks` and `GET /networks/{id}`. */
export interface NetworkResource {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv6: boolean;
  IPAM: NetworkIPAM;
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<string, NetworkContainer>;
  Options: StringMap;
  Labels: StringMap;
}

/** `POST /networks/{id}/connect`. */
export interface NetworkConnectRequest {
  Container: string;
  EndpointConfig?: {
    IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
    Links?: string[] | null;
    Aliases?: string[] | null;
    MacAddress?: string;
    DriverOpts?: StringMap | null;
  } | null;
}

/** `POST /networks/{id}/disconnect`. */
export interface NetworkDisconnectRequest {
  Container: string;
  Force?: boolean;
}
