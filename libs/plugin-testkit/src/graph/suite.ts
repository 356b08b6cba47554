import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { ArchiveFs } from '@berth/archive';
import { ChangeKind, type Change, type GraphDriver } from '@berth/plugin-api';
import { drain, layerTar, type TarMember } from './tar.js';
import { listTree, snapshotDiff, snapshotTree, type TreeOptions } from './tree.js';

const execFileP = promisify(execFile);

/** What a driver made for one case; `cleanup` must release everything (mounts, files). */
export interface GraphDriverHarness {
  driver: GraphDriver;
  cleanup(): Promise<void>;
  /** The driver home: after cleanup no mount may be left below it. */
  root?: string;
}

/**
 * Capabilities a case needs. A driver claims them in the suite options; the cases of an
 * unclaimed capability are registered as skips that name it.
 */
export type GraphCapability =
  /** Layer stacks up to `maxDepth` (default 128) deep. */
  | 'deepStacks'
  /** Character and block device nodes and fifos in layers (needs CAP_MKNOD). */
  | 'deviceNodes'
  /** Owners other than the caller's (needs CAP_CHOWN). */
  | 'owners'
  /** `user.*` extended attributes applied from layer tars. */
  | 'xattrs'
  /** `security.capability` applied and carried through Diff (needs CAP_SETFCAP). */
  | 'securityCapability'
  /** Holes of a sparse file survive Diff -> ApplyDiff (not only its content). */
  | 'sparseHoles'
  /** A directory made where a deleted one was hides the old one's content in the same mount. */
  | 'recreatedDirs';

export interface GraphDriverSuiteOptions {
  /** Claimed capabilities; default: all but sparseHoles, the root-only ones only as root. */
  claims?: Partial<Record<GraphCapability, boolean>>;
  /** Reads xattrs for the comparisons; default @berth/native's realSyscalls(). */
  fs?: ArchiveFs;
  /** Deepest stack tried; default 128. */
  maxDepth?: number;
  /** Size of the large-file case; default 64 MiB. */
  largeFileBytes?: number;
  /** Extra checks on the mounted view of the deepest stack (e.g. the mount data fits a page). */
  checkDeepView?: (view: string, driver: GraphDriver) => void | Promise<void>;
  /** Keys `status()` must contain (e.g. `Backing Filesystem`). */
  statusKeys?: readonly string[];
  /** Keys `getMetadata` must answer for a layer with a parent. */
  metadataKeys?: readonly string[];
  /** Per-case timeout in ms; default 60 000. */
  timeout?: number;
}

const isRoot = process.getuid?.() === 0;
const newId = (): string => randomBytes(32).toString('hex');
/** A v2 file capability: effective, permitted cap_net_raw. */
export const CAP_NET_RAW_XATTR = Buffer.from('0100000200200000000000000000000000000000', 'hex');

function mountsBelow(root: string): string[] {
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const want = path.resolve(root);
  return info
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) ?? '')
    .filter((mp) => mp === want || mp.startsWith(`${want}/`));
}

const sortChanges = (c: Change[]): string[] =>
  c.map((x) => `${x.kind === ChangeKind.Add ? 'A' : x.kind === ChangeKind.Delete ? 'D' : 'C'} ${x.path}`).sort((a, b) => (a.slice(2) < b.slice(2) ? -1 : a.slice(2) > b.slice(2) ? 1 : 0));

/**
 * Registers the GraphDriver contract as node:test cases under `describe(name)`. `makeDriver`
 * is called once per case, on a fresh home; its `cleanup` runs after the case.
 */
export function graphDriverSuite(
  name: string,
  makeDriver: () => Promise<GraphDriverHarness>,
  opts: GraphDriverSuiteOptions = {},
): void {
  const defaults: Record<GraphCapability, boolean> = {
    deepStacks: true,
    deviceNodes: isRoot,
    owners: isRoot,
    xattrs: true,
    securityCapability: isRoot,
    sparseHoles: false,
    recreatedDirs: true,
  };
  const claims = { ...defaults, ...opts.claims };
  const timeout = opts.timeout ?? 60_000;
  const maxDepth = opts.maxDepth ?? 128;
  const largeBytes = opts.largeFileBytes ?? 64 << 20;
  let afsCache: ArchiveFs | null = opts.fs ?? null;
  const afs = async (): Promise<ArchiveFs> => {
    if (afsCache === null) {
      const native = await import('@berth/native');
      afsCache = native.realSyscalls();
    }
    return afsCache;
  };
  const treeOpts: TreeOptions = { owners: claims.owners, xattrs: [...(claims.securityCapability ? ['security.capability'] : []), ...(claims.xattrs ? ['user.berth.suite'] : [])] };

  /** A case with a fresh driver; checks that cleanup left no mount behind. */
  const withDriver = (fn: (d: GraphDriver, t: TestContext, h: GraphDriverHarness) => Promise<void>) => async (t: TestContext) => {
    const h = await makeDriver();
    try {
      await fn(h.driver, t, h);
    } finally {
      await h.cleanup();
      if (h.root !== undefined) assert.deepEqual(mountsBelow(h.root), [], 'mounts left below the driver home after cleanup');
    }
  };
  const needs = (...caps: GraphCapability[]): { skip?: string; timeout: number } => {
    const missing = caps.filter((c) => !claims[c]);
    if (missing.length === 0) return { timeout };
    const rootOnly = missing.filter((c) => opts.claims?.[c] === undefined && !isRoot && (c === 'deviceNodes' || c === 'owners' || c === 'securityCapability'));
    if (rootOnly.length === missing.length) return { skip: `${missing.join(', ')}: needs root`, timeout };
    return { skip: `${name} does not claim ${missing.join(', ')}`, timeout };
  };

  /** A layer on `parent` holding `members`. */
  const layer = async (d: GraphDriver, parent: string, members: TarMember[], rw = false): Promise<string> => {
    const id = newId();
    if (rw) await d.createReadWrite(id, parent);
    else await d.create(id, parent);
    if (members.length > 0) await d.applyDiff(id, parent, layerTar(members));
    return id;
  };
  /** Runs `fn` on the mounted view of `id`, released afterwards. */
  const inView = async <T>(d: GraphDriver, id: string, fn: (view: string) => Promise<T>): Promise<T> => {
    const view = await d.get(id);
    try {
      return await fn(view);
    } finally {
      await d.put(id);
    }
  };
  const snap = async (d: GraphDriver, id: string, o: TreeOptions = {}): Promise<Map<string, string>> =>
    inView(d, id, async (v) => snapshotTree(v, await afs(), { ...treeOpts, ...o }));
  /** Diff(id, parent) applied to a new layer on `onto`: the two views must be identical. */
  const roundTrip = async (d: GraphDriver, id: string, parent: string, o: TreeOptions = {}): Promise<string> => {
    const copy = newId();
    await d.create(copy, parent);
    await d.applyDiff(copy, parent, await d.diff(id, parent));
    const a = await snap(d, id, o);
    const b = await snap(d, copy, o);
    assert.deepEqual(snapshotDiff(a, b), [], `diff of ${id.slice(0, 8)} against ${parent === '' ? 'nothing' : parent.slice(0, 8)} applied elsewhere differs`);
    return copy;
  };
  const read = (view: string, rel: string): Promise<string> => fs.readFile(path.join(view, rel), 'utf8');

  describe(`graph driver contract: ${name}`, () => {
    describe('layer stacks', () => {
      for (const depth of [1, 2, 16, maxDepth].filter((x, i, a) => x <= maxDepth && a.indexOf(x) === i)) {
        const caps: GraphCapability[] = depth > 16 ? ['deepStacks'] : [];
        it(`a stack ${depth} deep mounts with every layer's files, the top one winning`, needs(...caps), withDriver(async (d) => {
          let parent = '';
          const t0 = performance.now();
          for (let i = 0; i < depth; i++) {
            parent = await layer(d, parent, [
              { name: `l${i}`, content: `layer ${i}` },
              { name: 'top', content: `top ${i}` },
              ...(i > 0 ? [{ name: `.wh.l${i - 1}` }] : []),
              { name: 'keep/', mode: 0o755 },
              { name: `keep/k${i}`, content: `k${i}` },
            ]);
          }
          const made = performance.now() - t0;
          const rw = await layer(d, parent, [], true);
          const t1 = performance.now();
          const view = await d.get(rw);
          const mountMs = performance.now() - t1;
          try {
            assert.equal(await read(view, 'top'), `top ${depth - 1}`);
            assert.equal(await read(view, `l${depth - 1}`), `layer ${depth - 1}`);
            const names = await fs.readdir(view);
            for (let i = 0; i < depth - 1; i++) assert.ok(!names.includes(`l${i}`), `l${i} is whited out by layer ${i + 1}`);
            assert.equal((await fs.readdir(path.join(view, 'keep'))).length, depth);
            await fs.writeFile(path.join(view, 'written'), 'rw');
            assert.equal(await read(view, 'written'), 'rw');
            if (depth === maxDepth && opts.checkDeepView) await opts.checkDeepView(view, d);
          } finally {
            await d.put(rw);
          }
          if (depth >= 16) console.log(`# ${name}: ${depth} layers created+applied in ${made.toFixed(0)} ms, rw view mounted in ${mountMs.toFixed(1)} ms`);
          // What the container wrote survives put/get.
          assert.equal(await inView(d, rw, (v) => read(v, 'written')), 'rw');
        }));
      }
    });

    describe('whiteouts', () => {
      it('`.wh.` entries hide lower files and directories; this layer’s own files stay', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [
          { name: 'a', content: 'a' },
          { name: 'b', content: 'b' },
          { name: 'd/' },
          { name: 'd/x', content: 'x' },
          { name: 'd/y', content: 'y' },
          { name: 'gone/' },
          { name: 'gone/deep/' },
          { name: 'gone/deep/f', content: 'f' },
        ]);
        const top = await layer(d, base, [
          { name: '.wh.a' },
          { name: '.wh.gone' },
          { name: 'd/' },
          { name: 'd/.wh.x' },
          { name: 'd/z', content: 'z' },
          { name: '.wh.never-existed' },
        ]);
        assert.deepEqual(await inView(d, top, listTree), ['b', 'd', 'd/y', 'd/z']);
        // The base is untouched.
        assert.deepEqual(await inView(d, base, listTree), ['a', 'b', 'd', 'd/x', 'd/y', 'gone', 'gone/deep', 'gone/deep/f']);
        // A path deleted and recreated in a later layer is back.
        const again = await layer(d, top, [{ name: 'a', content: 'new a' }, { name: 'gone/' }, { name: 'gone/g', content: 'g' }]);
        assert.deepEqual(await inView(d, again, listTree), ['a', 'b', 'd', 'd/y', 'd/z', 'gone', 'gone/g']);
        assert.equal(await inView(d, again, (v) => read(v, 'a')), 'new a');
      }));

      it('an opaque directory (`.wh..wh..opq`) hides everything below it in lower layers', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [{ name: 'o/' }, { name: 'o/x', content: 'x' }, { name: 'o/sub/' }, { name: 'o/sub/y', content: 'y' }, { name: 'p', content: 'p' }]);
        const top = await layer(d, base, [{ name: 'o/' }, { name: 'o/.wh..wh..opq' }, { name: 'o/z', content: 'z' }]);
        assert.deepEqual(await inView(d, top, listTree), ['o', 'o/z', 'p']);
        const above = await layer(d, top, [{ name: 'o/' }, { name: 'o/w', content: 'w' }]);
        assert.deepEqual(await inView(d, above, listTree), ['o', 'o/w', 'o/z', 'p']);
      }));

      it('deletions in a read-write layer show as whiteouts in its Diff', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [{ name: 'a', content: 'a' }, { name: 'd/' }, { name: 'd/x', content: 'x' }, { name: 'e/' }, { name: 'e/y', content: 'y' }]);
        const rw = await layer(d, base, [], true);
        await inView(d, rw, async (v) => {
          await fs.rm(path.join(v, 'a'));
          await fs.rm(path.join(v, 'd'), { recursive: true });
          await fs.rm(path.join(v, 'e/y'));
        });
        const copy = await roundTrip(d, rw, base);
        assert.deepEqual(await inView(d, copy, listTree), ['e']);
      }));
    });

    describe('file kinds and metadata', () => {
      it('hard links stay one inode, in the view and through Diff -> ApplyDiff', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [
          { name: 'f', content: 'shared' },
          { name: 'hl', type: 'link', linkname: 'f' },
          { name: 'd/' },
          { name: 'd/hl2', type: 'link', linkname: 'f' },
        ]);
        const check = async (id: string): Promise<void> =>
          inView(d, id, async (v) => {
            const [a, b, c] = await Promise.all(['f', 'hl', 'd/hl2'].map((p) => fs.lstat(path.join(v, p))));
            assert.equal(a!.nlink, 3);
            assert.equal(b!.ino, a!.ino);
            assert.equal(c!.ino, a!.ino);
            assert.equal(await read(v, 'd/hl2'), 'shared');
          });
        await check(base);
        await check(await roundTrip(d, base, ''));
      }));

      it('symlinks keep their targets verbatim, relative, absolute and dangling', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [
          { name: 'etc/' },
          { name: 'etc/passwd', content: 'root:x:0:0' },
          { name: 'rel', type: 'symlink', linkname: 'etc/passwd' },
          { name: 'abs', type: 'symlink', linkname: '/etc/passwd' },
          { name: 'dangling', type: 'symlink', linkname: '/nowhere/at/all' },
          { name: 'dirlink', type: 'symlink', linkname: 'etc', mtime: 1_234_567_891 },
        ]);
        await inView(d, base, async (v) => {
          assert.equal(await fs.readlink(path.join(v, 'rel')), 'etc/passwd');
          assert.equal(await fs.readlink(path.join(v, 'abs')), '/etc/passwd');
          assert.equal(await fs.readlink(path.join(v, 'dangling')), '/nowhere/at/all');
          assert.equal(await read(v, 'dirlink/passwd'), 'root:x:0:0');
          assert.equal(Math.floor((await fs.lstat(path.join(v, 'dirlink'))).mtimeMs / 1000), 1_234_567_891);
        });
        // On a layer above, the absolute link still names the same target and is not followed.
        const top = await layer(d, base, [{ name: 'abs', type: 'symlink', linkname: '/etc/shadow' }]);
        assert.equal(await inView(d, top, (v) => fs.readlink(path.join(v, 'abs'))), '/etc/shadow');
        await roundTrip(d, top, base);
        await roundTrip(d, base, '');
      }));

      it('device nodes and fifos', needs('deviceNodes'), withDriver(async (d) => {
        const base = await layer(d, '', [
          { name: 'dev/' },
          { name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
          { name: 'dev/loop7', type: 'block', mode: 0o660, gid: 6, devmajor: 7, devminor: 7 },
          { name: 'dev/fifo', type: 'fifo', mode: 0o600 },
        ]);
        await inView(d, base, async (v) => {
          const n = await fs.lstat(path.join(v, 'dev/null'));
          assert.ok(n.isCharacterDevice());
          assert.equal(n.rdev, (1 << 8) | 3);
          assert.equal(n.mode & 0o777, 0o666);
          const l = await fs.lstat(path.join(v, 'dev/loop7'));
          assert.ok(l.isBlockDevice());
          assert.equal(l.rdev, (7 << 8) | 7);
          assert.ok((await fs.lstat(path.join(v, 'dev/fifo'))).isFIFO());
        });
        await roundTrip(d, base, '');
        const top = await layer(d, base, [{ name: 'dev/' }, { name: 'dev/zero', type: 'char', mode: 0o666, devmajor: 1, devminor: 5 }]);
        await roundTrip(d, top, base);
      }));

      it('extended attributes (user.*) land in the view', needs('xattrs'), withDriver(async (d, t) => {
        const base = await layer(d, '', [{ name: 'x', content: 'x', xattrs: { 'user.berth.suite': Buffer.from('value') } }, { name: 'xd/', xattrs: { 'user.berth.suite': Buffer.from('dir') } }]);
        const sys = await afs();
        await inView(d, base, async (v) => {
          let got: Buffer | null;
          try {
            got = sys.lgetxattr(path.join(v, 'x'), 'user.berth.suite');
          } catch (err) {
            t.skip(`the backing filesystem has no user xattrs: ${(err as Error).message}`);
            return;
          }
          assert.equal(got?.toString(), 'value');
          assert.equal(sys.lgetxattr(path.join(v, 'xd'), 'user.berth.suite')?.toString(), 'dir');
        });
      }));

      it('security.capability is applied and carried through Diff -> ApplyDiff', needs('securityCapability'), withDriver(async (d) => {
        const base = await layer(d, '', [{ name: 'bin/' }, { name: 'bin/ping', content: 'ELF', mode: 0o755, xattrs: { 'security.capability': CAP_NET_RAW_XATTR } }]);
        const sys = await afs();
        assert.deepEqual(await inView(d, base, async (v) => sys.lgetxattr(path.join(v, 'bin/ping'), 'security.capability')), CAP_NET_RAW_XATTR);
        const copy = await roundTrip(d, base, '', { xattrs: ['security.capability'] });
        assert.deepEqual(await inView(d, copy, async (v) => sys.lgetxattr(path.join(v, 'bin/ping'), 'security.capability')), CAP_NET_RAW_XATTR);
        // A file with a capability, changed in a container, keeps it in the container's diff.
        const rw = await layer(d, base, [], true);
        await inView(d, rw, (v) => fs.chmod(path.join(v, 'bin/ping'), 0o750));
        await roundTrip(d, rw, base, { xattrs: ['security.capability'] });
      }));

      it('modes, set-id and sticky bits', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [
          { name: 'suid', content: 's', mode: 0o4755 },
          { name: 'sgid', content: 'g', mode: 0o2711 },
          { name: 'private', content: 'p', mode: 0o600 },
          // Unreadable to its owner: only root reads it back (to compare content).
          { name: 'none', content: 'n', mode: isRoot ? 0o000 : 0o400 },
          { name: 'tmp/', mode: 0o1777 },
          { name: 'shared/', mode: 0o2775 },
          { name: 'locked/', mode: 0o700 },
          { name: 'locked/inner', content: 'i', mode: 0o640 },
        ]);
        const modes = async (id: string): Promise<Record<string, string>> =>
          inView(d, id, async (v) => {
            const out: Record<string, string> = {};
            for (const p of ['suid', 'sgid', 'private', 'none', 'tmp', 'shared', 'locked', 'locked/inner']) out[p] = ((await fs.lstat(path.join(v, p))).mode & 0o7777).toString(8);
            return out;
          });
        const want = { suid: '4755', sgid: '2711', private: '600', none: isRoot ? '0' : '400', tmp: '1777', shared: '2775', locked: '700', 'locked/inner': '640' };
        assert.deepEqual(await modes(base), want);
        const rw = await layer(d, base, [], true);
        await inView(d, rw, (v) => fs.chmod(path.join(v, 'private'), 0o644));
        assert.deepEqual(await modes(rw), { ...want, private: '644' });
        await roundTrip(d, rw, base);
        assert.deepEqual(await modes(await roundTrip(d, base, '')), want);
      }));

      it('owners', needs('owners'), withDriver(async (d) => {
        const base = await layer(d, '', [
          { name: 'home/' },
          { name: 'home/user/', uid: 1000, gid: 1000, mode: 0o750 },
          { name: 'home/user/file', content: 'u', uid: 1000, gid: 1001 },
          { name: 'nobody', content: 'n', uid: 65534, gid: 65534 },
          { name: 'link', type: 'symlink', linkname: 'nobody', uid: 123, gid: 456 },
          { name: 'big', content: 'b', uid: 2_000_000, gid: 3_000_000 },
        ]);
        const owners = async (id: string): Promise<string[]> =>
          inView(d, id, async (v) => Promise.all(['home/user', 'home/user/file', 'nobody', 'link', 'big'].map(async (p) => {
            const st = await fs.lstat(path.join(v, p));
            return `${p} ${st.uid}:${st.gid}`;
          })));
        const want = ['home/user 1000:1000', 'home/user/file 1000:1001', 'nobody 65534:65534', 'link 123:456', 'big 2000000:3000000'];
        assert.deepEqual(await owners(base), want);
        assert.deepEqual(await owners(await roundTrip(d, base, '')), want);
        const rw = await layer(d, base, [], true);
        await inView(d, rw, (v) => fs.lchown(path.join(v, 'nobody'), 7, 8));
        assert.deepEqual(await owners(await roundTrip(d, rw, base)), want.map((w) => (w.startsWith('nobody') ? 'nobody 7:8' : w)));
      }));

      it('modification times of files, symlinks and directories', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [
          { name: 'old', content: 'o', mtime: 1_234_567_890 },
          { name: 'dir/', mtime: 1_111_111_111 },
          { name: 'dir/f', content: 'f', mtime: 1_222_222_222 },
          { name: 'sym', type: 'symlink', linkname: 'old', mtime: 1_333_333_333 },
        ]);
        const times = async (id: string): Promise<Record<string, number>> =>
          inView(d, id, async (v) => {
            const out: Record<string, number> = {};
            for (const p of ['old', 'dir', 'dir/f', 'sym']) out[p] = Math.floor((await fs.lstat(path.join(v, p))).mtimeMs / 1000);
            return out;
          });
        const want = { old: 1_234_567_890, dir: 1_111_111_111, 'dir/f': 1_222_222_222, sym: 1_333_333_333 };
        assert.deepEqual(await times(base), want);
        assert.deepEqual(await times(await roundTrip(d, base, '', { dirTimes: true })), want);
        // A layer above that only adds elsewhere leaves them alone.
        const top = await layer(d, base, [{ name: 'new', content: 'n' }]);
        assert.deepEqual(await times(top), want);
      }));
    });

    describe('sparse and large files', () => {
      it('a sparse file written in a container comes through Diff -> ApplyDiff with the same content', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [{ name: 'data/' }]);
        const rw = await layer(d, base, [], true);
        const size = 48 << 20;
        await inView(d, rw, async (v) => {
          const fh = await fs.open(path.join(v, 'data/sparse'), 'w');
          try {
            await fh.write(Buffer.from('head'), 0, 4, 0);
            await fh.write(Buffer.from('middle'), 0, 6, 20 << 20);
            await fh.truncate(size);
            await fh.write(Buffer.from('tail'), 0, 4, size - 4);
          } finally {
            await fh.close();
          }
        });
        const copy = await roundTrip(d, rw, base);
        await inView(d, copy, async (v) => {
          const p = path.join(v, 'data/sparse');
          const st = await fs.stat(p);
          assert.equal(st.size, size);
          const fh = await fs.open(p, 'r');
          try {
            const b = Buffer.alloc(6);
            await fh.read(b, 0, 6, 20 << 20);
            assert.equal(b.toString(), 'middle');
          } finally {
            await fh.close();
          }
        });
      }));

      it('holes of a sparse file survive Diff -> ApplyDiff', needs('sparseHoles'), withDriver(async (d) => {
        const rw = await layer(d, '', [], true);
        await inView(d, rw, async (v) => {
          const fh = await fs.open(path.join(v, 'sparse'), 'w');
          await fh.truncate(64 << 20);
          await fh.close();
        });
        const copy = await roundTrip(d, rw, '');
        const st = await inView(d, copy, (v) => fs.stat(path.join(v, 'sparse')));
        assert.ok(st.blocks * 512 < st.size / 2, `the copy holds ${st.blocks * 512} bytes for a ${st.size}-byte hole`);
      }));

      it(`a large file (${largeBytes >> 20} MiB) streams through ApplyDiff and Diff intact`, { timeout }, withDriver(async (d) => {
        const chunk = randomBytes(1 << 20);
        const chunks = function* (): Generator<Buffer> {
          for (let i = 0; i < largeBytes >> 20; i++) {
            chunk.writeUInt32BE(i, 0);
            yield Buffer.from(chunk);
          }
        };
        const base = newId();
        await d.create(base, '');
        const applied = await d.applyDiff(base, '', layerTar([{ name: 'big', content: { size: largeBytes, chunks } }]));
        assert.equal(applied, largeBytes);
        const copy = await roundTrip(d, base, '');
        assert.equal(await inView(d, copy, async (v) => (await fs.stat(path.join(v, 'big'))).size), largeBytes);
      }));
    });

    describe('changes', () => {
      it('renaming a directory in a container is a delete and an add, and round-trips', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [{ name: 'dir/' }, { name: 'dir/a/' }, { name: 'dir/a/b', content: 'b' }, { name: 'dir/c', content: 'c' }, { name: 'other', content: 'o' }]);
        const rw = await layer(d, base, [], true);
        // As mv(1) does it: rename(2), or copy and delete where the union answers EXDEV.
        await inView(d, rw, (v) => execFileP('mv', [path.join(v, 'dir'), path.join(v, 'renamed')]));
        assert.deepEqual(sortChanges(await d.changes(rw, base)), ['D /dir', 'A /renamed', 'A /renamed/a', 'A /renamed/a/b', 'A /renamed/c']);
        const copy = await roundTrip(d, rw, base);
        assert.deepEqual(await inView(d, copy, listTree), ['other', 'renamed', 'renamed/a', 'renamed/a/b', 'renamed/c']);
      }));

      it('a directory made again where a deleted one was hides the old content, in the same mount', needs('recreatedDirs'), withDriver(async (d) => {
        const base = await layer(d, '', [{ name: 'dir/' }, { name: 'dir/a/' }, { name: 'dir/a/b', content: 'b' }, { name: 'dir/c', content: 'c' }]);
        const rw = await layer(d, base, [], true);
        await inView(d, rw, async (v) => {
          await fs.rm(path.join(v, 'dir'), { recursive: true });
          await fs.mkdir(path.join(v, 'dir'));
          assert.deepEqual(await fs.readdir(path.join(v, 'dir')), []);
          await assert.rejects(fs.lstat(path.join(v, 'dir/a')), /ENOENT/, 'the old dir/a is gone');
          await fs.mkdir(path.join(v, 'dir/a'));
          assert.deepEqual(await fs.readdir(path.join(v, 'dir/a')), []);
        });
        // Renaming a lower directory onto a name deleted below (mv copies where rename answers EXDEV).
        const mid = await layer(d, base, [{ name: '.wh.dir' }, { name: 'renamed/' }, { name: 'renamed/a/' }, { name: 'renamed/a/b', content: 'b' }]);
        const rw2 = await layer(d, mid, [], true);
        await inView(d, rw2, (v) => execFileP('mv', [path.join(v, 'renamed'), path.join(v, 'dir')]));
        assert.deepEqual(await inView(d, rw2, listTree), ['dir', 'dir/a', 'dir/a/b']);
      }));

      it('Changes after edits in a container: added, modified (with parent dirs), deleted', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [
          { name: 'bin/' },
          { name: 'bin/sh', content: 'sh', mode: 0o755 },
          { name: 'bin/ls', content: 'ls', mode: 0o755 },
          { name: 'etc/' },
          { name: 'etc/passwd', content: 'root' },
          { name: 'etc/group', content: 'root' },
          { name: 'etc/hosts', content: 'localhost' },
          { name: 'var/' },
          { name: 'var/log/' },
          { name: 'var/log/old.log', content: 'old' },
          { name: 'usr/' },
          { name: 'usr/lib/' },
          { name: 'usr/lib/x', content: 'x' },
        ]);
        const rw = await layer(d, base, [], true);
        assert.deepEqual(await d.changes(rw, base), [], 'a fresh container layer has no changes');
        await inView(d, rw, async (v) => {
          await fs.writeFile(path.join(v, 'etc/passwd'), 'root\nuser');
          await fs.writeFile(path.join(v, 'etc/new'), 'new');
          await fs.rm(path.join(v, 'etc/group'));
          await fs.rm(path.join(v, 'var/log'), { recursive: true });
          await fs.chmod(path.join(v, 'bin/sh'), 0o700);
          await fs.mkdir(path.join(v, 'opt/x/y'), { recursive: true });
        });
        const want = ['C /bin', 'C /bin/sh', 'C /etc', 'D /etc/group', 'A /etc/new', 'C /etc/passwd', 'A /opt', 'A /opt/x', 'A /opt/x/y', 'C /var', 'D /var/log'];
        assert.deepEqual(sortChanges(await d.changes(rw, base)), want);
        // Mounted or not, the same answer.
        assert.deepEqual(await inView(d, rw, async () => sortChanges(await d.changes(rw, base))), want);
        const size = await d.diffSize(rw, base);
        assert.ok(size >= 'root\nuser'.length + 'new'.length + 'sh'.length, `diffSize ${size}`);
        await roundTrip(d, rw, base);
      }));

      it('Changes of a layer against nothing lists everything as added', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [{ name: 'a', content: 'a' }, { name: 'd/' }, { name: 'd/b', content: 'b' }]);
        assert.deepEqual(sortChanges(await d.changes(base, '')), ['A /a', 'A /d', 'A /d/b']);
      }));
    });

    describe('Diff -> ApplyDiff', () => {
      const rich = (): TarMember[] => [
        { name: 'bin/' },
        { name: 'bin/tool', content: 'tool', mode: 0o4755, ...(claims.securityCapability ? { xattrs: { 'security.capability': CAP_NET_RAW_XATTR } } : {}) },
        { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
        { name: 'etc/', mode: 0o755, mtime: 1_500_000_000 },
        { name: 'etc/conf', content: 'conf', mode: 0o640, ...(claims.owners ? { uid: 1000, gid: 1000 } : {}), mtime: 1_400_000_000 },
        { name: 'etc/abs', type: 'symlink', linkname: '/etc/conf' },
        { name: 'etc/rel', type: 'symlink', linkname: '../bin/tool' },
        ...(claims.deviceNodes ? [{ name: 'dev/' }, { name: 'dev/null', type: 'char' as const, mode: 0o666, devmajor: 1, devminor: 3 }] : []),
        { name: 'tmp/', mode: 0o1777 },
        { name: 'opaque/' },
        { name: 'opaque/old', content: 'old' },
        { name: 'gone', content: 'gone' },
        { name: 'empty', content: '' },
      ];
      it('a three-layer stack and a container: every Diff applied to a new layer gives an identical view', { timeout }, withDriver(async (d) => {
        const l1 = await layer(d, '', rich());
        const l2 = await layer(d, l1, [
          { name: '.wh.gone' },
          { name: 'opaque/' },
          { name: 'opaque/.wh..wh..opq' },
          { name: 'opaque/new', content: 'new' },
          { name: 'etc/' },
          { name: 'etc/conf', content: 'conf v2', mode: 0o600 },
        ]);
        const l3 = await layer(d, l2, [{ name: 'bin/' }, { name: 'bin/.wh.alias' }, { name: 'added/' }, { name: 'added/f', content: 'f' }]);
        const rw = await layer(d, l3, [], true);
        await inView(d, rw, async (v) => {
          await fs.writeFile(path.join(v, 'etc/conf'), 'conf v3');
          await fs.rm(path.join(v, 'opaque'), { recursive: true });
          await fs.mkdir(path.join(v, 'opaque'));
          await fs.writeFile(path.join(v, 'opaque/again'), 'again');
          await fs.symlink('/etc/conf', path.join(v, 'etc/abs2'));
          await fs.link(path.join(v, 'added/f'), path.join(v, 'added/f2'));
        });
        await roundTrip(d, l1, '');
        await roundTrip(d, l2, l1);
        await roundTrip(d, l3, l2);
        await roundTrip(d, rw, l3);
        // Against something other than the parent, and against nothing: the flattened view.
        await roundTrip(d, rw, l1);
        const flat = await roundTrip(d, rw, '');
        assert.deepEqual(await inView(d, flat, listTree), await inView(d, rw, listTree));
        assert.equal(await inView(d, flat, (v) => read(v, 'opaque/again')), 'again');
        assert.deepEqual(await inView(d, flat, (v) => fs.readdir(path.join(v, 'opaque'))), ['again']);
      }));

      it('a layer applied from a tar diffs back to the same tar when the driver says ReproducesExactDiffs', { timeout }, withDriver(async (d, t) => {
        const caps = await d.capabilities();
        if (!caps.reproducesExactDiffs) {
          t.skip(`${name} reports ReproducesExactDiffs=false`);
          return;
        }
        const members: TarMember[] = [{ name: 'a/' }, { name: 'a/f', content: 'f' }, { name: 'b', content: 'b' }];
        const want = await drain(layerTar(members));
        const id = newId();
        await d.create(id, '');
        await d.applyDiff(id, '', layerTar(members));
        assert.deepEqual(await drain(await d.diff(id, '')), want);
      }));

      it('ApplyDiff answers the bytes of file content; DiffSize agrees', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [{ name: 'x', content: 'base' }]);
        const id = newId();
        await d.create(id, base);
        const n = await d.applyDiff(id, base, layerTar([{ name: 'a', content: Buffer.alloc(1000, 1) }, { name: 'd/' }, { name: 'd/b', content: Buffer.alloc(234, 2) }, { name: 'h', type: 'link', linkname: 'a' }]));
        assert.equal(n, 1234);
        assert.equal(await d.diffSize(id, base), 1234);
      }));
    });

    describe('layer lifecycle', () => {
      it('exists, create, remove: duplicates and missing parents refused, removal idempotent', { timeout }, withDriver(async (d) => {
        const id = newId();
        assert.equal(await d.exists(id), false);
        await d.create(id, '');
        assert.equal(await d.exists(id), true);
        await assert.rejects(d.create(id, ''), 'a duplicate id is refused');
        await assert.rejects(d.create(newId(), newId()), 'a missing parent is refused');
        const child = await layer(d, id, [{ name: 'c', content: 'c' }]);
        const rw = await layer(d, child, [], true);
        await d.get(rw);
        await d.remove(rw); // while held: released and removed
        assert.equal(await d.exists(rw), false);
        await d.remove(child);
        await d.remove(child);
        await d.remove(id);
        assert.equal(await d.exists(id), false);
        assert.equal(await d.exists(child), false);
        await assert.rejects(d.get(id), 'get of a removed layer fails');
      }));

      it('get and put are counted: the view lasts until the last put; concurrent gets agree', { timeout }, withDriver(async (d) => {
        const base = await layer(d, '', [{ name: 'f', content: 'base' }]);
        const rw = await layer(d, base, [], true);
        const [p1, p2, p3] = await Promise.all([d.get(rw), d.get(rw), d.get(rw)]);
        assert.equal(p1, p2);
        assert.equal(p2, p3);
        assert.ok(path.isAbsolute(p1!));
        await d.put(rw);
        await d.put(rw);
        assert.equal(await read(p1!, 'f'), 'base', 'still mounted while one get is outstanding');
        await fs.writeFile(path.join(p1!, 'g'), 'g');
        await d.put(rw);
        const p4 = await d.get(rw);
        try {
          assert.equal(await read(p4, 'g'), 'g');
        } finally {
          await d.put(rw);
        }
        await d.put(base); // never got: harmless
      }));

      it('Status, GetMetadata and Capabilities have the wire shapes', { timeout }, withDriver(async (d) => {
        const status = await d.status();
        assert.ok(Array.isArray(status));
        for (const pair of status) {
          assert.ok(Array.isArray(pair) && pair.length === 2, `status pair ${JSON.stringify(pair)}`);
          assert.equal(typeof pair[0], 'string');
          assert.equal(typeof pair[1], 'string');
        }
        const keys = status.map(([k]) => k);
        for (const k of opts.statusKeys ?? []) assert.ok(keys.includes(k), `status has ${k}: ${JSON.stringify(status)}`);
        const base = await layer(d, '', []);
        const rw = await layer(d, base, [], true);
        for (const id of [base, rw]) {
          const md = await d.getMetadata(id);
          assert.equal(typeof md, 'object');
          for (const v of Object.values(md)) assert.equal(typeof v, 'string');
        }
        const md = await d.getMetadata(rw);
        for (const k of opts.metadataKeys ?? []) assert.equal(typeof md[k], 'string', `metadata has ${k}: ${JSON.stringify(md)}`);
        await assert.rejects(d.getMetadata(newId()), 'metadata of a missing layer fails');
        const caps = await d.capabilities();
        assert.deepEqual(Object.keys(caps), ['reproducesExactDiffs']);
        assert.equal(typeof caps.reproducesExactDiffs, 'boolean');
        assert.equal(typeof d.name, 'string');
      }));

      it('Cleanup releases every view; the layers stay', { timeout }, withDriver(async (d, _t, h) => {
        const base = await layer(d, '', [{ name: 'f', content: 'f' }]);
        const rw = await layer(d, base, [], true);
        await d.get(rw);
        await d.get(rw);
        await d.cleanup();
        if (h.root !== undefined) assert.deepEqual(mountsBelow(h.root), [], 'mounts left after Cleanup');
        assert.equal(await d.exists(rw), true);
        assert.equal(await d.exists(base), true);
      }));
    });
  });
}
