import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fakeGraphDriver } from './graph/fake.js';
import { graphDriverSuite } from './graph/suite.js';

// The suite is satisfiable: the plain-directory fake passes it (as root every case runs).
graphDriverSuite('fake', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), `berth-fake-graph-${process.pid}-`));
  const driver = await fakeGraphDriver(path.join(root, 'layers'));
  return {
    driver,
    root,
    cleanup: async () => {
      await driver.cleanup();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}, { maxDepth: 32, statusKeys: ['Layers'], metadataKeys: ['Dir'] });
