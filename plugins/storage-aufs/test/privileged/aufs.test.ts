import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readTar } from '@berth/archive';
import { FS_TOPDIR_FL, FsMagic, realSyscalls } from '@berth/native';
import { isDriverSkip, type DriverLogger, type GraphDriver } from '@berth/plugin-api';
import { aufsDriver } from '@berth/storage-aufs';

const silent: DriverLogger = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silent };
const isRoot = process.getuid?.() === 0;

const mountsUnder = (dir: string): string[] =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp === dir || mp.startsWith(`${dir}/`));

/** fuse-overlayfs processes serving a mount below `dir` (their command line names it). */
const fuseDaemonsFor = (dir: string): number[] =>
  fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return cmd.startsWith('fuse-overlayfs') && cmd.includes(dir) && !fs.readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z ');
      } catch {
        return false;
      }
    })
    .map(Number);

function tarFrom(work: string, fill: (dir: string) => void): Readable {
  const dir = fs.mkdtempSync(path.join(work, 'src-'));
  fill(dir);
  const buf = execFileSync('tar', ['-C', dir, '--numeric-owner', '--sort=name', '-cf', '-', '.']);
  fs.rmSync(dir, { recursive: true });
  return Readable.from([buf]);
}

const tree = (dir: string): string[] => {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const st = fs.lstatSync(path.join(dir, r));
      out.push(st.isCharacterDevice() ? `${r} (char ${st.rdev})` : r);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
};

// One probe for the file: without aufs and without fuse-overlayfs the driver skips, and so does this.
const probeDir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-aufs-probe-${process.pid}-`));
const probe = isRoot ? await aufsDriver.create({ root: path.join(probeDir, 'aufs'), logger: silent }) : { skip: 'needs root (union mounts)' };
if (!isDriverSkip(probe)) await (probe as GraphDriver).cleanup();
fs.rmSync(probeDir, { recursive: true, force: true });

describe('aufs driver on real union mounts', { skip: isDriverSkip(probe) ? probe.skip : false }, () => {
  let work: string;
  let root: string;
  let d: GraphDriver;

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), `berth-aufs-${process.pid}-`));
    root = path.join(work, 'aufs');
    d = (await aufsDriver.create({ root, logger: silent })) as GraphDriver;
  });
  after(async () => {
    await d.cleanup();
    assert.deepEqual(mountsUnder(work), [], 'mounts left');
    // A fuse-overlayfs daemon exits on its own once its mount is gone: give it a moment.
    for (let i = 0; i < 40 && fuseDaemonsFor(work).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(fuseDaemonsFor(work), [], 'fuse-overlayfs daemons left');
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('status says which union is in use', async () => {
    const st = Object.fromEntries(await d.status());
    const kernel = /\taufs$/m.test(fs.readFileSync('/proc/filesystems', 'utf8'));
    assert.equal(st.Union, kernel ? 'aufs' : 'fuse-overlayfs');
    assert.equal(st['Root Dir'], root);
  });

  it('marks diff/ as the top of a hierarchy on ext4 (chattr +T: each layer in its own block group)', (t) => {
    const dir = path.join(root, 'diff');
    if (realSyscalls().statfs(dir).type !== FsMagic.EXT4) return t.skip('the temp dir is not on ext4');
    assert.equal(realSyscalls().inodeFlags(dir, 0, 0) & FS_TOPDIR_FL, FS_TOPDIR_FL);
  });

  it('what a container deletes and makes opaque is kept in its branch as aufs whiteouts, and Diff carries them', async () => {
    await d.create('base', '');
    await d.applyDiff('base', '', tarFrom(work, (s) => {
      fs.mkdirSync(path.join(s, 'etc'));
      fs.writeFileSync(path.join(s, 'etc/gone'), 'g');
      fs.writeFileSync(path.join(s, 'etc/keep'), 'k');
      fs.mkdirSync(path.join(s, 'cache/sub'), { recursive: true });
      fs.writeFileSync(path.join(s, 'cache/sub/old'), 'o');
      fs.mkdirSync(path.join(s, 'var'));
    }));
    await d.createReadWrite('ctr', 'base');
    const v = await d.get('ctr');
    fs.rmSync(path.join(v, 'etc/gone'));
    fs.rmSync(path.join(v, 'cache'), { recursive: true });
    fs.mkdirSync(path.join(v, 'cache'));
    fs.writeFileSync(path.join(v, 'cache/new'), 'n');
    fs.rmSync(path.join(v, 'var'), { recursive: true });
    assert.deepEqual(tree(v), ['cache', 'cache/new', 'etc', 'etc/keep']);
    await d.put('ctr');
    // At rest the branch is an aufs branch: files named .wh.*, no devices, no fuse-overlayfs markers.
    const branch = tree(path.join(root, 'diff/ctr'));
    assert.deepEqual(branch, ['.wh.var', 'cache', 'cache/.wh..wh..opq', 'cache/new', 'etc', 'etc/.wh.gone']);
    // Mounted again, the view is the same.
    assert.deepEqual(tree(await d.get('ctr')), ['cache', 'cache/new', 'etc', 'etc/keep']);
    await d.put('ctr');
    const names: string[] = [];
    for await (const e of readTar(await d.diff('ctr', 'base'))) {
      names.push(e.header.name);
      for await (const _ of e.body) void _;
    }
    assert.deepEqual(names, ['.wh.var', 'cache/', 'cache/.wh..wh..opq', 'cache/new', 'etc/', 'etc/.wh.gone']);
    assert.deepEqual((await d.changes('ctr', 'base')).map((c) => `${c.kind} ${c.path}`), ['0 /cache', '1 /cache/new', '0 /etc', '2 /etc/gone', '2 /var']);
  });

  it('a mount left by an earlier daemon is adopted, not stacked, and released by put', async () => {
    await d.create('adopt-base', '');
    await d.create('adopt', 'adopt-base');
    const v = await d.get('adopt');
    const before = mountsUnder(v).length;
    const second = (await aufsDriver.create({ root, logger: silent })) as GraphDriver;
    assert.equal(await second.get('adopt'), v);
    assert.equal(mountsUnder(v).length, before, 'no second mount');
    await second.put('adopt');
    assert.deepEqual(mountsUnder(v), []);
    // The first instance's count still says 1; its put finds nothing mounted and is harmless.
    await d.put('adopt');
  });

  it('mount timings: a container layer on 1, 16 and 128 image layers', async () => {
    const times: string[] = [];
    let parent = '';
    for (let i = 0; i < 128; i++) {
      const id = `t${String(i).padStart(3, '0')}`.padEnd(64, 'f');
      await d.create(id, parent);
      fs.writeFileSync(path.join(root, 'diff', id, `f${i}`), String(i));
      parent = id;
      if (i === 0 || i === 15 || i === 127) {
        const rw = `rw${i}`;
        await d.createReadWrite(rw, parent);
        const samples: number[] = [];
        for (let k = 0; k < 5; k++) {
          const t0 = performance.now();
          const v = await d.get(rw);
          samples.push(performance.now() - t0);
          assert.ok(fs.existsSync(path.join(v, 'f0')));
          const u0 = performance.now();
          await d.put(rw);
          samples.push(-(performance.now() - u0));
        }
        const mounts = samples.filter((s) => s > 0).sort((a, b) => a - b);
        const umounts = samples.filter((s) => s < 0).map((s) => -s).sort((a, b) => a - b);
        times.push(`${i + 1} layers: mount median ${mounts[2]!.toFixed(1)} ms, unmount median ${umounts[2]!.toFixed(1)} ms`);
        assert.ok(mounts[2]! < 1000, `mount took ${mounts[2]} ms`);
      }
    }
    process.stdout.write(`# aufs (${Object.fromEntries(await d.status()).Union}) ${times.join('; ')}\n`);
  });
});
