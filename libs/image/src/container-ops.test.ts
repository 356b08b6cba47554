import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@berth/log';
import { ImageStore } from './store.js';
import { tarDirDriver } from './testing.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('history, prune and disk usage over the store', () => {
  let tmp: string;
  let store: ImageStore;
  let layer: Buffer;
  let base: string;
  let child: string;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `berth-ops-${process.pid}-`));
    store = await ImageStore.open({ root: path.join(tmp, 'image'), driver: tarDirDriver(path.join(tmp, 'driver')), logger: silentLogger() });
    const src = path.join(tmp, 'src');
    fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(src, 'bin', 'sh'), 'x'.repeat(3000));
    layer = execFileSync('tar', ['-C', src, '--sort=name', '-cf', '-', '.']);
    const history = [
      { created: '2024-01-01T00:00:00Z', created_by: 'ADD rootfs', comment: 'first' },
      { created: '2024-01-02T00:00:00Z', created_by: 'ENV A=b', empty_layer: true },
    ];
    const baseCfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', created: '2024-01-02T00:00:00Z', history, rootfs: { type: 'layers', diff_ids: [sha(layer)] } }));
    base = await store.addImage({ config: baseCfg, layers: [{ open: async () => Readable.from([layer]) }], tags: ['base:1'] });
    const childCfg = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: '2024-01-03T00:00:00Z',
        parent: base,
        history: [...history, { created: '2024-01-03T00:00:00Z', created_by: 'sh -c true', empty_layer: true }],
        rootfs: { type: 'layers', diff_ids: [sha(layer)] },
      }),
    );
    child = await store.addImage({ config: childCfg, layers: [{ open: async () => Readable.from([layer]) }], tags: [] });
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('history: newest first, ids along the parent chain, sizes on layer rows only', async () => {
    const rows = await store.history(child);
    assert.deepEqual(
      rows.map((r) => [r.Id, r.CreatedBy, r.Size > 0, r.Tags]),
      [
        [child, "sh -c true", false, null],
        [base, 'ENV A=b', false, ['base:1']],
        ['<missing>', 'ADD rootfs', true, null],
      ],
    );
    assert.equal(rows[2]!.Comment, 'first');
    assert.equal(rows[2]!.Created, Date.UTC(2024, 0, 1) / 1000);
  });

  it('disk usage counts shared layers once', async () => {
    const du = await store.diskUsage();
    assert.equal(du.LayersSize, 1); // this driver reports 1 byte per applied layer
    for (const img of du.Images) assert.equal(img.SharedSize, du.LayersSize);
  });

  it('prune: a dangling child goes, a tagged parent stays; -a takes the parent once unused', async () => {
    const inUse = (): null => null;
    const dangling = await store.prune({ all: false }, inUse);
    assert.deepEqual(dangling.ImagesDeleted, [{ Deleted: child }]);
    assert.equal(dangling.SpaceReclaimed, 0); // the layer is still the parent's
    const used = await store.prune({ all: true }, (id) => (id === base ? 'c1' : null));
    assert.equal(used.ImagesDeleted, null);
    const all = await store.prune({ all: true }, inUse);
    assert.deepEqual(all.ImagesDeleted?.slice(0, 2), [{ Untagged: 'base:1' }, { Deleted: base }]);
    assert.equal(all.SpaceReclaimed, 1);
    assert.equal(store.count(), 0);
  });
});
