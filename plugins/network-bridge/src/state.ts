import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';
import type { PortBinding, PortRun } from '@berth/plugin-api';
import type { PortMapping } from './firewall/types.js';
import type { BridgeOptions } from './options.js';

/** One bridge network as the driver keeps it across restarts. */
export interface NetworkState {
  id: string;
  bridge: string;
  options: BridgeOptions;
  /** IPv4 pool (CIDR) and gateway (CIDR with the pool's prefix) from IPv4Data[0]. */
  subnet: string;
  gatewayCidr: string;
  subnetV6?: string;
  gatewayCidrV6?: string;
  /** False when the bridge existed before the network (adopted): it is kept at delete. */
  createdBridge: boolean;
  /** Addresses this driver put on the bridge (removed again from an adopted bridge). */
  addedAddresses: string[];
}

/** One endpoint: its veth pair and what got published for it. */
export interface EndpointState {
  id: string;
  networkId: string;
  /** Host end, enslaved to the bridge. */
  hostIf: string;
  /** Container end as the driver made it (the engine moves and renames it at Join). */
  containerIf: string;
  mac: string;
  /** CIDRs as the engine gave them ('' when unset). */
  address: string;
  addressV6: string;
  /**
   * Port bindings of CreateEndpoint, used when ProgramExternalConnectivity brings none, as runs
   * (compressBindings): a 10,000-port range is one entry. Older state has one binding per port
   * and no Count (runsOf reads them).
   */
  portMap: PortRun[];
  sandboxKey?: string;
  /** True between ProgramExternalConnectivity and RevokeExternalConnectivity. */
  programmed: boolean;
  ports: PortMapping[];
}

/** An endpoint's port map as runs; state written before runs has one binding per entry, no Count. */
export function runsOf(portMap: readonly (PortRun | PortBinding)[]): PortRun[] {
  return portMap.map((b) => ('Count' in b && typeof b.Count === 'number' ? b : { ...b, Count: 1 }));
}

export interface BridgeState {
  version: 1;
  networks: Record<string, NetworkState>;
  endpoints: Record<string, EndpointState>;
}

const FILE = 'bridge.json';

export function emptyState(): BridgeState {
  return { version: 1, networks: {}, endpoints: {} };
}

/** Reads the driver's state file; a missing file is an empty state. */
export function loadState(stateDir: string): BridgeState {
  let text: string;
  try {
    text = readFileSync(join(stateDir, FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw err;
  }
  try {
    const s = JSON.parse(text) as BridgeState;
    if (s.version !== 1 || typeof s.networks !== 'object' || typeof s.endpoints !== 'object') throw new Error('unknown layout');
    return s;
  } catch (err) {
    throw new BerthError('BERTH_NETWORK', `bridge driver state ${join(stateDir, FILE)} is unreadable: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Writes the state atomically: a temp file, fsync, rename over the old one. `durable: false`
 * skips the fsync, for a change that only touches endpoints (veths a reboot removes anyway).
 */
export function saveState(stateDir: string, state: BridgeState, durable = true): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, FILE);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 1)}\n`);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
