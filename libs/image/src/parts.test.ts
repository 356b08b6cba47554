import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { silentLogger } from '@berth/log';
import { ImageStore } from './store.js';
import { chainIds } from './chain.js';
import { tarDirDriver } from './testing.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function makeTar(tmp: string, files: Record<string, string>, format: 'gnu' | 'pax'): Buffer {
  const src = fs.mkdtempSync(path.join(tmp, 'src-'));
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    fs.writeFileSync(path.join(src, name), content);
  }
  return execFileSync('tar', ['-C', src, `--format=${format}`, '--sort=name', '-cf', '-', '.'], { maxBuffer: 1 << 26 });
}

function configFor(diffIds: string[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds }, ...extra }));
}

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('addImage / layerTar / imageParts', () => {
  let tmp: string;
  let store: ImageStore;
  let driver: ReturnType<typeof tarDirDriver>;
  let l1: Buffer;
  let l2: Buffer;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `berth-parts-${process.pid}-`));
    driver = tarDirDriver(path.join(tmp, 'driver'));
    store = await ImageStore.open({ root: path.join(tmp, 'image'), driver, logger: silentLogger() });
    l1 = makeTar(tmp, { 'bin/sh': 'shell\n'.repeat(1000), 'etc/passwd': 'root:x:0:0\n', [`deep/${'d'.repeat(120)}/${'f'.repeat(110)}`]: 'long name' }, 'gnu');
    l2 = makeTar(tmp, { [`x/${'p'.repeat(150)}`]: 'pax name', 'etc/hostname': 'h\n', 'empty': '' }, 'pax');
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('stores an image from a config and gzip/plain layers, tags it, and gives back byte-identical layer tars', async () => {
    const cfg = configFor([sha(l1), sha(l2)]);
    const id = await store.addImage({
      config: cfg,
      layers: [{ open: async () => Readable.from([gzipSync(l1)]) }, { diffId: sha(l2), open: async () => Readable.from([l2.subarray(0, 700), l2.subarray(700)]) }],
      tags: ['example.com/a/b:1', 'plain'],
    });
    assert.equal(id, sha(cfg));
    const parts = await store.imageParts('plain:latest');
    assert.equal(parts.id, id);
    assert.ok(parts.config.equals(cfg), 'config bytes kept exactly');
    assert.deepEqual(parts.repoTags, ['example.com/a/b:1', 'plain:latest']);
    assert.deepEqual(
      parts.layers.map((l) => [l.diffId, l.chainId]),
      [sha(l1), sha(l2)].map((d, i) => [d, chainIds([sha(l1), sha(l2)])[i]]),
    );
    assert.ok((await collect(await store.layerTar(parts.layers[0]!.chainId))).equals(l1), 'layer 1 tar reproduced');
    assert.ok((await collect(await store.layerTar(parts.layers[1]!.chainId))).equals(l2), 'layer 2 tar reproduced');
    assert.equal((await store.inspect(id)).Config.Cmd?.[0], 'sh');
  });

  it('reuses a stored layer without opening it', async () => {
    const l3 = makeTar(tmp, { 'three': '3' }, 'gnu');
    const cfg = configFor([sha(l1), sha(l3)], { comment: 'second' });
    let opened = 0;
    const before = driver.applied;
    const id = await store.addImage({
      config: cfg,
      layers: [{ open: async () => (opened++, Readable.from([l1])) }, { open: async () => Readable.from([l3]) }],
      tags: [],
    });
    assert.equal(opened, 0);
    assert.equal(driver.applied - before, 1);
    assert.equal((await store.inspect(id)).RootFS.Layers.length, 2);
  });

  it('refuses a layer whose digest differs from the config and leaves the store as it was', async () => {
    const dirsBefore = fs.readdirSync(path.join(tmp, 'driver')).sort();
    const layersBefore = fs.readdirSync(path.join(tmp, 'image/layerdb/sha256')).sort();
    const imagesBefore = (await store.list({ all: true })).length;
    const good = makeTar(tmp, { 'ok': 'fine' }, 'gnu');
    const bad = makeTar(tmp, { 'bad': 'evil' }, 'gnu');
    const claimed = sha(Buffer.from('something else'));
    await assert.rejects(
      store.addImage({ config: configFor([sha(good), claimed]), layers: [{ open: async () => Readable.from([good]) }, { open: async () => Readable.from([bad]) }], tags: ['mismatch'] }),
      (err: Error & { code?: string }) => err.code === 'BERTH_ARCHIVE_INVALID' && err.message.includes(`layer 2 (${claimed})`) && err.message.includes(sha(bad)),
    );
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'driver')).sort(), dirsBefore, 'no driver layer left');
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'image/layerdb/sha256')).sort(), layersBefore, 'no layer record left');
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'image/layerdb/tmp')), [], 'no temp record left');
    assert.equal((await store.list({ all: true })).length, imagesBefore);
    await assert.rejects(store.resolve('mismatch'), { code: 'BERTH_IMAGE_NOT_FOUND' });
  });

  it('refuses bad references before reading any layer', async () => {
    let opened = 0;
    for (const tag of ['Upper:1', 'repo:tag:x', `repo:${'t'.repeat(129)}`]) {
      await assert.rejects(
        store.addImage({ config: configFor([sha(l1)]), layers: [{ open: async () => (opened++, Readable.from([l1])) }], tags: [tag] }),
        { code: 'BERTH_REFERENCE_INVALID' },
        tag,
      );
    }
    assert.equal(opened, 0);
  });

  it('refuses malformed configs, a layer count that differs, a diffId the config does not list', async () => {
    const open = async (): Promise<Readable> => Readable.from([l1]);
    await assert.rejects(store.addImage({ config: Buffer.from('{nope'), layers: [], tags: [] }), { code: 'BERTH_ARCHIVE_INVALID' });
    await assert.rejects(store.addImage({ config: Buffer.from('{"rootfs":{"type":"x"}}'), layers: [], tags: [] }), { code: 'BERTH_ARCHIVE_INVALID' });
    await assert.rejects(store.addImage({ config: configFor(['sha256:zz']), layers: [{ open }], tags: [] }), { code: 'BERTH_ARCHIVE_INVALID' });
    await assert.rejects(store.addImage({ config: configFor([sha(l1)]), layers: [], tags: [] }), { code: 'BERTH_ARCHIVE_INVALID' });
    await assert.rejects(store.addImage({ config: configFor([sha(l1)]), layers: [{ diffId: sha(l2), open }], tags: [] }), { code: 'BERTH_ARCHIVE_INVALID' });
  });

  it('refuses a layer that is not a tar, and corrupt gzip, naming the layer', async () => {
    const junk = Buffer.from('this is not a tar archive at all'.repeat(40));
    const gz = gzipSync(l1);
    gz[gz.length - 5] ^= 0xff;
    for (const data of [junk, gz]) {
      await assert.rejects(
        store.addImage({ config: configFor([sha(data)]), layers: [{ open: async () => Readable.from([data]) }], tags: [] }),
        (err: Error & { code?: string }) => err.message.includes('layer 1') && ['BERTH_ARCHIVE_INVALID', 'BERTH_STORAGE'].includes(err.code ?? ''),
      );
    }
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'image/layerdb/tmp')), []);
  });

  it('a broken or missing split record is an error of the tar stream, never an unhandled one', async () => {
    const l4 = makeTar(tmp, { 'four': '4' }, 'gnu');
    const id = await store.addImage({ config: configFor([sha(l4)], { comment: 'four' }), layers: [{ open: async () => Readable.from([l4]) }], tags: [] });
    const chain = (await store.imageParts(id)).layers[0]!.chainId;
    const rec = path.join(tmp, 'image/layerdb/sha256', chain.slice(7), 'tar-split.json.gz');
    fs.writeFileSync(rec, 'not gzip at all');
    await assert.rejects(store.layerTarSize(chain));
    await assert.rejects(collect(await store.layerTar(chain)));
    fs.rmSync(rec);
    assert.equal(await store.layerTarSize(chain), null);
    // Without a record the driver's diff is the fallback (this driver has none).
    await assert.rejects(store.layerTar(chain), /no diff in this driver/);
  });

  it('pins a layer from lookup until the returned tar stream closes, with or without a split record', async () => {
    const pins = (store as unknown as { pins: Map<string, number> }).pins;
    const l5 = makeTar(tmp, { 'five': '5' }, 'gnu');
    const id = await store.addImage({ config: configFor([sha(l5)], { comment: 'five' }), layers: [{ open: async () => Readable.from([l5]) }], tags: [] });
    const chain = (await store.imageParts(id)).layers[0]!.chainId;
    assert.equal(pins.get(chain), undefined);
    const withSplit = await store.layerTar(chain);
    assert.equal(pins.get(chain), 1, 'pinned while the split-assembled tar is open');
    assert.ok((await collect(withSplit)).equals(l5));
    assert.equal(pins.get(chain), undefined, 'released after the tar was read');
    fs.rmSync(path.join(tmp, 'image/layerdb/sha256', chain.slice(7), 'tar-split.json.gz'));
    const saved = driver.diff;
    let pinnedDuringDiff: number | undefined;
    driver.diff = async () => {
      pinnedDuringDiff = pins.get(chain);
      return Readable.from([l5]);
    };
    try {
      const diff = await store.layerTar(chain);
      assert.equal(pinnedDuringDiff, 1, 'pinned before the driver diff is asked');
      assert.equal(pins.get(chain), 1, 'pinned while the driver diff is open');
      const closed = new Promise((res) => diff.on('close', res));
      assert.ok((await collect(diff)).equals(l5));
      await closed;
      assert.equal(pins.get(chain), undefined, 'released when the driver diff closed');
    } finally {
      driver.diff = saved;
    }
  });

  it('survives a reopen: layers and the split records are still there', async () => {
    const again = await ImageStore.open({ root: path.join(tmp, 'image'), driver, logger: silentLogger() });
    const parts = await again.imageParts('plain');
    assert.ok((await collect(await again.layerTar(parts.layers[1]!.chainId))).equals(l2));
  });
});
