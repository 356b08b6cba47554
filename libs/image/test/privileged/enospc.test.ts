/**
 * A disk that fills up mid-apply: the image store and its layers live on a 4 MiB tmpfs mounted
 * for this test; a layer bigger than that must fail with a clear error naming ENOSPC
 * (BERTH_STORAGE, kind Internal -> HTTP 500 as dockerd answers; ResourceExhausted would be
 * 429, which tells a client to retry later: wrong for a full disk), leave no half-written
 * layer directory, no partial layerdb entry, the previous images intact and the space freed.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyTar, type ArchiveFs } from '@berth/archive';
import { BerthError, ErrorKind } from '@berth/errors';
import { silentLogger } from '@berth/log';
import type { GraphDriver } from '@berth/plugin-api';
import { ImageStore } from '@berth/image';
import { tarDirDriver } from '../../src/testing.js';
import { loadArchive } from '../../src/load.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (mounts a tmpfs)';
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** No device nodes in these layers: the kernel calls beyond node:fs are never needed. */
const noDevices: ArchiveFs = {
  mknod() {
    throw new Error('no mknod in this test');
  },
  lsetxattr() {},
  lgetxattr() {
    return null;
  },
};

/** vfs's layout and apply path: full copies, layers extracted by @berth/archive's applyTar. */
function vfsLike(home: string): GraphDriver {
  const base = tarDirDriver(home);
  return { ...base, name: 'vfs', applyDiff: (id, _parent, diff) => applyTar(path.join(home, id), diff, { fs: noDevices }) };
}

function tarOfDir(files: Record<string, Buffer | string>): Buffer {
  const src = fs.mkdtempSync(path.join(os.tmpdir(), `berth-enospc-src-${process.pid}-`));
  try {
    for (const [name, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
      fs.writeFileSync(path.join(src, name), content);
    }
    return execFileSync('tar', ['-C', src, '--sort=name', '--owner=0', '--group=0', '-cf', '-', '.'], { maxBuffer: 64 << 20 });
  } finally {
    fs.rmSync(src, { recursive: true, force: true });
  }
}

/** Everything under `dir` (relative names), for before/after comparisons. */
function tree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

describe('a disk that fills up mid-apply', { skip }, () => {
  let mnt: string;
  let store: ImageStore;
  let storeRoot: string;
  let driverHome: string;
  let baseTar: Buffer;
  let baseId: string;

  before(async () => {
    mnt = fs.mkdtempSync(path.join(os.tmpdir(), `berth-enospc-${process.pid}-${randomBytes(4).toString('hex')}-`));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', `berth-enospc-${process.pid}`, mnt]);
    storeRoot = path.join(mnt, 'image/vfs');
    driverHome = path.join(mnt, 'vfs/dir');
    fs.mkdirSync(driverHome, { recursive: true });
    store = await ImageStore.open({ root: storeRoot, driver: vfsLike(driverHome), logger: silentLogger() });
    baseTar = tarOfDir({ 'etc/os-release': 'berth\n', 'bin/tool': randomBytes(64 << 10) });
    const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(baseTar)] } }));
    baseId = await store.addImage({ config: cfg, layers: [{ open: async () => Readable.from([baseTar]) }], tags: ['base:1'] });
  });

  after(() => {
    if (mnt === undefined) return;
    try {
      execFileSync('umount', [mnt]);
    } finally {
      fs.rmdirSync(mnt);
    }
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    assert.equal(mounts.includes(mnt), false, 'the tmpfs is unmounted');
  });

  /** The store's state as files: layer dirs, layerdb records (and its tmp), images, repositories. */
  const snapshot = (): { layers: string[]; layerdb: string[]; imagedb: string[]; repos: string } => ({
    layers: fs.readdirSync(driverHome).sort(),
    layerdb: tree(path.join(storeRoot, 'layerdb')),
    imagedb: tree(path.join(storeRoot, 'imagedb')),
    repos: fs.readFileSync(path.join(storeRoot, 'repositories.json'), 'utf8'),
  });

  const assertEnospc = (err: unknown): true => {
    assert.ok(err instanceof BerthError, String(err));
    assert.equal(err.code, 'BERTH_STORAGE', err.message);
    assert.equal(err.kind, ErrorKind.Internal);
    assert.match(err.message, /ENOSPC|no space left on device/);
    return true;
  };

  const assertUnchanged = async (before: ReturnType<typeof snapshot>, freeBefore: number): Promise<void> => {
    assert.deepEqual(snapshot(), before, 'no half-written layer dir, no partial layerdb entry, images and tags as they were');
    // tmpfs frees pages at once; a few KiB of slack for directory inodes.
    assert.ok(Math.abs(freeBytes(mnt) - freeBefore) <= 64 << 10, `free ${freeBytes(mnt)} vs ${freeBefore} before`);
    const base = await store.inspect('base:1');
    assert.equal(base.Id, baseId);
    assert.deepEqual(base.RootFS.Layers, [sha(baseTar)]);
    assert.deepEqual((await store.list()).map((i) => i.Id), [baseId]);
  };

  it('pull/load path (addImage): a layer bigger than the disk on top of an existing one', async () => {
    const before = snapshot();
    const freeBefore = freeBytes(mnt);
    const big = tarOfDir({ 'big/blob': randomBytes(6 << 20), 'small': 'x' });
    const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(baseTar), sha(big)] } }));
    const chunks: Buffer[] = [];
    for (let i = 0; i < big.length; i += 256 << 10) chunks.push(big.subarray(i, i + (256 << 10)));
    await assert.rejects(
      store.addImage({
        config: cfg,
        layers: [{ open: async () => Readable.from([baseTar]) }, { open: async () => Readable.from(chunks) }],
        tags: ['big:1'],
      }),
      assertEnospc,
    );
    await assertUnchanged(before, freeBefore);
    await assert.rejects(store.resolve('big:1'), { code: 'BERTH_IMAGE_NOT_FOUND' });
  });

  it('import: a rootfs tarball bigger than the disk', async () => {
    const before = snapshot();
    const freeBefore = freeBytes(mnt);
    const big = tarOfDir({ 'a/blob': randomBytes(5 << 20) });
    await assert.rejects(store.importTar(Readable.from([big]), { repo: 'imported', tag: '', message: '', changes: [] }), assertEnospc);
    await assertUnchanged(before, freeBefore);
  });

  it('load: the archive itself does not fit; then the space is there for a layer that does', async () => {
    const before = snapshot();
    const freeBefore = freeBytes(mnt);
    const layer = tarOfDir({ blob: randomBytes(5 << 20) });
    const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(layer)] } }));
    const name = `${sha(cfg).slice(7)}.json`;
    const archive = tarOfDir({ [name]: cfg, 'l/layer.tar': layer, 'manifest.json': JSON.stringify([{ Config: name, RepoTags: ['loaded:1'], Layers: ['l/layer.tar'] }]) });
    await assert.rejects(loadArchive(store, Readable.from([archive]), { quiet: true, tmpRoot: path.join(storeRoot, 'tmp') }, () => undefined), assertEnospc);
    assert.deepEqual(snapshot(), before);
    assert.deepEqual(tree(path.join(storeRoot, 'tmp')), [], 'the extracted archive is removed');
    assert.ok(Math.abs(freeBytes(mnt) - freeBefore) <= 64 << 10);
    // The space really is free again: a small image goes in.
    const small = tarOfDir({ fits: randomBytes(1 << 20) });
    const id = await store.importTar(Readable.from([small]), { repo: 'fits', tag: '', message: '', changes: [] });
    assert.deepEqual((await store.inspect(id)).RootFS.Layers, [sha(small)]);
  });
});
