import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { isDriverSkip, type DriverLogger, type GraphDriver } from '@berth/plugin-api';
import { graphDriverSuite } from '@berth/plugin-testkit';
import { overlay2Driver } from '@berth/storage-overlay2';

const silent: DriverLogger = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silent };
const isRoot = process.getuid?.() === 0;

/** The overlay mount on `view`: its super options (the mount data the kernel kept). */
function mountOptionsOf(view: string): string {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === view);
  assert.ok(line !== undefined, `nothing mounted on ${view}`);
  return line.split(' - ')[1]!.split(' ').slice(2).join(' ');
}

describe('overlay2 contract', { skip: isRoot ? false : 'needs root (overlay mounts)' }, () => {
  graphDriverSuite(
    'overlay2',
    async () => {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), `berth-ov2-contract-${process.pid}-`));
      const made = await overlay2Driver.create({ root: path.join(root, 'overlay2'), logger: silent });
      if (isDriverSkip(made)) throw new Error(`overlay2 skipped: ${made.skip}`);
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
    {
      statusKeys: ['Backing Filesystem', 'Supports d_type', 'Native Overlay Diff'],
      metadataKeys: ['LowerDir', 'UpperDir', 'WorkDir', 'MergedDir'],
      // 128 lower layers with 64-hex layer ids: the mount data (short links) fits one page.
      checkDeepView: (view) => {
        const data = mountOptionsOf(view);
        assert.ok(Buffer.byteLength(data) < 4096, `mount data of ${Buffer.byteLength(data)} bytes`);
        assert.equal((/lowerdir=([^,]*)/.exec(data)?.[1] ?? '').split(':').length, 128);
      },
    },
  );
});
