import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FS_TOPDIR_FL, FsMagic, MNT_DETACH } from '@berth/native';
import { RecordingSyscalls } from '@berth/native/testing';
import { BerthError } from '@berth/errors';
import type { DriverLogger } from '@berth/plugin-api';
import { Overlay2Driver, shortId } from './driver.js';
import { skipReason } from './probe.js';

const silent: DriverLogger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  trace() {},
  child() {
    return silent;
  },
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `berth-ov2-unit-${process.pid}-`));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A fake kernel whose statfs says "overlay" for the mount points it has mounted. */
function fakeKernel(): RecordingSyscalls & { mounted: Set<string> } {
  const sys = new RecordingSyscalls() as RecordingSyscalls & { mounted: Set<string> };
  sys.mounted = new Set();
  sys.respond('mount', (_src, target) => void sys.mounted.add(target));
  sys.respond('umount2', (target) => void sys.mounted.delete(target));
  sys.respond('statfs', (p) => ({ type: sys.mounted.has(p) ? FsMagic.OVERLAYFS : FsMagic.EXT4, bsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, flags: 0 }));
  return sys;
}

let n = 0;
async function fresh(opts: { pageSize?: number } = {}): Promise<{ d: Overlay2Driver; sys: ReturnType<typeof fakeKernel>; root: string }> {
  const root = path.join(tmp, `r${n++}`);
  const sys = fakeKernel();
  const d = new Overlay2Driver({ root, logger: silent, sys, privateHome: false, mountOptions: ['index=off'], ...opts });
  await d.init();
  return { d, sys, root };
}

describe('overlay2 layout', () => {
  it('init marks the home as the top of a hierarchy (chattr +T: each layer dir in its own block group), and starts without it', async () => {
    const { root, sys } = await fresh();
    assert.deepEqual(sys.callsTo('inodeFlags').map((c) => c.args), [[root, FS_TOPDIR_FL, 0]]);
    assert.equal(sys.inodeFlags(root, 0, 0) & FS_TOPDIR_FL, FS_TOPDIR_FL);
    const refused = fakeKernel().failOn('inodeFlags', 'EOPNOTSUPP');
    await new Overlay2Driver({ root: path.join(tmp, `r${n++}`), logger: silent, sys: refused, privateHome: false }).init();
    assert.equal(refused.callsTo('inodeFlags').length, 1);
  });

  it('short ids are 26 base32 characters', () => {
    for (let i = 0; i < 20; i++) assert.match(shortId(), /^[A-Z2-7]{26}$/);
  });

  it('create writes diff, link, the l/ symlink and lower (nearest parent first)', async () => {
    const { d, root } = await fresh();
    await d.create('base', '');
    await d.create('mid', 'base');
    await d.createReadWrite('top', 'mid');
    const link = (id: string): string => fs.readFileSync(path.join(root, id, 'link'), 'utf8');
    for (const id of ['base', 'mid', 'top']) {
      assert.match(link(id), /^[A-Z2-7]{26}$/);
      assert.equal(fs.readlinkSync(path.join(root, 'l', link(id))), `../${id}/diff`);
      assert.ok(fs.statSync(path.join(root, id, 'diff')).isDirectory());
    }
    assert.equal(fs.existsSync(path.join(root, 'base', 'lower')), false);
    assert.equal(fs.existsSync(path.join(root, 'base', 'work')), false);
    assert.equal(fs.readFileSync(path.join(root, 'mid', 'lower'), 'utf8'), `l/${link('base')}`);
    assert.equal(fs.readFileSync(path.join(root, 'top', 'lower'), 'utf8'), `l/${link('mid')}:l/${link('base')}`);
    assert.ok(fs.statSync(path.join(root, 'top', 'work')).isDirectory());
    assert.ok(fs.statSync(path.join(root, 'top', 'merged')).isDirectory());
    assert.deepEqual(await d.getMetadata('top'), {
      LowerDir: `${root}/mid/diff:${root}/base/diff`,
      UpperDir: `${root}/top/diff`,
      WorkDir: `${root}/top/work`,
      MergedDir: `${root}/top/merged`,
    });
    assert.equal((await d.getMetadata('base')).LowerDir, undefined);
  });

  it('refuses a duplicate id, a missing parent, bad ids and storage options', async () => {
    const { d, root } = await fresh();
    await d.create('a', '');
    await assert.rejects(d.create('a', ''), /already exists/);
    await assert.rejects(d.create('b', 'nope'), (e: unknown) => e instanceof BerthError && e.code === 'BERTH_LAYER_NOT_FOUND');
    await assert.rejects(d.create('../x', ''), (e: unknown) => e instanceof BerthError && e.code === 'BERTH_INVALID_ARGUMENT');
    await assert.rejects(d.create('c', '', { storageOpt: { size: '1G' } }), /storage-opt/);
    assert.deepEqual(fs.readdirSync(root).sort(), ['a', 'l']);
  });
});

describe('overlay2 mounts (fake kernel)', () => {
  let env: Awaited<ReturnType<typeof fresh>>;
  beforeEach(async () => {
    env = await fresh();
    await env.d.create('base', '');
    await env.d.create('mid', 'base');
    await env.d.create('top', 'mid');
  });

  it('get mounts once with absolute short-link lowerdirs; the last put unmounts', async () => {
    const { d, sys, root } = env;
    const p1 = await d.get('top');
    const p2 = await d.get('top');
    assert.equal(p1, path.join(root, 'top', 'merged'));
    assert.equal(p2, p1);
    const mounts = sys.callsTo('mount');
    assert.equal(mounts.length, 1);
    const [src, target, fstype, flags, data] = mounts[0]!.args;
    assert.deepEqual([src, target, fstype, flags], ['overlay', p1, 'overlay', 0]);
    const link = (id: string): string => fs.readFileSync(path.join(root, id, 'link'), 'utf8');
    assert.equal(data, `lowerdir=${root}/l/${link('mid')}:${root}/l/${link('base')},upperdir=${root}/top/diff,workdir=${root}/top/work,index=off`);
    await d.put('top');
    assert.equal(sys.callsTo('umount2').length, 0);
    await d.put('top');
    assert.deepEqual(sys.callsTo('umount2').map((c) => c.args), [[p1, MNT_DETACH]]);
    await d.put('top'); // one too many: harmless
    assert.equal(sys.callsTo('umount2').length, 1);
  });

  it('concurrent gets mount once', async () => {
    const { d, sys } = env;
    const paths = await Promise.all([d.get('top'), d.get('top'), d.get('top')]);
    assert.equal(new Set(paths).size, 1);
    assert.equal(sys.callsTo('mount').length, 1);
    await Promise.all([d.put('top'), d.put('top'), d.put('top')]);
    assert.equal(sys.callsTo('umount2').length, 1);
  });

  it('a base layer is its diff dir, nothing mounted', async () => {
    const { d, sys, root } = env;
    assert.equal(await d.get('base'), path.join(root, 'base', 'diff'));
    await d.put('base');
    assert.equal(sys.callsTo('mount').length + sys.callsTo('umount2').length, 0);
  });

  it('adopts a mount left by an earlier daemon instead of stacking another', async () => {
    const { d, sys, root } = env;
    sys.mounted.add(path.join(root, 'top', 'merged'));
    await d.get('top');
    assert.equal(sys.callsTo('mount').length, 0);
    await d.put('top');
    assert.equal(sys.callsTo('umount2').length, 1);
  });

  it('remove unmounts and deletes the layer and its short link', async () => {
    const { d, sys, root } = env;
    const link = fs.readFileSync(path.join(root, 'top', 'link'), 'utf8');
    await d.get('top');
    await d.remove('top');
    assert.equal(sys.callsTo('umount2').length, 1);
    assert.equal(fs.existsSync(path.join(root, 'top')), false);
    assert.equal(fs.existsSync(path.join(root, 'l', link)), false);
    assert.equal(await d.exists('top'), false);
    await d.remove('top'); // gone already: fine
    await d.settled();
    assert.deepEqual(fs.readdirSync(root).filter((n) => n.startsWith('.removing-')), []);
  });

  it('a removed layer is renamed away at once and deleted after; init deletes what a stopped daemon left', async () => {
    const { d, root } = env;
    fs.writeFileSync(path.join(root, 'top', 'diff', 'big'), 'x');
    await d.remove('top');
    const doomed = fs.readdirSync(root).filter((n) => n.startsWith('.removing-'));
    assert.equal(fs.existsSync(path.join(root, 'top')), false);
    await d.settled();
    assert.deepEqual(fs.readdirSync(root).filter((n) => n.startsWith('.removing-')), []);
    assert.ok(doomed.length <= 1);
    // A daemon killed between the rename and the delete leaves such a dir behind.
    fs.mkdirSync(path.join(root, '.removing-mid-0000', 'diff'), { recursive: true });
    const again = new Overlay2Driver({ root, logger: silent, sys: fakeKernel(), privateHome: false });
    await again.init();
    await again.settled();
    assert.equal(fs.existsSync(path.join(root, '.removing-mid-0000')), false);
    assert.equal(await again.exists('mid'), true);
  });

  it('cleanup unmounts everything still held', async () => {
    const { d, sys } = env;
    await d.get('top');
    await d.get('top');
    await d.get('mid');
    await d.cleanup();
    assert.equal(sys.callsTo('umount2').length, 2);
    assert.equal(sys.mounted.size, 0);
  });

  it('a mount failure is a BERTH_STORAGE error and leaves nothing counted', async () => {
    const { d, sys } = env;
    let failing = true;
    sys.failOn('mount', 'EINVAL', () => failing);
    await assert.rejects(d.get('top'), (e: unknown) => e instanceof BerthError && e.code === 'BERTH_STORAGE' && /mount layer top/.test(e.message));
    failing = false;
    await d.get('top');
    await d.put('top');
    assert.equal(sys.mounted.size, 0);
  });

  it('status reports the backing filesystem and the overlay facts', async () => {
    assert.deepEqual(Object.fromEntries(await env.d.status()), {
      'Backing Filesystem': 'extfs',
      'Supports d_type': 'true',
      'Using metacopy': 'false',
      'Native Overlay Diff': 'true',
      userxattr: 'false',
    });
  });
});

describe('overlay2 skip decision', () => {
  const ok = { kernelHasOverlay: true, backingFs: FsMagic.EXT4, dType: true, testMountError: null };
  it('applies on ext4 with overlayfs and a working test mount', () => {
    assert.equal(skipReason(ok), null);
    assert.equal(skipReason({ ...ok, backingFs: FsMagic.TMPFS, dType: null }), null);
  });
  it('skips without overlayfs, on overlay or aufs, without d_type, or when the test mount fails', () => {
    assert.match(skipReason({ ...ok, kernelHasOverlay: false })!, /no overlayfs/);
    assert.match(skipReason({ ...ok, backingFs: FsMagic.OVERLAYFS })!, /overlayfs cannot hold/);
    assert.match(skipReason({ ...ok, backingFs: FsMagic.AUFS })!, /aufs/);
    assert.match(skipReason({ ...ok, backingFs: FsMagic.XFS, dType: false })!, /d_type/);
    assert.match(skipReason({ ...ok, testMountError: 'EINVAL: mount' })!, /test overlay mount failed: EINVAL/);
  });
});
