import { type IpamDriverDeps, type IpamDriverDescriptor } from '@berth/plugin-api';
import { DefaultAddressPoolsOption, DefaultIpam, parsePoolSpecs, type DefaultIpamOptions } from './driver.js';
import { parsePrefix } from './cidr.js';

export {
  DefaultIpam,
  LocalDefault,
  GlobalDefault,
  GatewayAddressType,
  AvoidOption,
  DefaultAddressPoolsOption,
  defaultLocalPools,
  defaultGlobalPools,
  defaultV6Pools,
  parsePoolSpecs,
} from './driver.js';
export type { DefaultIpamOptions, PoolSpec } from './driver.js';
export { parseIp, formatIp, parsePrefix, formatPrefix, overlaps, within } from './cidr.js';
export type { Prefix } from './cidr.js';

/**
 * The default IPAM for a daemon. `deps.options['default-address-pools']` (JSON, daemon.json's
 * `default-address-pools`) replaces the local pools: IPv4 entries the IPv4 ones, IPv6 entries
 * the IPv6 ones. `deps.stateDir` is unused: the state is memory only, replayed by the controller.
 */
export function createDefaultIpam(deps: IpamDriverDeps, extra: Omit<DefaultIpamOptions, 'logger'> = {}): DefaultIpam {
  const opts: DefaultIpamOptions = { ...extra, logger: deps.logger.child({ driver: 'ipam-default' }) };
  const text = deps.options?.[DefaultAddressPoolsOption];
  if (text !== undefined && text !== '') {
    const specs = parsePoolSpecs(text);
    const v4 = specs.filter((s) => parsePrefix(s.base)?.v6 === false);
    const v6 = specs.filter((s) => parsePrefix(s.base)?.v6 === true);
    if (v4.length > 0) opts.localPools = v4;
    if (v6.length > 0) opts.v6Pools = v6;
  }
  return new DefaultIpam(opts);
}

/** Docker's default IPAM, wire name `default`. */
export const defaultIpam: IpamDriverDescriptor = {
  kind: 'ipam',
  name: 'default',
  create: async (deps) => createDefaultIpam(deps),
};

