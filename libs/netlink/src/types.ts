/** One network interface as Berth sees it. `mac` is lower-case colon hex ('' when the link has none). */
export interface LinkInfo {
  index: number;
  name: string;
  mtu: number;
  mac: string;
  up: boolean;
  /** Index of the bridge (or other master) this link is enslaved to. */
  masterIndex?: number;
  /** IFLA_INFO_KIND: 'bridge', 'veth'...; absent for physical devices and lo. */
  kind?: string;
  /** IFLA_LINK where it names another link: a veth's peer (its index in the peer's namespace). */
  peerIndex?: number;
}

export interface RouteInfo {
  /** CIDR, 'default' for 0/0. */
  dst: string;
  gateway?: string;
  /** Name of the output interface. */
  dev?: string;
  table: number;
  family: 4 | 6;
}

export interface AddressInfo {
  link: string;
  cidr: string;
  family: 4 | 6;
}

export interface RouteSpec {
  /** CIDR or 'default' (IPv4 0/0; IPv6 when gateway is IPv6). */
  dst: string;
  gateway?: string;
  dev?: string;
}

export interface LinkChange {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** Bridge name to enslave to; null releases the link from its master. */
  master?: string | null;
  /** New name. With netnsPath the link is named so inside the target namespace. */
  name?: string;
  /** Move the link into the network namespace bind-mounted at this path. */
  netnsPath?: string;
}

/**
 * rtnetlink as Berth uses it. Every call acts in the namespace the object's socket was made in
 * (openNetlink: the daemon's; openNetlinkIn: a sandbox's). Failures throw SystemError whose
 * syscall names the operation ("create veth vethab12 on berth0: EEXIST"), so the kind follows
 * the errno (EEXIST -> AlreadyExists, ENODEV -> NotFound...).
 */
export interface Netlink {
  links(): Promise<LinkInfo[]>;
  link(name: string): Promise<LinkInfo | undefined>;
  createBridge(name: string, opts?: { mtu?: number; mac?: string }): Promise<void>;
  /** peer created directly inside peerNetnsPath when given (named peer there), with peerMac when given. */
  createVeth(name: string, peer: string, opts?: { mtu?: number; peerNetnsPath?: string; master?: string; peerMac?: string }): Promise<void>;
  /** Absent link: resolves. Deleting one end of a veth pair deletes both. */
  deleteLink(name: string): Promise<void>;
  /** All changes go in one RTM_SETLINK; with netnsPath the kernel moves (and renames) first. */
  setLink(name: string, change: LinkChange): Promise<void>;
  /** Bridge port flag (IFLA_BRPORT_MODE); the link must be enslaved to a bridge. */
  setHairpin(name: string, on: boolean): Promise<void>;
  addresses(name?: string): Promise<AddressInfo[]>;
  /** Already there: resolves. */
  addAddress(name: string, cidr: string): Promise<void>;
  /** Absent: resolves. */
  delAddress(name: string, cidr: string): Promise<void>;
  /** Routes of the main table. */
  routes(family?: 4 | 6): Promise<RouteInfo[]>;
  /** A route with the same destination already there: EEXIST. */
  addRoute(r: RouteSpec): Promise<void>;
  /** Absent: resolves. */
  delRoute(r: RouteSpec): Promise<void>;
  close(): void;
}
