import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readTar } from '@berth/archive';
import { FS_TOPDIR_FL, FsMagic, realSyscalls } from '@berth/native';
import { ChangeKind, isDriverSkip, type DriverLogger, type GraphDriver } from '@berth/plugin-api';
import { overlay2Driver } from '@berth/storage-overlay2';

const isRoot = process.getuid?.() === 0;
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

const mountLines = (needle: string): string[] =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(needle));

/** A layer tar made by GNU tar from a directory the callback fills (an independent tar writer). */
function tarFrom(work: string, fill: (dir: string) => void): Readable {
  const dir = fs.mkdtempSync(path.join(work, 'src-'));
  fill(dir);
  const buf = execFileSync('tar', ['-C', dir, '--numeric-owner', '--sort=name', '-cf', '-', '.'], { maxBuffer: 64 << 20 });
  fs.rmSync(dir, { recursive: true });
  return Readable.from([buf]);
}

function write(dir: string, rel: string, content = rel): void {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), content);
}

/** Everything lstat, readlink and the opaque xattr say about a tree. */
function snapshot(dir: string): Map<string, string> {
  const sys = realSyscalls();
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const p = path.join(dir, r);
      const st = fs.lstatSync(p);
      const opaque = st.isDirectory() ? (sys.lgetxattr(p, 'trusted.overlay.opaque')?.toString() ?? '') : '';
      const content = st.isFile() ? fs.readFileSync(p, 'utf8') : st.isSymbolicLink() ? fs.readlinkSync(p) : '';
      out.set(r, `${st.mode.toString(8)} ${st.uid}:${st.gid} rdev=${st.rdev} ${opaque} ${content}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

const tree = (dir: string): string[] => [...snapshot(dir).keys()];

describe('overlay2 driver on real overlay mounts', { skip: isRoot ? false : 'needs root' }, () => {
  let work: string;
  let root: string;
  let d: GraphDriver;
  let mountsBefore: string[];

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), `berth-ov2-${process.pid}-`));
    root = path.join(work, 'overlay2');
    mountsBefore = mountLines(work);
    const made = await overlay2Driver.create({ root, logger: silent });
    assert.ok(!isDriverSkip(made), `overlay2 skipped: ${isDriverSkip(made) ? made.skip : ''}`);
    d = made as GraphDriver;
    // The home is a private mount: nothing below it propagates.
    const home = mountLines(` ${root} `);
    assert.equal(home.length, 1);
    assert.doesNotMatch(home[0]!.split(' - ')[0]!, /shared:|master:/);
  });

  after(async () => {
    await d?.cleanup();
    assert.deepEqual(mountLines(work), mountsBefore, 'mounts left behind');
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('the home on ext4 carries the top-of-hierarchy flag (lsattr T): layer dirs are spread over block groups', (t) => {
    if (realSyscalls().statfs(root).type !== FsMagic.EXT4) return t.skip('the temp dir is not on ext4');
    assert.equal(realSyscalls().inodeFlags(root, 0, 0) & FS_TOPDIR_FL, FS_TOPDIR_FL);
  });

  it('a chain of 3 with a whiteout and an opaque dir in the middle merges correctly', async () => {
    await d.create('l1', '');
    await d.applyDiff(
      'l1',
      '',
      tarFrom(work, (s) => {
        for (const f of ['a/keep', 'a/gone', 'b/x', 'b/y', 'b/sub/z', 'c', 'top']) write(s, f);
      }),
    );
    await d.create('l2', 'l1');
    await d.applyDiff(
      'l2',
      'l1',
      tarFrom(work, (s) => {
        write(s, 'a/.wh.gone', '');
        write(s, 'a/added');
        write(s, 'b/.wh..wh..opq', '');
        write(s, 'b/new');
      }),
    );
    await d.create('l3', 'l2');
    await d.applyDiff('l3', 'l2', tarFrom(work, (s) => write(s, 'c', 'three')));

    // The middle layer holds overlay's own whiteout formats.
    const l2 = path.join(root, 'l2', 'diff');
    const gone = fs.lstatSync(path.join(l2, 'a/gone'));
    assert.ok(gone.isCharacterDevice() && gone.rdev === 0, 'a/gone is a 0/0 char device');
    assert.equal(realSyscalls().lgetxattr(path.join(l2, 'b'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(fs.existsSync(path.join(l2, 'a/.wh.gone')), false);

    await d.createReadWrite('rw', 'l3');
    const merged = await d.get('rw');
    try {
      assert.equal(merged, path.join(root, 'rw', 'merged'));
      assert.deepEqual(tree(merged), ['a', 'a/added', 'a/keep', 'b', 'b/new', 'c', 'top']);
      assert.equal(fs.readFileSync(path.join(merged, 'c'), 'utf8'), 'three');
      // The mount is private too.
      const line = mountLines(` ${merged} `);
      assert.equal(line.length, 1);
      assert.doesNotMatch(line[0]!.split(' - ')[0]!, /shared:|master:/);
      assert.match(line[0]!, / - overlay overlay /);
    } finally {
      await d.put('rw');
    }
    assert.equal(mountLines(merged).length, 0);
  });

  it('a throwaway (volatile) read-write layer mounts with overlayfs volatile, mounts again after put, and keeps its writes while mounted', async () => {
    await d.create('vbase', '');
    await d.applyDiff('vbase', '', tarFrom(work, (s) => write(s, 'etc/base', 'base')));
    await d.createReadWrite('vrw', 'vbase', { volatile: true });
    await d.createReadWrite('prw', 'vbase');
    const superOpts = (p: string): string => {
      const line = mountLines(` ${p} `);
      assert.equal(line.length, 1, `one mount at ${p}`);
      return line[0]!.split(' - ')[1]!;
    };
    for (let round = 0; round < 2; round++) {
      // Round 2 mounts over the work/work/incompat/volatile dir the first mount left behind.
      const v = await d.get('vrw');
      const p = await d.get('prw');
      try {
        assert.match(superOpts(v), /[ ,](fsync=)?volatile(,|$)/, 'the --rm layer is volatile');
        assert.doesNotMatch(superOpts(p), /volatile/, 'an ordinary layer is not');
        fs.writeFileSync(path.join(v, `written-${round}`), 'x');
        assert.deepEqual(fs.readdirSync(v).sort(), ['etc', ...Array.from({ length: round + 1 }, (_, i) => `written-${i}`)]);
        assert.equal(fs.readFileSync(path.join(v, 'etc/base'), 'utf8'), 'base');
      } finally {
        await d.put('vrw');
        await d.put('prw');
      }
    }
    assert.ok(fs.existsSync(path.join(root, 'vrw', 'work', 'work', 'incompat', 'volatile')), 'overlayfs marked the work dir');
    assert.deepEqual((await d.changes('vrw', 'vbase')).map((c) => c.path).sort(), ['/written-0', '/written-1']);
    await d.remove('vrw');
    await d.remove('prw');
    await d.remove('vbase');
    assert.equal(fs.existsSync(path.join(root, 'vrw')), false);
  });

  it('diff converts whiteouts back to .wh. entries; applying it again gives the same layer', async () => {
    const names: string[] = [];
    const chunks: Buffer[] = [];
    const stream = await d.diff('l2', 'l1');
    for await (const c of stream) chunks.push(c as Buffer);
    for await (const { header, body } of readTar(Readable.from([Buffer.concat(chunks)]))) {
      names.push(`${header.type} ${header.name}`);
      for await (const _ of body);
    }
    assert.deepEqual(names, ['dir a/', 'file a/added', 'file a/.wh.gone', 'dir b/', 'file b/.wh..wh..opq', 'file b/new']);
    assert.ok(!names.some((n) => n.startsWith('char')), 'no device nodes in the diff');

    await d.create('l2b', 'l1');
    await d.applyDiff('l2b', 'l1', Readable.from([Buffer.concat(chunks)]));
    assert.deepEqual(snapshot(path.join(root, 'l2b', 'diff')), snapshot(path.join(root, 'l2', 'diff')));
    assert.equal(await d.diffSize('l2', 'l1'), 'a/added'.length + 'b/new'.length);
    await d.remove('l2b');
  });

  it('changes: native from diff/ and through the mounts agree on a container layer', async () => {
    assert.deepEqual(await d.changes('l2', 'l1'), [
      { path: '/a', kind: ChangeKind.Modify },
      { path: '/a/added', kind: ChangeKind.Add },
      { path: '/a/gone', kind: ChangeKind.Delete },
      { path: '/b', kind: ChangeKind.Modify },
      { path: '/b/new', kind: ChangeKind.Add },
    ]);
    const merged = await d.get('rw');
    try {
      fs.rmSync(path.join(merged, 'a/keep'));
      fs.writeFileSync(path.join(merged, 'top'), 'changed');
      fs.writeFileSync(path.join(merged, 'new'), 'new');
      fs.mkdirSync(path.join(merged, 'a/dir'));
    } finally {
      await d.put('rw');
    }
    assert.deepEqual(await d.changes('rw', 'l3'), [
      { path: '/a', kind: ChangeKind.Modify },
      { path: '/a/dir', kind: ChangeKind.Add },
      { path: '/a/keep', kind: ChangeKind.Delete },
      { path: '/new', kind: ChangeKind.Add },
      { path: '/top', kind: ChangeKind.Modify },
    ]);
    // The diff of the container layer: its deletion as a whiteout entry.
    const names: string[] = [];
    for await (const { header, body } of readTar(await d.diff('rw', 'l3'))) {
      names.push(header.name);
      for await (const _ of body);
    }
    assert.deepEqual(names, ['a/', 'a/dir/', 'a/.wh.keep', 'new', 'top']);
    // Against a layer that is not its parent: computed through the mounts.
    const far = await d.changes('rw', 'l1');
    assert.ok(far.some((c) => c.path === '/c' && c.kind === ChangeKind.Modify));
    assert.ok(far.some((c) => c.path === '/b/x' && c.kind === ChangeKind.Delete));
    assert.equal(mountLines(path.join(root, 'rw')).length + mountLines(path.join(root, 'l3')).length, 0);
  });

  it('get/put are counted: the second get does not remount, the last put unmounts', async () => {
    const merged = await d.get('rw');
    assert.equal(await d.get('rw'), merged);
    assert.equal(mountLines(` ${merged} `).length, 1);
    await d.put('rw');
    assert.equal(mountLines(` ${merged} `).length, 1);
    assert.ok(fs.existsSync(path.join(merged, 'top')));
    await d.put('rw');
    assert.equal(mountLines(` ${merged} `).length, 0);
    // A base layer is its diff dir.
    assert.equal(await d.get('l1'), path.join(root, 'l1', 'diff'));
    await d.put('l1');
  });

  it('get + put of a 3-layer container is fast (timing printed)', async () => {
    const N = 200;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      await d.get('rw');
      await d.put('rw');
    }
    const perCycle = (performance.now() - t0) / N;
    const t1 = performance.now();
    await d.get('rw');
    const mountMs = performance.now() - t1;
    const t2 = performance.now();
    for (let i = 0; i < N; i++) {
      await d.get('rw');
      await d.put('rw');
    }
    const counted = (performance.now() - t2) / N;
    await d.put('rw');
    console.log(`overlay2: get+put (mount+umount) ${perCycle.toFixed(3)} ms; first get ${mountMs.toFixed(3)} ms; counted get+put ${counted.toFixed(4)} ms`);
    assert.ok(perCycle < 20, `mount+umount took ${perCycle} ms`);
  });

  it('a chain too deep for absolute lowerdirs in one page still mounts (relative paths via mount(8))', async () => {
    let parent = 'l3';
    const depth = 90;
    for (let i = 0; i < depth; i++) {
      await d.create(`deep${i}`, parent);
      fs.writeFileSync(path.join(root, `deep${i}`, 'diff', `f${i}`), String(i));
      parent = `deep${i}`;
    }
    const lower = fs.readFileSync(path.join(root, parent, 'lower'), 'utf8');
    assert.ok(lower.split(':').map((l) => `${root}/${l}`).join(':').length > 4096, 'the test chain must overflow a page');
    const t0 = performance.now();
    const merged = await d.get(parent);
    const ms = performance.now() - t0;
    try {
      assert.equal(fs.readFileSync(path.join(merged, 'f0'), 'utf8'), '0');
      assert.equal(fs.readFileSync(path.join(merged, 'c'), 'utf8'), 'three');
      assert.equal(fs.existsSync(path.join(merged, 'a/gone')), false);
    } finally {
      await d.put(parent);
    }
    console.log(`overlay2: mount of a ${depth + 3}-layer chain via mount(8): ${ms.toFixed(1)} ms`);
    assert.equal(mountLines(merged).length, 0);
    for (let i = depth - 1; i >= 0; i--) await d.remove(`deep${i}`);
  });

  it('remove cleans up everything, also while mounted', async () => {
    const getMd = await d.getMetadata('rw');
    assert.deepEqual(Object.keys(getMd).sort(), ['LowerDir', 'MergedDir', 'UpperDir', 'WorkDir']);
    assert.equal(getMd.LowerDir, [`${root}/l3/diff`, `${root}/l2/diff`, `${root}/l1/diff`].join(':'));
    const merged = await d.get('rw');
    await d.remove('rw');
    assert.equal(mountLines(merged).length, 0);
    for (const id of ['l3', 'l2', 'l1']) await d.remove(id);
    // Gone from its place at once; the data goes in the background.
    assert.deepEqual(fs.readdirSync(root).filter((n) => !n.startsWith('.removing-')), ['l']);
    await (d as unknown as { settled(): Promise<void> }).settled();
    assert.deepEqual(fs.readdirSync(root), ['l']);
    assert.deepEqual(fs.readdirSync(path.join(root, 'l')), []);
    assert.equal(await d.exists('l1'), false);
  });
});

describe('overlay2 home left bound by a killed daemon', { skip: isRoot ? false : 'needs root' }, () => {
  it('a second driver on the same home undoes the leftover bind at cleanup', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), `berth-ov2-kill-${process.pid}-`));
    const root = path.join(work, 'overlay2');
    try {
      const first = await overlay2Driver.create({ root, logger: silent });
      assert.ok(!isDriverSkip(first));
      // No cleanup: the daemon was killed. The next one finds the home already a mount point.
      assert.equal(mountLines(` ${root} `).length, 1);
      const second = await overlay2Driver.create({ root, logger: silent });
      assert.ok(!isDriverSkip(second));
      await (second as GraphDriver).cleanup();
      assert.deepEqual(mountLines(work), [], 'the home bind is left behind');
    } finally {
      for (let i = 0; i < 3 && mountLines(` ${root} `).length > 0; i++) realSyscalls().umount2(root, 2);
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
