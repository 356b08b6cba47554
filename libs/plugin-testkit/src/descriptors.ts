import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDriverSkip, type IpamDriver, type IpamDriverDescriptor, type NetworkDriver, type NetworkDriverDescriptor } from '@berth/plugin-api';
import { silentDriverLogger } from './graph/harness.js';
import type { IpamDriverHarness } from './ipam/suite.js';
import type { NetworkDriverHarness } from './network/suite.js';

/** The suite's `makeDriver` for a built-in network descriptor: a fresh temp stateDir per case. */
export function networkDescriptorHarness(descriptor: NetworkDriverDescriptor, options?: Record<string, string>): () => Promise<NetworkDriverHarness> {
  return async () => {
    const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-${descriptor.name}-contract-${process.pid}-`));
    const made = await descriptor.create({ stateDir, logger: silentDriverLogger, ...(options ? { options } : {}) });
    if (isDriverSkip(made)) throw new Error(`${descriptor.name} skipped: ${made.skip}`);
    return { driver: made as NetworkDriver, cleanup: () => fs.rm(stateDir, { recursive: true, force: true }) };
  };
}

/** The same for an IPAM descriptor. */
export function ipamDescriptorHarness(descriptor: IpamDriverDescriptor, options?: Record<string, string>): () => Promise<IpamDriverHarness> {
  return async () => {
    const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-ipam-${descriptor.name}-contract-${process.pid}-`));
    const made = await descriptor.create({ stateDir, logger: silentDriverLogger, ...(options ? { options } : {}) });
    if (isDriverSkip(made)) throw new Error(`${descriptor.name} skipped: ${made.skip}`);
    return { driver: made as IpamDriver, cleanup: () => fs.rm(stateDir, { recursive: true, force: true }) };
  };
}
