import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { descriptorHarness, graphDriverSuite } from '@berth/plugin-testkit';
import { overlay2Driver } from '@berth/storage-overlay2';

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
    descriptorHarness(overlay2Driver),
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
