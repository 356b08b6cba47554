/**
 * zstd-compressed layers (application/vnd.oci.image.layer.v1.tar+zstd, magic 28 b5 2f fd) load,
 * import and apply (the pull path) to the same diffID as their plain tar.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import tarStream from 'tar-stream';
import { silentLogger } from '@berth/log';
import { ImageStore } from './store.js';
import { loadArchive } from './load.js';
import { tarDirDriver } from './testing.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const skip = spawnSync('zstd', ['--version']).status === 0 ? false : 'the zstd executable (Debian package zstd) is not installed';
const zstd = (b: Buffer): Buffer => execFileSync('zstd', ['-c', '-q', '-3'], { input: b, maxBuffer: 256 << 20 });

async function tarOf(members: [string, Buffer | string][]): Promise<Buffer> {
  const pack = tarStream.pack();
  const parts: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as unknown as Readable) parts.push(c as Buffer);
  })();
  for (const [name, v] of members) pack.entry({ name }, typeof v === 'string' ? Buffer.from(v) : v);
  pack.finalize();
  await done;
  return Buffer.concat(parts);
}

describe('zstd layers', { skip }, () => {
  let tmp: string;
  let store: ImageStore;
  let layer: Buffer;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `berth-zstd-${process.pid}-`));
    store = await ImageStore.open({ root: path.join(tmp, 'image'), driver: tarDirDriver(path.join(tmp, 'driver')), logger: silentLogger() });
    const src = path.join(tmp, 'src');
    fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(src, 'bin/sh'), Buffer.alloc(2 << 20, 0x5a));
    fs.writeFileSync(path.join(src, 'hello'), 'zstd\n');
    layer = execFileSync('tar', ['-C', src, '--sort=name', '-cf', '-', '.'], { maxBuffer: 64 << 20 });
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('import: a zstd tarball gives the diffID of the plain tar', async () => {
    const z = zstd(layer);
    assert.deepEqual([...z.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
    const plainId = await store.importTar(Readable.from([layer]), { repo: 'plain', tag: '', message: '', changes: [] });
    const zId = await store.importTar(Readable.from([z.subarray(0, 3), z.subarray(3)]), { repo: 'zst', tag: '', message: '', changes: [] });
    const a = await store.inspect(plainId);
    const b = await store.inspect(zId);
    assert.deepEqual(b.RootFS.Layers, [sha(layer)]);
    assert.deepEqual(b.RootFS.Layers, a.RootFS.Layers);
  });

  it('pull path (addImage): a +zstd blob applies to the config diffID; a corrupt one stores nothing', async () => {
    const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(layer)] }, history: [{ created_by: 'zstd' }] }));
    const id = await store.addImage({ config: cfg, layers: [{ open: async () => Readable.from([zstd(layer)]) }], tags: ['pulled:zstd'] });
    assert.deepEqual((await store.inspect('pulled:zstd')).RootFS.Layers, [sha(layer)]);
    assert.equal(id, sha(cfg));
    const otherTar = await tarOf([['x', 'y']]);
    const cfg2 = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(otherTar)] } }));
    const z = zstd(otherTar);
    const bad = Buffer.concat([z.subarray(0, 8), Buffer.alloc(64, 0xee), z.subarray(8)]);
    const driverDir = path.join(tmp, 'driver');
    const before = fs.readdirSync(driverDir).sort();
    await assert.rejects(store.addImage({ config: cfg2, layers: [{ open: async () => Readable.from([bad]) }], tags: ['bad:zstd'] }), { code: 'BERTH_ARCHIVE_INVALID' });
    assert.deepEqual(fs.readdirSync(driverDir).sort(), before, 'the half-applied layer was removed');
    await assert.rejects(store.resolve('bad:zstd'), { code: 'BERTH_IMAGE_NOT_FOUND' });
  });

  it('load: a docker-archive with zstd layer files, and a zstd-compressed archive, give the same diffID', async () => {
    const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(layer)] }, comment: 'load' }));
    const cfgName = `${sha(cfg).slice(7)}.json`;
    const archive = await tarOf([
      [cfgName, cfg],
      ['l1/layer.tar', zstd(layer)],
      ['manifest.json', JSON.stringify([{ Config: cfgName, RepoTags: ['loaded:zstd'], Layers: ['l1/layer.tar'] }])],
    ]);
    const ids = await loadArchive(store, Readable.from([archive]), { quiet: true, tmpRoot: path.join(tmp, 'loadtmp') }, () => undefined);
    assert.deepEqual(ids.map((r) => r.id), [sha(cfg)]);
    assert.deepEqual((await store.inspect('loaded:zstd')).RootFS.Layers, [sha(layer)]);
    await store.remove('loaded:zstd', { force: true, noprune: false }, () => null);
    const za = zstd(archive);
    const again = await loadArchive(store, Readable.from([za.subarray(0, 1), za.subarray(1, 3), za.subarray(3)]), { quiet: true, tmpRoot: path.join(tmp, 'loadtmp') }, () => undefined);
    assert.deepEqual(again.map((r) => r.id), [sha(cfg)]);
  });
});
