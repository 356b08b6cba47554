import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';
import type { FirewallNetwork, PortMapping } from './types.js';

export interface EndpointRecord {
  network: FirewallNetwork;
  containerIp: string;
  mappings: PortMapping[];
}

/** firewall.json: the networks and endpoints whose rules are (or may be) installed. */
export interface FirewallState {
  version: 1;
  networks: Record<string, FirewallNetwork>;
  endpoints: Record<string, EndpointRecord>;
}

export function emptyState(): FirewallState {
  return { version: 1, networks: {}, endpoints: {} };
}

export function stateFile(stateDir: string): string {
  return join(stateDir, 'firewall.json');
}

/** Read at create (small, sync: `published()` answers without waiting). Absent = empty. */
export function loadState(stateDir: string): FirewallState {
  let text: string;
  try {
    text = readFileSync(stateFile(stateDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw err;
  }
  try {
    const s = JSON.parse(text) as FirewallState;
    if (s.version !== 1 || typeof s.networks !== 'object' || typeof s.endpoints !== 'object') throw new Error('unknown layout');
    return s;
  } catch (err) {
    throw new BerthError('BERTH_NETWORK', `read ${stateFile(stateDir)}: ${(err as Error).message}`, { cause: err });
  }
}

/** Written before rules are added and after they are removed, so a crash leaves a superset. */
export function saveState(stateDir: string, s: FirewallState): void {
  mkdirSync(stateDir, { recursive: true });
  const f = stateFile(stateDir);
  writeFileSync(`${f}.tmp`, JSON.stringify(s));
  renameSync(`${f}.tmp`, f);
}
