import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FS_TOPDIR_FL, FsMagic, realSyscalls, S_IFCHR } from '@berth/native';
import { isDriverSkip, type DriverLogger } from '@berth/plugin-api';
import { vfsDriver, VfsDriver } from '@berth/storage-vfs';

const BUSYBOX_TAR = '/var/lib/berth/fixtures/busybox.tar';
const root = process.getuid?.() === 0;

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

/** Everything lstat and readlink say about a tree, keyed by relative path. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const sys = realSyscalls();
  const inodes = new Map<number, string>();
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const p = path.join(dir, r);
      const st = fs.lstatSync(p);
      const link = st.isSymbolicLink() ? fs.readlinkSync(p) : '';
      let hard = '';
      if (st.isFile() && st.nlink > 1) {
        hard = inodes.get(st.ino) ?? '';
        if (hard === '') inodes.set(st.ino, r);
      }
      const content = st.isFile() ? fs.readFileSync(p).toString('base64').slice(0, 64) + st.size : '';
      const xattr = st.isSymbolicLink() ? '' : (sys.lgetxattr(p, 'user.berth')?.toString('hex') ?? '') + '|' + (sys.lgetxattr(p, 'security.capability')?.toString('hex') ?? '');
      const times = st.isDirectory() ? '' : String(Math.floor(st.mtimeMs / 1000));
      out.set(r, [st.mode.toString(8), st.uid, st.gid, st.rdev, st.nlink, link, hard, content, xattr, times].join(' '));
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

describe('vfs driver (privileged)', { skip: !root && 'needs root' }, () => {
  let home: string;
  let driver: VfsDriver;
  const tmpBefore = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('berth-vfs-priv-')).length;

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), `berth-vfs-priv-${process.pid}-`));
    const d = await vfsDriver.create({ root: path.join(home, 'vfs'), logger: silent });
    assert.ok(!isDriverSkip(d));
    driver = d as VfsDriver;
  });
  after(() => {
    fs.rmSync(home, { recursive: true, force: true });
    assert.equal(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('berth-vfs-priv-')).length, tmpBefore, 'temp dirs left');
  });

  it('lays layers out as <root>/dir/<id> with a 0700 dir/', async () => {
    await driver.create('base-layout', '');
    const p = await driver.get('base-layout');
    assert.equal(p, path.join(home, 'vfs', 'dir', 'base-layout'));
    assert.equal(fs.statSync(path.join(home, 'vfs', 'dir')).mode & 0o777, 0o700);
    assert.equal(await driver.exists('base-layout'), true);
    await driver.remove('base-layout');
    assert.equal(await driver.exists('base-layout'), false);
    await assert.rejects(driver.get('base-layout'), { code: 'BERTH_LAYER_NOT_FOUND' });
    await assert.rejects(driver.create('../evil', ''), { code: 'BERTH_INVALID_ARGUMENT' });
  });

  it('marks dir/ as the top of a hierarchy on ext4 (chattr +T: each layer in its own block group)', (t) => {
    const dir = path.join(home, 'vfs', 'dir');
    if (realSyscalls().statfs(dir).type !== FsMagic.EXT4) return t.skip('the temp dir is not on ext4');
    assert.equal(realSyscalls().inodeFlags(dir, 0, 0) & FS_TOPDIR_FL, FS_TOPDIR_FL);
  });

  it('copies a parent faithfully: modes, owners, symlinks, hard links, a device node, xattrs, times', async () => {
    await driver.create('fid-parent', '');
    const p = await driver.get('fid-parent');
    const sys = realSyscalls();
    fs.mkdirSync(path.join(p, 'tmp'));
    fs.chmodSync(path.join(p, 'tmp'), 0o1777);
    fs.writeFileSync(path.join(p, 'suid'), 'x');
    fs.chownSync(path.join(p, 'suid'), 1234, 5678);
    fs.chmodSync(path.join(p, 'suid'), 0o4755);
    fs.symlinkSync('/usr/share/zoneinfo/UTC', path.join(p, 'localtime'));
    fs.lchownSync(path.join(p, 'localtime'), 42, 43);
    fs.writeFileSync(path.join(p, 'h1'), 'hard');
    fs.linkSync(path.join(p, 'h1'), path.join(p, 'h2'));
    sys.mknod(path.join(p, 'null'), S_IFCHR | 0o666, 1, 3);
    sys.lsetxattr(path.join(p, 'h1'), 'user.berth', Buffer.from([0xff, 0x00, 0x01]), 0);
    sys.lsetxattr(path.join(p, 'suid'), 'security.capability', Buffer.from('0100000200200000000000000000000000000000', 'hex'), 0);
    fs.chmodSync(path.join(p, 'suid'), 0o4755);
    fs.utimesSync(path.join(p, 'h1'), 1_600_000_000, 1_600_000_000);
    const want = snapshot(p);

    await driver.createReadWrite('fid-child', 'fid-parent');
    const c = await driver.get('fid-child');
    assert.deepEqual(snapshot(c), want);
    assert.equal(fs.statSync(path.join(c, 'h1')).ino, fs.statSync(path.join(c, 'h2')).ino);
    assert.notEqual(fs.statSync(path.join(c, 'h1')).ino, fs.statSync(path.join(p, 'h1')).ino, 'a copy, not a link to the parent');
    // the child is independent of the parent
    fs.writeFileSync(path.join(c, 'h1'), 'changed');
    assert.equal(fs.readFileSync(path.join(p, 'h1'), 'utf8'), 'hard');
    const changes = await driver.changes('fid-child', 'fid-parent');
    assert.deepEqual(changes.map((x) => `${x.kind} ${x.path}`).sort(), ['0 /h1', '0 /h2']);

    // diff + applyDiff reproduce the tree (device node and xattrs included)
    const full = await driver.diff('fid-parent', '');
    await driver.create('fid-copy', '');
    await driver.applyDiff('fid-copy', '', full);
    const got = snapshot(await driver.get('fid-copy'));
    // Docker's archiver carries security.capability only; user.* xattrs are not in layer tars.
    const norm = (m: Map<string, string>): Map<string, string> => new Map([...m].map(([k, v]) => [k, v.replace(/ ff0001\|/, ' |')]));
    assert.deepEqual(got, norm(want));
    for (const id of ['fid-parent', 'fid-child', 'fid-copy']) await driver.remove(id);
  });

  it('diff against a parent carries changes and whiteouts that applyDiff replays', async () => {
    await driver.create('d-base', '');
    const b = await driver.get('d-base');
    fs.mkdirSync(path.join(b, 'etc'));
    fs.writeFileSync(path.join(b, 'etc/keep'), 'k');
    fs.writeFileSync(path.join(b, 'etc/gone'), 'g');
    fs.writeFileSync(path.join(b, 'etc/mod'), 'm1');
    await driver.createReadWrite('d-top', 'd-base');
    const t = await driver.get('d-top');
    fs.rmSync(path.join(t, 'etc/gone'));
    fs.writeFileSync(path.join(t, 'etc/mod'), 'm2-longer');
    fs.writeFileSync(path.join(t, 'new'), 'n');
    const kinds = (await driver.changes('d-top', 'd-base')).map((x) => `${x.kind} ${x.path}`);
    // Docker's rule: /etc holds changes, so it is itself modified.
    assert.deepEqual(kinds, ['0 /etc', '2 /etc/gone', '0 /etc/mod', '1 /new']);
    assert.equal(await driver.diffSize('d-top', 'd-base'), 'm2-longer'.length + 1);
    const tar = await driver.diff('d-top', 'd-base');
    await driver.create('d-replay', 'd-base');
    await driver.applyDiff('d-replay', '', tar);
    const r = await driver.get('d-replay');
    assert.deepEqual(fs.readdirSync(path.join(r, 'etc')).sort(), ['keep', 'mod']);
    assert.equal(fs.readFileSync(path.join(r, 'etc/mod'), 'utf8'), 'm2-longer');
    assert.equal(fs.readFileSync(path.join(r, 'new'), 'utf8'), 'n');
    for (const id of ['d-base', 'd-top', 'd-replay']) await driver.remove(id);
  });

  it('applies the busybox tarball and copies it fast for a container layer', { skip: !fs.existsSync(BUSYBOX_TAR) && `no ${BUSYBOX_TAR}` }, async () => {
    await driver.create('bb', '');
    const size = await driver.applyDiff('bb', '', fs.createReadStream(BUSYBOX_TAR));
    const bb = await driver.get('bb');
    assert.ok(size > 500_000, `size ${size}`);
    assert.equal(fs.readlinkSync(path.join(bb, 'bin/sh')), '/bin/busybox');
    assert.equal(fs.statSync(path.join(bb, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(fs.statSync(path.join(bb, 'home/user')).uid, 1000);
    // same tree as GNU tar extracts
    const ref = path.join(home, 'gnu');
    fs.mkdirSync(ref);
    execFileSync('tar', ['-C', ref, '--numeric-owner', '-xpf', BUSYBOX_TAR]);
    const norm = (m: Map<string, string>): string[] => [...m].map(([k, v]) => `${k} ${v}`);
    assert.deepEqual(norm(snapshot(bb)), norm(snapshot(ref)));

    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await driver.createReadWrite(`bb-rw-${i}`, 'bb');
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const median = times[2]!;
    process.stdout.write(`# vfs container layer copy of busybox rootfs: median ${median.toFixed(1)} ms (${times.map((t) => t.toFixed(1)).join(', ')})\n`);
    assert.ok(median < 500, `copy took ${median} ms`);
    assert.deepEqual(norm(snapshot(await driver.get('bb-rw-0'))), norm(snapshot(bb)));
    for (let i = 0; i < 5; i++) await driver.remove(`bb-rw-${i}`);
    await driver.remove('bb');
    assert.deepEqual(fs.readdirSync(path.join(home, 'vfs', 'dir')), []);
  });
});
