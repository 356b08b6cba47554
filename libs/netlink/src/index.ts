export type { AddressInfo, LinkChange, LinkInfo, Netlink, RouteInfo, RouteSpec } from './types.js';
export { openNetlink, openNetlinkIn } from './rtnetlink.js';
