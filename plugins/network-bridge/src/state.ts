import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';
import type { PortBinding } from '@berth/plugin-api';
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
   * (bindingRuns): a 10,000-port range is one entry. Older state has them one per port.
   */
  portMap: PortBindingRun[];
  sandboxKey?: string;
  /** True between ProgramExternalConnectivity and RevokeExternalConnectivity. */
  programmed: boolean;
  ports: PortMapping[];
}

/** `count` consecutive bindings: Port and HostPort (= HostPortEnd) step by one from the first. */
export interface PortBindingRun extends PortBinding {
  count?: number;
}

/** Consecutive single-port bindings as runs (the opposite of expandRuns). */
export function bindingRuns(bs: readonly PortBinding[]): PortBindingRun[] {
  const out: PortBindingRun[] = [];
  let last: PortBindingRun | undefined;
  for (const b of bs) {
    const n = last?.count ?? 1;
    const single = b.HostPort !== 0 && b.HostPortEnd === b.HostPort;
    if (
      last !== undefined && single && last.HostPortEnd === last.HostPort && last.HostPort !== 0 && b.Proto === last.Proto && b.IP === last.IP &&
      b.HostIP === last.HostIP && b.Port === last.Port + n && b.HostPort === last.HostPort + n
    ) {
      last.count = n + 1;
      continue;
    }
    last = { ...b };
    out.push(last);
  }
  return out;
}

/** The bindings of runs, one per port. */
export function expandRuns(rs: readonly PortBindingRun[]): PortBinding[] {
  const out: PortBinding[] = [];
  for (const { count = 1, ...b } of rs) {
    for (let i = 0; i < count; i++) out.push(i === 0 ? b : { ...b, Port: b.Port + i, HostPort: b.HostPort + i, HostPortEnd: b.HostPort + i });
  }
  return out;
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
