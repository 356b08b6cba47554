import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDriverSkip, type DriverLogger, type GraphDriver } from '@berth/plugin-api';
import { graphDriverSuite } from '@berth/plugin-testkit';
import { vfsDriver } from '@berth/storage-vfs';

const silent: DriverLogger = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silent };

// Every case of the contract; device nodes, owners and security.capability need root (named
// skips otherwise).
graphDriverSuite(
  'vfs',
  async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), `berth-vfs-contract-${process.pid}-`));
    const made = await vfsDriver.create({ root: path.join(root, 'vfs'), logger: silent });
    if (isDriverSkip(made)) throw new Error(`vfs skipped: ${made.skip}`);
    const driver = made as GraphDriver;
    return {
      driver,
      root,
      cleanup: async () => {
        await driver.cleanup();
        await fs.rm(root, { recursive: true, force: true });
      },
    };
  },
  {},
);
