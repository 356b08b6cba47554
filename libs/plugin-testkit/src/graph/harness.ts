import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDriverSkip, type DriverLogger, type GraphDriver, type GraphDriverDescriptor } from '@berth/plugin-api';
import type { GraphDriverHarness } from './suite.js';

/** A logger that drops everything, for drivers under test. */
export const silentDriverLogger: DriverLogger = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silentDriverLogger };

/**
 * The suite's `makeDriver` for a built-in descriptor: a fresh temp home per case
 * (`<tmp>/<name>`), a driver made by the descriptor (a skip is an error here: decide skips
 * before registering the suite), and a cleanup that runs the driver's Cleanup and removes the home.
 */
export function descriptorHarness(descriptor: GraphDriverDescriptor): () => Promise<GraphDriverHarness> {
  return async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), `berth-${descriptor.name}-contract-${process.pid}-`));
    const made = await descriptor.create({ root: path.join(root, descriptor.name), logger: silentDriverLogger });
    if (isDriverSkip(made)) throw new Error(`${descriptor.name} skipped: ${made.skip}`);
    const driver = made as GraphDriver;
    return {
      driver,
      root,
      cleanup: async () => {
        await driver.cleanup();
        await fs.rm(root, { recursive: true, force: true });
      },
    };
  };
}
