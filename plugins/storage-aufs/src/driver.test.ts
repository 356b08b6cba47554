import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FsMagic } from '@berth/native';
import { RecordingSyscalls } from '@berth/native/testing';
import { BerthError } from '@berth/errors';
import { ChangeKind, type DriverLogger } from '@berth/plugin-api';
import { AufsDriver } from './driver.js';
import { chooseUnion, type AufsFacts } from './probe.js';
import { aufsMountPlan, fuseOverlayOptions, type RunProgram, type UnionKind } from './union.js';
import { branchChanges, normalizeBranch } from './whiteouts.js';

const silent: DriverLogger = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silent };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `berth-aufs-unit-${process.pid}-`));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = path.join(tmp, `t${n++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
};
const write = (dir: string, rel: string, content = ''): void => {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), content);
};
const tree = (dir: string): string[] => {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      out.push(r);
      if (e.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
};

describe('aufs mount data', () => {
  it('fits the branches in one page and appends the rest as Docker does', () => {
    const ro = Array.from({ length: 128 }, (_, i) => `/var/lib/berth/aufs/diff/${String(i).padStart(64, '0')}`);
    const plan = aufsMountPlan({ rw: '/var/lib/berth/aufs/diff/top', ro, mountPoint: '/m', work: '/w' });
    assert.ok(Buffer.byteLength(plan.first) < 4096);
    assert.match(plan.first, /^dio,xino=\/dev\/shm\/aufs\.xino,br:\/var\/lib\/berth\/aufs\/diff\/top=rw:/);
    const inFirst = plan.first.split('=ro+wh').length - 1;
    assert.equal(inFirst + plan.appends.length, 128);
    assert.equal(plan.appends[0], `append:${ro[inFirst]}=ro+wh`);
    assert.deepEqual(aufsMountPlan({ rw: '/a', ro: ['/b', '/c'], mountPoint: '/m', work: '/w' }), { first: 'dio,xino=/dev/shm/aufs.xino,br:/a=rw:/b=ro+wh:/c=ro+wh', appends: [] });
  });

  it('gives fuse-overlayfs the same branches, nearest parent first', () => {
    assert.equal(
      fuseOverlayOptions({ rw: '/d/top', ro: ['/d/p1', '/d/p2'], mountPoint: '/m', work: '/w/top' }),
      'lowerdir=/d/p1:/d/p2,upperdir=/d/top,workdir=/w/top,allow_other,dev,suid',
    );
  });
});

describe('aufs union choice', () => {
  const none: AufsFacts = { kernelHasAufs: false, devFuse: true, fuseOverlayfs: '/usr/bin/fuse-overlayfs', backingFs: FsMagic.EXT4, testMountError: null };
  it('prefers kernel aufs, else fuse-overlayfs', () => {
    assert.deepEqual(chooseUnion({ ...none, kernelHasAufs: true }), { union: 'aufs' });
    assert.deepEqual(chooseUnion(none), { union: 'fuse-overlayfs' });
  });
  it('skips with the reason when neither works', () => {
    const r = chooseUnion({ ...none, devFuse: false, fuseOverlayfs: null });
    assert.ok('skip' in r);
    assert.match(r.skip, /no aufs .*\/dev\/fuse is not available and fuse-overlayfs is not installed/);
    assert.match((chooseUnion({ ...none, fuseOverlayfs: null }) as { skip: string }).skip, /fuse-overlayfs is not installed \(Debian package fuse-overlayfs\)/);
    assert.match((chooseUnion({ ...none, testMountError: 'boom' }) as { skip: string }).skip, /test fuse-overlayfs mount .*boom/);
    assert.match((chooseUnion({ ...none, backingFs: FsMagic.AUFS }) as { skip: string }).skip, /backing filesystem is aufs/);
  });
});

describe('aufs whiteouts', () => {
  it('normalizeBranch marks opaque directories (xattr) with .wh..wh..opq and keeps .wh. files', async () => {
    const d = fresh();
    write(d, 'keep/.wh.gone');
    write(d, 'opq/new', 'n');
    write(d, '.wh..wh.plnk/x');
    const sys = new RecordingSyscalls();
    sys.respond('lgetxattr', (p, name) => (p === path.join(d, 'opq') && name === 'trusted.overlay.opaque' ? Buffer.from('y') : null));
    assert.equal(await normalizeBranch(d, sys), 1);
    assert.deepEqual(tree(d), ['.wh..wh.plnk', '.wh..wh.plnk/x', 'keep', 'keep/.wh.gone', 'opq', 'opq/.wh..wh..opq', 'opq/new']);
    assert.equal(await normalizeBranch(d, sys), 0, 'idempotent');
  });

  it('branchChanges: .wh. deletes what the lower branches show; opaque dirs and parents by Docker’s rule', async () => {
    const root = fresh();
    const [top, mid, base] = ['top', 'mid', 'base'].map((b) => path.join(root, b)) as [string, string, string];
    write(base, 'etc/passwd', 'root');
    write(base, 'etc/group', 'g');
    write(base, 'o/old', 'x');
    write(base, 'hidden/f');
    write(mid, '.wh.hidden');
    write(top, 'etc/passwd', 'root2');
    write(top, 'etc/.wh.group');
    write(top, 'o/.wh..wh..opq');
    write(top, 'o/new');
    write(top, '.wh.hidden'); // already hidden below: no change
    write(top, 'hidden/again');
    write(top, '.wh..wh.plnk/x');
    const got = (await branchChanges(top, [mid, base])).map((c) => `${c.kind} ${c.path}`);
    assert.deepEqual(got, [
      `${ChangeKind.Modify} /etc`,
      `${ChangeKind.Delete} /etc/group`,
      `${ChangeKind.Modify} /etc/passwd`,
      `${ChangeKind.Add} /hidden`,
      `${ChangeKind.Add} /hidden/again`,
      `${ChangeKind.Modify} /o`,
      `${ChangeKind.Add} /o/new`,
    ]);
  });
});

/** A driver on a fake kernel and a recording program runner. */
function fakeDriver(union: UnionKind): { d: AufsDriver; sys: RecordingSyscalls; runs: string[][]; root: string } {
  const root = path.join(fresh(), 'aufs');
  const sys = new RecordingSyscalls();
  const runs: string[][] = [];
  const run: RunProgram = async (file, args) => {
    runs.push([file, ...args]);
    return { stderr: '' };
  };
  return { d: new AufsDriver({ root, logger: silent, sys, union, run, privateHome: false }), sys, runs, root };
}

describe('aufs layout and mounts (fake kernel)', () => {
  it('create writes diff/, mnt/, work/ and layers/<id> with the parents nearest first', async () => {
    const { d, root } = fakeDriver('fuse-overlayfs');
    await d.init();
    await d.create('base', '');
    await d.create('mid', 'base');
    await d.createReadWrite('top', 'mid');
    assert.equal(fs.readFileSync(path.join(root, 'layers/base'), 'utf8'), '');
    assert.equal(fs.readFileSync(path.join(root, 'layers/mid'), 'utf8'), 'base\n');
    assert.equal(fs.readFileSync(path.join(root, 'layers/top'), 'utf8'), 'mid\nbase\n');
    for (const id of ['base', 'mid', 'top']) for (const dir of ['diff', 'mnt', 'work']) assert.ok(fs.statSync(path.join(root, dir, id)).isDirectory());
    await assert.rejects(d.create('top', 'mid'), /already exists/);
    await assert.rejects(d.create('x', 'nope'), (e: unknown) => e instanceof BerthError && e.code === 'BERTH_LAYER_NOT_FOUND');
    await assert.rejects(d.create('../x', ''), (e: unknown) => e instanceof BerthError && e.code === 'BERTH_INVALID_ARGUMENT');
    await assert.rejects(d.create('y', '', { storageOpt: { size: '1G' } }), /storage-opt/);
    await d.remove('top');
    for (const dir of ['diff', 'mnt', 'work', 'layers']) assert.equal(fs.existsSync(path.join(root, dir, 'top')), false);
  });

  it('fuse-overlayfs: one mount per layer however many gets; the last put unmounts', async () => {
    const { d, sys, runs, root } = fakeDriver('fuse-overlayfs');
    await d.init();
    await d.create('base', '');
    await d.create('top', 'base');
    const [a, b] = await Promise.all([d.get('top'), d.get('top')]);
    assert.equal(a, path.join(root, 'mnt/top'));
    assert.equal(b, a);
    assert.deepEqual(runs, [['fuse-overlayfs', '-o', `lowerdir=${root}/diff/base,upperdir=${root}/diff/top,workdir=${root}/work/top,allow_other,dev,suid`, `${root}/mnt/top`]]);
    await d.put('top');
    assert.equal(sys.callsTo('umount2').length, 0);
    await d.put('top');
    assert.deepEqual(sys.callsTo('umount2').map((c) => c.args), [[`${root}/mnt/top`, 0]]);
    // A base layer is its branch: nothing mounted.
    assert.equal(await d.get('base'), path.join(root, 'diff/base'));
    await d.put('base');
    assert.equal(runs.length, 1);
  });

  it('kernel aufs: mount(2) with the br: list, remount appends beyond a page', async () => {
    const { d, sys, root } = fakeDriver('aufs');
    await d.init();
    let parent = '';
    for (let i = 0; i < 60; i++) {
      const id = `${String(i).padStart(64, 'a')}`;
      await d.create(id, parent);
      parent = id;
    }
    await d.get(parent);
    const mounts = sys.callsTo('mount');
    assert.equal(mounts[0]!.args[2], 'aufs');
    assert.match(mounts[0]!.args[4]!, new RegExp(`br:${root}/diff/${parent}=rw:`));
    assert.ok(mounts.length > 1, 'some branches appended');
    assert.ok(mounts.slice(1).every((m) => m.args[3] === 32 && /^append:.*=ro\+wh$/.test(m.args[4]!)));
    assert.equal(mounts.length - 1 + mounts[0]!.args[4]!.split('=ro+wh').length - 1, 59);
    await d.put(parent);
    assert.equal(sys.callsTo('umount2').length, 1);
  });

  it('status names the union', async () => {
    const { d, sys } = fakeDriver('fuse-overlayfs');
    sys.respond('statfs', () => ({ type: FsMagic.EXT4, bsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, flags: 0 }));
    await d.init();
    await d.create('a', '');
    const st = Object.fromEntries(await d.status());
    assert.equal(st.Union, 'fuse-overlayfs');
    assert.equal(st['Backing Filesystem'], 'extfs');
    assert.equal(st.Dirs, '1');
    assert.deepEqual(await d.getMetadata('a'), {});
    await assert.rejects(d.getMetadata('b'), (e: unknown) => e instanceof BerthError && e.code === 'BERTH_LAYER_NOT_FOUND');
  });

  it('a failed mount is a BERTH_STORAGE error and nothing is counted', async () => {
    const { d, root } = fakeDriver('fuse-overlayfs');
    let fail = true;
    const failing = new AufsDriver({
      root,
      logger: silent,
      sys: new RecordingSyscalls(),
      union: 'fuse-overlayfs',
      privateHome: false,
      run: async () => {
        if (fail) throw Object.assign(new Error('exit 1'), { stderr: 'fuse: device not found' });
        return { stderr: '' };
      },
    });
    await d.init();
    await d.create('b', '');
    await d.create('t', 'b');
    await assert.rejects(failing.get('t'), (e: unknown) => e instanceof BerthError && e.code === 'BERTH_STORAGE' && /mount layer t: fuse: device not found/.test(e.message));
    fail = false;
    await failing.get('t');
    await failing.put('t');
  });
});
