import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import type { JsonMessage } from '@berth/api';
import { silentLogger } from '@berth/log';
import { ImageStore } from './store.js';
import { loadArchive } from './load.js';
import { planSave, writeSave } from './save.js';
import { tarDirDriver } from './testing.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hex = (d: string): string => d.slice(7);

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A tar of the given members (objects are JSON-encoded). */
async function tarOf(members: [string, Buffer | string | object][]): Promise<Buffer> {
  const pack = tarStream.pack();
  const done = collect(pack as unknown as Readable);
  for (const [name, v] of members) pack.entry({ name }, Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v) : Buffer.from(JSON.stringify(v)));
  pack.finalize();
  return done;
}

async function members(tar: Buffer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = tarStream.extract();
  Readable.from([tar]).pipe(ex);
  for await (const e of ex) {
    const body = await collect(e as unknown as Readable);
    out.set(e.header.name, e.header.type === 'symlink' ? Buffer.from(`-> ${e.header.linkname}`) : body);
  }
  return out;
}

function makeTar(tmp: string, files: Record<string, string>): Buffer {
  const src = fs.mkdtempSync(path.join(tmp, 'src-'));
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    fs.writeFileSync(path.join(src, name), content);
  }
  return execFileSync('tar', ['-C', src, '--sort=name', '-cf', '-', '.']);
}

const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0;

describe('save and load', () => {
  let tmp: string;
  let store: ImageStore;
  let l1: Buffer;
  let l2: Buffer;
  let cfg: Buffer;
  let id: string;
  const load = async (tar: Buffer | Readable, quiet = true): Promise<{ ids: string[]; msgs: JsonMessage[] }> => {
    const msgs: JsonMessage[] = [];
    const res = await loadArchive(store, Buffer.isBuffer(tar) ? Readable.from([tar]) : tar, { quiet, tmpRoot: path.join(tmp, 'loadtmp') }, (m) => msgs.push(m));
    return { ids: res.map((r) => r.id), msgs };
  };
  const save = async (...names: string[]): Promise<Buffer> => collect(writeSave(store, await planSave(store, names)));

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `berth-saveload-${process.pid}-`));
    store = await ImageStore.open({ root: path.join(tmp, 'image'), driver: tarDirDriver(path.join(tmp, 'driver')), logger: silentLogger() });
    l1 = makeTar(tmp, { 'bin/sh': 'shell'.repeat(3000), 'etc/os-release': 'berth\n' });
    l2 = makeTar(tmp, { 'hello': 'world\n' });
    cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [sha(l1), sha(l2)] } }));
    id = await store.addImage({ config: cfg, layers: [{ open: async () => Readable.from([l1]) }, { open: async () => Readable.from([l2]) }], tags: ['demo:1', 'demo:2', 'other/x:latest'] });
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('writes a docker-archive with legacy layer dirs and an OCI layout, the same bytes each time', async () => {
    const tar = await save('demo:1');
    const m = await members(tar);
    const manifest = JSON.parse(m.get('manifest.json')!.toString()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    assert.equal(manifest.length, 1);
    assert.equal(manifest[0]!.Config, `${hex(id)}.json`);
    assert.deepEqual(manifest[0]!.RepoTags, ['demo:1']);
    assert.ok(m.get(manifest[0]!.Config)!.equals(cfg));
    assert.ok(m.get(manifest[0]!.Layers[0]!)!.equals(l1));
    assert.ok(m.get(manifest[0]!.Layers[1]!)!.equals(l2));
    const top = manifest[0]!.Layers[1]!.split('/')[0]!;
    assert.equal(m.get(`${top}/VERSION`)!.toString(), '1.0');
    assert.deepEqual(JSON.parse(m.get('repositories')!.toString()), { demo: { '1': top } });
    const index = JSON.parse(m.get('index.json')!.toString()) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    assert.equal(index.manifests[0]!.annotations['io.containerd.image.name'], 'docker.io/library/demo:1');
    const oci = JSON.parse(m.get(`blobs/sha256/${hex(index.manifests[0]!.digest)}`)!.toString()) as { config: { digest: string }; layers: { digest: string; size: number }[] };
    assert.equal(oci.config.digest, id);
    assert.deepEqual(oci.layers.map((l) => [l.digest, l.size]), [[sha(l1), l1.length], [sha(l2), l2.length]]);
    assert.equal(m.get(`blobs/sha256/${hex(sha(l1))}`)!.toString(), `-> ../../${manifest[0]!.Layers[0]}`);
    assert.equal(m.get('oci-layout')!.toString(), '{"imageLayoutVersion":"1.0.0"}');
    assert.ok((await save('demo:1')).equals(tar), 'reproducible');
  });

  it('a bare repository name saves all its tags; an id saves no tags', async () => {
    const m = await members(await save('demo'));
    assert.deepEqual((JSON.parse(m.get('manifest.json')!.toString()) as { RepoTags: string[] }[])[0]!.RepoTags, ['demo:1', 'demo:2']);
    const byId = await members(await save(hex(id).slice(0, 12)));
    assert.equal((JSON.parse(byId.get('manifest.json')!.toString()) as { RepoTags: unknown }[])[0]!.RepoTags, null);
    await assert.rejects(planSave(store, ['demo:1', 'missing:1']), { code: 'BERTH_IMAGE_NOT_FOUND' });
  });

  it('round trip: save, rmi, load (plain and gzip) gives the same image id and tags', async () => {
    const tar = await save('demo:1', 'other/x');
    await store.remove(id, { force: true, noprune: false }, () => null);
    await assert.rejects(store.resolve(id), { code: 'BERTH_IMAGE_NOT_FOUND' });
    const { ids, msgs } = await load(tar, false);
    assert.deepEqual(ids, [id]);
    assert.deepEqual(msgs.filter((m) => m.stream !== undefined), [{ stream: 'Loaded image: demo:1\n' }, { stream: 'Loaded image: other/x:latest\n' }]);
    const last = msgs.filter((m) => m.status === 'Loading layer').at(-1)!;
    assert.deepEqual(last.progressDetail, { current: l2.length, total: l2.length }, 'progress ends at the layer size');
    assert.equal((await store.resolve('other/x')).id, id);
    const layersBefore = fs.readdirSync(path.join(tmp, 'driver')).sort();
    const again = await load(gzipSync(tar), false);
    assert.deepEqual(again.ids, [id]);
    // Layers are applied as the archive is read (before its manifest says which are stored):
    // the copies of stored ones are dropped, nothing is left in the driver or the temp dir.
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'driver')).sort(), layersBefore, 'no staged layer is left behind');
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'loadtmp')), [], 'no temp dir is left behind');
  });

  it('layers in an order that is not bottom first are applied again on their real parent', async () => {
    await store.remove(id, { force: true, noprune: false }, () => null);
    const layersBefore = fs.readdirSync(path.join(tmp, 'driver')).sort();
    const tar = await tarOf([
      ['top/layer.tar', l2],
      ['base/layer.tar', l1],
      [`${hex(sha(cfg))}.json`, cfg],
      ['manifest.json', [{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['demo:1'], Layers: ['base/layer.tar', 'top/layer.tar'] }]],
    ]);
    assert.deepEqual((await load(tar)).ids, [id]);
    const parts = await store.imageParts('demo:1');
    assert.deepEqual(parts.layers.map((l) => l.diffId), [sha(l1), sha(l2)]);
    assert.ok((await collect(await store.layerTar(parts.layers[1]!.chainId))).equals(l2), 'the top layer gives back its bytes');
    assert.equal(fs.readdirSync(path.join(tmp, 'driver')).length, layersBefore.length + 2, 'two layers stored, the staged copies dropped');
  });

  it('loads an OCI layout with gzip layers (docker 25+ style, no manifest.json), checking blob digests', async () => {
    const g1 = gzipSync(l1);
    const g2 = gzipSync(l2);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(cfg), size: cfg.length },
        layers: [g1, g2].map((g) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(g), size: g.length })),
      }),
    );
    const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'oci/one:v1' } }] };
    const entries: [string, Buffer | object][] = [
      ['oci-layout', { imageLayoutVersion: '1.0.0' }],
      [`blobs/sha256/${hex(sha(cfg))}`, cfg],
      [`blobs/sha256/${hex(sha(manifest))}`, manifest],
      [`blobs/sha256/${hex(sha(g1))}`, g1],
      [`blobs/sha256/${hex(sha(g2))}`, g2],
      ['index.json', index],
    ];
    await store.remove(id, { force: true, noprune: false }, () => null);
    const { ids, msgs } = await load(await tarOf(entries));
    assert.deepEqual(ids, [id]);
    assert.deepEqual(msgs, [{ stream: 'Loaded image: oci/one:v1\n' }]);

    // A layer blob whose bytes are not its digest.
    await store.remove(id, { force: true, noprune: false }, () => null);
    const tampered = gzipSync(Buffer.concat([l2]), { level: 1 });
    const bad = entries.map(([n, v]): [string, Buffer | object] => (n === `blobs/sha256/${hex(sha(g2))}` ? [n, tampered] : [n, v]));
    await assert.rejects(load(await tarOf(bad)), (err: Error & { code?: string }) => err.code === 'BERTH_ARCHIVE_INVALID' && /digest/.test(err.message));
    await assert.rejects(store.resolve('oci/one:v1'), { code: 'BERTH_IMAGE_NOT_FOUND' });
    // A manifest naming a blob the archive lacks.
    const missing = entries.filter(([n]) => n !== `blobs/sha256/${hex(sha(g1))}`);
    await assert.rejects(load(await tarOf(missing)), /is not in the archive/);
  });

  it('refuses malformed archives, missing members, tampered layers and bad names, storing nothing', async () => {
    const imagesBefore = (await store.list({ all: true })).length;
    const layersBefore = fs.readdirSync(path.join(tmp, 'image/layerdb/sha256')).length;
    const junk = Buffer.alloc(4096, 'x');
    await assert.rejects(load(junk), { code: 'BERTH_ARCHIVE_INVALID' });
    await assert.rejects(load(Buffer.alloc(0)), /no manifest.json/);
    await assert.rejects(load(await tarOf([['manifest.json', '{not json']])), { code: 'BERTH_ARCHIVE_INVALID' });
    await assert.rejects(load(await tarOf([['manifest.json', { Config: 'x' }]])), /not a list/);
    await assert.rejects(load(await tarOf([['manifest.json', [{ Config: 'c.json', RepoTags: null, Layers: ['l/layer.tar'] }]], ['c.json', cfg]])), /l\/layer.tar.*not in the archive/);
    await assert.rejects(
      load(await tarOf([['manifest.json', [{ Config: 'c.json', RepoTags: ['t:1'], Layers: ['a/layer.tar', 'b/layer.tar'] }]], ['c.json', cfg], ['a/layer.tar', l1], ['b/layer.tar', l1]])),
      (err: Error & { code?: string }) => err.code === 'BERTH_ARCHIVE_INVALID' && err.message.includes(`layer 2 (${sha(l2)})`),
    );
    for (const tag of ['Upper:1', 'repo:tag:x', `repo:${'t'.repeat(129)}`])
      await assert.rejects(
        load(await tarOf([['manifest.json', [{ Config: 'c.json', RepoTags: [tag], Layers: ['a/layer.tar', 'b/layer.tar'] }]], ['c.json', cfg], ['a/layer.tar', l1], ['b/layer.tar', l2]])),
        { code: 'BERTH_REFERENCE_INVALID' },
      );
    // Names leaving the archive are not followed.
    await assert.rejects(load(await tarOf([['manifest.json', [{ Config: '../../../etc/passwd', RepoTags: null, Layers: [] }]]])), /not in the archive/);
    assert.equal((await store.list({ all: true })).length, imagesBefore);
    assert.equal(fs.readdirSync(path.join(tmp, 'image/layerdb/sha256')).length, layersBefore);
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'loadtmp')), [], 'extraction dirs removed');
  });

  it('skopeo reads our save and its oci-archive of it loads to the same id', { skip: !hasSkopeo && 'skopeo not installed' }, async () => {
    await store.addImage({ config: cfg, layers: [{ open: async () => Readable.from([l1]) }, { open: async () => Readable.from([l2]) }], tags: ['demo:1'] });
    const file = path.join(tmp, 'ours.tar');
    fs.writeFileSync(file, await save('demo:1'));
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `docker-archive:${file}`]).toString()) as { layers: { digest: string }[] };
    assert.deepEqual(inspect.layers.map((l) => l.digest), [sha(l1), sha(l2)]);
    const ociDir = path.join(tmp, 'oci-dir');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${file}`, `oci:${ociDir}:demo`]);
    assert.ok(fs.existsSync(path.join(ociDir, 'index.json')));
    // Digests preserved (skopeo otherwise re-encodes the config into OCI's key order): same image id.
    const ociArchive = path.join(tmp, 'skopeo-oci.tar');
    execFileSync('skopeo', ['copy', '-q', '--preserve-digests', `docker-archive:${file}`, `oci-archive:${ociArchive}:skopeo/demo:2`]);
    await store.remove(id, { force: true, noprune: false }, () => null);
    const { ids, msgs } = await load(fs.createReadStream(ociArchive));
    assert.deepEqual(ids, [id]);
    assert.deepEqual(msgs, [{ stream: 'Loaded image: skopeo/demo:2\n' }]);
    // Our tar is also an OCI layout that skopeo reads as such.
    const viaOci = path.join(tmp, 'skopeo-oci2.tar');
    execFileSync('skopeo', ['copy', '-q', `oci-archive:${file}`, `oci-archive:${viaOci}:skopeo/demo:3`]);
    await store.remove(id, { force: true, noprune: false }, () => null);
    assert.deepEqual((await load(fs.createReadStream(viaOci))).ids, [id]);
    // Converted by skopeo (gzip layers, config re-encoded): loads, with our layers.
    const converted = path.join(tmp, 'skopeo-conv.tar');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${file}`, `oci-archive:${converted}:skopeo/demo:4`]);
    const conv = await load(fs.createReadStream(converted));
    assert.deepEqual((await store.inspect(conv.ids[0]!)).RootFS.Layers, [sha(l1), sha(l2)]);
  });
});

describe('save of a layer without a split record', () => {
  it('removes its spool dir when the driver diff fails', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `berth-savespool-${process.pid}-`));
    const spool = path.join(tmp, 'spool');
    fs.mkdirSync(spool);
    const saved = process.env.TMPDIR;
    try {
      const store = await ImageStore.open({ root: path.join(tmp, 'image'), driver: tarDirDriver(path.join(tmp, 'driver')), logger: silentLogger() });
      const l = makeTar(tmp, { 'solo': '1\n' });
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(l)] } }));
      const id = await store.addImage({ config, layers: [{ open: async () => Readable.from([l]) }], tags: ['spool:1'] });
      const chain = (await store.imageParts(id)).layers[0]!.chainId;
      fs.rmSync(path.join(tmp, 'image/layerdb/sha256', hex(chain), 'tar-split.json.gz'));
      const plan = await planSave(store, ['spool:1']);
      process.env.TMPDIR = spool;
      // tarDirDriver has no diff: the fallback fails after the spool dir was made.
      await assert.rejects(collect(writeSave(store, plan)), /no diff in this driver/);
      assert.deepEqual(fs.readdirSync(spool), []);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
