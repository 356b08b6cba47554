import { execFile } from 'node:child_process';
import { createIptables, type Iptables } from '@berth/iptables';
import { netnsExists } from '@berth/native';
import { openNetlink, type Netlink } from '@berth/netlink';
import type { DriverSkip, NetworkDriverDeps, NetworkDriverDescriptor } from '@berth/plugin-api';
import { BridgeDriver } from './driver.js';
import { createFirewall, procFiles, type Firewall, type ProcFiles } from './firewall/index.js';
import { loadState } from './state.js';

export { BridgeDriver, mappingsToBindings } from './driver.js';
export type { BridgeDriverConfig } from './driver.js';
export { parseNetworkOptions, defaultBridgeName, macFromIPv4 } from './options.js';
export type { BridgeOptions } from './options.js';
export type { Firewall, FirewallNetwork, PortMapping, ProcFiles } from './firewall/index.js';
export { createFirewall, procFiles } from './firewall/index.js';

/** What the bridge driver is made from; everything beyond NetworkDriverDeps is for tests. */
export interface BridgeDriverDeps extends NetworkDriverDeps {
  /** rtnetlink of the namespace the bridges live in (default: the daemon's). */
  netlink?: Netlink;
  /** Default: createFirewall over `iptables`. */
  firewall?: Firewall;
  /** Used for the default firewall (default: the iptables binaries in the daemon's namespace). */
  iptables?: Iptables;
  /** /proc of that namespace (default: the daemon's). */
  proc?: ProcFiles;
  /** Chain prefix of the default firewall (tests pass a unique one). */
  chainPrefix?: string;
  /** Whether a path is a live network namespace (default: @berth/native's netnsExists). */
  isNetns?: (path: string) => boolean;
  /** Loads br_netfilter when its sysctls are missing (default: `modprobe br_netfilter`). */
  loadBrNetfilter?: () => Promise<void>;
}

function modprobeBrNetfilter(): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('modprobe', ['br_netfilter'], (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Builds the driver and restores its persisted networks (bridges re-created where missing,
 * firewall reconciled). Daemon options read: `mtu` (default MTU of new networks) and
 * `userland-proxy` ('true': the firewall's userland proxy, no hairpin on bridge ports).
 */
export async function createBridgeDriver(deps: BridgeDriverDeps): Promise<BridgeDriver> {
  const proc = deps.proc ?? procFiles();
  const firewall =
    deps.firewall ??
    createFirewall({
      iptables: deps.iptables ?? createIptables({ logger: deps.logger }),
      logger: deps.logger,
      stateDir: deps.stateDir,
      userlandProxy: deps.options?.['userland-proxy'] === 'true',
      ...(deps.chainPrefix !== undefined ? { chainPrefix: deps.chainPrefix } : {}),
      proc,
    });
  const netlink = deps.netlink ?? openNetlink();
  const driver = new BridgeDriver(
    {
      stateDir: deps.stateDir,
      logger: deps.logger,
      netlink,
      firewall,
      proc,
      ...(deps.options !== undefined ? { options: deps.options } : {}),
      loadBrNetfilter: deps.loadBrNetfilter ?? modprobeBrNetfilter,
      isNetns: deps.isNetns ?? ((p: string) => netnsExists(p)),
    },
    loadState(deps.stateDir),
  );
  try {
    await driver.restore();
  } catch (err) {
    if (deps.netlink === undefined) netlink.close();
    throw err;
  }
  return driver;
}

/** The built-in `bridge` network driver. Needs root (netlink, iptables). */
export const bridgeDriver: NetworkDriverDescriptor = {
  kind: 'network',
  name: 'bridge',
  async create(deps: NetworkDriverDeps): Promise<BridgeDriver | DriverSkip> {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) return { skip: 'the bridge driver needs root (netlink and iptables)' };
    // Daemon option `chain-prefix`: several daemons on one host (tests) keep their chains apart.
    const prefix = deps.options?.['chain-prefix'];
    return createBridgeDriver(prefix ? { ...deps, chainPrefix: prefix } : deps);
  },
};
