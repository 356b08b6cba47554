import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { applyTar, changesOfViews, diffOfViews, diffSizeOfViews, diskUsage, mountAt, packDir, PrivateHome, spreadLayerDirs, ViewTable } from '@berth/archive';
import { BerthError } from '@berth/errors';
import { MNT_DETACH, MS_BIND, MS_PRIVATE } from '@berth/native';
import { type Change, type CreateOpts, type DriverLogger, type GraphDriver, type GraphDriverCapabilities } from '@berth/plugin-api';
import { backingFsName } from './probe.js';
import { mountUnion, runProgram, unmountUnion, type AufsSyscalls, type RunProgram, type UnionKind } from './union.js';
import { branchChanges, normalizeBranch, WH_META_PREFIX } from './whiteouts.js';

export interface AufsDriverOptions {
  /** The driver home, e.g. /var/lib/berth/aufs. */
  root: string;
  logger: DriverLogger;
  sys: AufsSyscalls;
  /** The union that mounts the branches. */
  union: UnionKind;
  /** Runs fuse-overlayfs / fusermount3 (tests inject a recorder). */
  run?: RunProgram;
  /** Make the home a private mount so layer mounts never propagate; default true. Needs root. */
  privateHome?: boolean;
  /** The mount(2) data size limit for kernel aufs (one page). */
  pageSize?: number;
}

export { mountAt };

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function storageError(what: string, cause: unknown, details: Record<string, unknown> = {}): BerthError {
  const stderr = (cause as { stderr?: string }).stderr?.trim();
  const inner = stderr ? stderr : cause instanceof Error ? cause.message : String(cause);
  return new BerthError('BERTH_STORAGE', `aufs: ${what}: ${inner}`, { cause, details });
}

const isErrno = (err: unknown, code: string): boolean => (err as { code?: unknown }).code === code;

/**
 * Docker's aufs layout under the home:
 *   diff/<id>/    the layer's own branch: its files and aufs whiteouts (`.wh.x`, `.wh..wh..opq`)
 *   layers/<id>   the ids of its parents, one per line, nearest first (empty for a base layer)
 *   mnt/<id>/     the union of diff/<id> (rw) over the parents' diff dirs (ro+wh)
 * With fuse-overlayfs as the union (no aufs in the kernel) `work/<id>/` is its work dir, and
 * after each unmount the top branch is rewritten into aufs's whiteout form, so every diff dir
 * at rest is an aufs branch.
 */
export class AufsDriver implements GraphDriver {
  readonly name = 'aufs';
  readonly union: UnionKind;
  private readonly root: string;
  private readonly log: DriverLogger;
  private readonly sys: AufsSyscalls;
  private readonly run: RunProgram;
  /** Counted views and the per-layer lock: get/put/remove of one layer never interleave. */
  private readonly views = new ViewTable();
  private readonly home: PrivateHome;

  constructor(private readonly opts: AufsDriverOptions) {
    this.root = path.resolve(opts.root);
    this.log = opts.logger;
    this.sys = opts.sys;
    this.home = new PrivateHome(this.root, {
      mount: (source, target, fstype, flags, data) => opts.sys.mount(source, target, fstype, flags, data),
      umount2: (target, flags) => opts.sys.umount2(target, flags),
      flags: { bind: MS_BIND, private: MS_PRIVATE, detach: MNT_DETACH },
    });
    this.union = opts.union;
    this.run = opts.run ?? runProgram;
  }

  async init(): Promise<void> {
    try {
      await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
      await fs.chmod(this.root, 0o700);
      for (const d of ['diff', 'layers', 'mnt', ...(this.union === 'fuse-overlayfs' ? ['work'] : [])]) await fs.mkdir(path.join(this.root, d), { recursive: true, mode: 0o755 });
    } catch (err) {
      throw storageError(`prepare ${this.root}`, err);
    }
    // Each layer's diff dir in a block group of its own (chattr +T; see spreadLayerDirs).
    if (!spreadLayerDirs(path.join(this.root, 'diff'), this.sys)) this.log.debug({}, 'layer dirs not spread over block groups (no inode flags here)');
    if (this.opts.privateHome ?? true) {
      try {
        await this.home.make();
      } catch (err) {
        throw storageError(`make ${this.root} a private mount`, err);
      }
    }
  }

  private check(id: string): string {
    if (!ID.test(id)) throw new BerthError('BERTH_INVALID_ARGUMENT', `aufs: invalid layer id ${JSON.stringify(id)}`, { details: { layerId: id } });
    return id;
  }
  private diffDir(id: string): string {
    return path.join(this.root, 'diff', this.check(id));
  }
  private mntDir(id: string): string {
    return path.join(this.root, 'mnt', this.check(id));
  }
  private workDir(id: string): string {
    return path.join(this.root, 'work', this.check(id));
  }
  private layersFile(id: string): string {
    return path.join(this.root, 'layers', this.check(id));
  }

  /** The parent ids of `id`, nearest first (from layers/<id>); throws NOT_FOUND for a missing layer. */
  private async parents(id: string): Promise<string[]> {
    let text: string;
    try {
      text = await fs.readFile(this.layersFile(id), 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new BerthError('BERTH_LAYER_NOT_FOUND', `aufs: no layer ${id}`, { details: { layerId: id } });
      throw storageError(`read layer ${id}`, err, { layerId: id });
    }
    return text.split('\n').filter((l) => l !== '');
  }

  async create(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    this.check(id);
    if (opts?.storageOpt !== undefined && Object.keys(opts.storageOpt).length > 0)
      throw new BerthError('BERTH_INVALID_ARGUMENT', 'aufs: --storage-opt is not supported', { details: { layerId: id, storageOpt: Object.keys(opts.storageOpt) } });
    const chain = parent === '' ? [] : [parent, ...(await this.parents(parent))];
    try {
      await fs.mkdir(this.diffDir(id), { mode: 0o755 });
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw new BerthError('BERTH_STORAGE', `aufs: layer ${id} already exists`, { details: { layerId: id } });
      throw storageError(`create layer ${id}`, err, { layerId: id });
    }
    try {
      await fs.chmod(this.diffDir(id), 0o755);
      await fs.mkdir(this.mntDir(id), { mode: 0o755 });
      if (this.union === 'fuse-overlayfs') await fs.mkdir(this.workDir(id), { mode: 0o700 });
      await fs.writeFile(this.layersFile(id), chain.map((p) => `${p}\n`).join(''), { mode: 0o644 });
    } catch (err) {
      await this.removeFiles(id).catch(() => undefined);
      throw storageError(`create layer ${id}`, err, { layerId: id });
    }
    this.log.debug({ layerId: id, parent, depth: chain.length }, 'layer created');
  }

  async createReadWrite(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    return this.create(id, parent, opts);
  }

  private async removeFiles(id: string): Promise<void> {
    await fs.rm(this.layersFile(id), { force: true });
    for (const d of [this.mntDir(id), this.workDir(id), this.diffDir(id)]) await fs.rm(d, { recursive: true, force: true });
  }

  /** Whether a union is mounted on mnt/<id> (from an earlier get, or an earlier daemon). */
  private async isMounted(id: string): Promise<boolean> {
    const m = await mountAt(this.mntDir(id)).catch(() => null);
    return m !== null && (m.fstype === 'aufs' || m.fstype.startsWith('fuse'));
  }

  private async unmount(id: string): Promise<void> {
    try {
      await unmountUnion(this.union, this.mntDir(id), this.sys, this.run);
    } catch (err) {
      throw storageError(`unmount layer ${id}`, err, { layerId: id });
    }
    if (this.union === 'fuse-overlayfs') {
      // The top branch back in aufs's form (what fuse-overlayfs wrote as devices and xattrs).
      const n = await normalizeBranch(this.diffDir(id), this.sys).catch((err: unknown) => {
        throw storageError(`rewrite whiteouts of layer ${id}`, err, { layerId: id });
      });
      if (n > 0) this.log.debug({ layerId: id, entries: n }, 'whiteouts rewritten in aufs form');
    }
  }

  async remove(id: string): Promise<void> {
    this.check(id);
    await this.views.locked(id, async () => {
      if (this.views.has(id) || (await this.isMounted(id))) {
        try {
          await unmountUnion(this.union, this.mntDir(id), this.sys, this.run);
        } catch (err) {
          throw storageError(`unmount layer ${id}`, err, { layerId: id });
        }
        this.views.delete(id);
      }
      try {
        await this.removeFiles(id);
      } catch (err) {
        throw storageError(`remove layer ${id}`, err, { layerId: id });
      }
    });
  }

  async get(id: string, mountLabel?: string): Promise<string> {
    this.check(id);
    return this.views.get(id, async () => {
      const parents = await this.parents(id);
      // A base layer: its branch is the whole tree, nothing to mount (as Docker's aufs).
      if (parents.length === 0) return { path: this.diffDir(id), counted: true };
      if (mountLabel) this.log.debug({ layerId: id, mountLabel }, 'mount label ignored (no SELinux)');
      const mnt = this.mntDir(id);
      if (!(await this.isMounted(id))) {
        await fs.mkdir(mnt, { recursive: true, mode: 0o755 });
        if (this.union === 'fuse-overlayfs') await fs.mkdir(this.workDir(id), { recursive: true, mode: 0o700 });
        const t0 = performance.now();
        try {
          await mountUnion(
            this.union,
            { rw: this.diffDir(id), ro: parents.map((p) => this.diffDir(p)), mountPoint: mnt, work: this.workDir(id) },
            this.sys,
            this.run,
            this.opts.pageSize,
          );
        } catch (err) {
          throw storageError(`mount layer ${id}`, err, { layerId: id, depth: parents.length });
        }
        this.log.debug({ layerId: id, depth: parents.length, union: this.union, ms: Math.round(performance.now() - t0) }, 'layer mounted');
      }
      return { path: mnt, counted: true };
    });
  }

  async put(id: string): Promise<void> {
    this.check(id);
    await this.views.put(id, async (h) => {
      if (h !== undefined && h.path === this.diffDir(id)) return; // a base layer
      if (h === undefined && !(await this.isMounted(id))) return; // not ours to release
      await this.unmount(id);
    });
  }

  async exists(id: string): Promise<boolean> {
    try {
      return (await fs.lstat(this.diffDir(id))).isDirectory();
    } catch {
      return false;
    }
  }

  async status(): Promise<[string, string][]> {
    let backing = 'unknown';
    try {
      backing = backingFsName(this.sys.statfs(this.root).type);
    } catch {
      // keep "unknown"
    }
    const dirs = await fs.readdir(path.join(this.root, 'diff')).catch(() => []);
    return [
      ['Root Dir', this.root],
      ['Backing Filesystem', backing],
      ['Dirs', String(dirs.length)],
      ['Dirperm1 Supported', 'false'],
      ['Union', this.union],
    ];
  }

  async getMetadata(id: string): Promise<Record<string, string>> {
    await this.parents(id);
    // Docker's aufs answers no metadata; nothing else reads it.
    return {};
  }

  async cleanup(): Promise<void> {
    for (const [id, h] of this.views.entries()) {
      this.views.delete(id);
      if (h.path === this.diffDir(id)) continue;
      try {
        // Only unmount: a container of a live-restored daemon may still use the union through
        // its own mount namespace, so the branch is rewritten later (before its next Diff).
        await unmountUnion(this.union, this.mntDir(id), this.sys, this.run);
      } catch (err) {
        this.log.warn({ layerId: id, err }, 'unmount at cleanup failed');
      }
    }
    this.home.release((err) => this.log.warn({ err }, 'unmount of the driver home failed'));
  }

  /**
   * Whether the branch of `id` can be read in aufs form against `parent` alone: `parent` is its
   * direct parent (or '' for a base layer) and it is not mounted (a mounted fuse-overlayfs top
   * branch holds devices and xattrs until it is unmounted).
   */
  private async nativeReadable(id: string, parent: string): Promise<string[] | null> {
    const parents = await this.parents(id);
    if ((parents[0] ?? '') !== parent) return null;
    if (this.views.has(id) || (await this.isMounted(id))) return null;
    if (this.union === 'fuse-overlayfs') await normalizeBranch(this.diffDir(id), this.sys);
    return parents;
  }

  async diff(id: string, parent: string): Promise<Readable> {
    if ((await this.nativeReadable(id, parent)) !== null) {
      // The branch is the diff: its `.wh.` files are the tar's whiteouts; aufs's own `.wh..wh.*`
      // entries (not the opaque marker) stay out, as Docker's aufs excludes them.
      const dir = this.diffDir(id);
      const top = (await fs.readdir(dir)).filter((n) => !n.startsWith(WH_META_PREFIX) || n === '.wh..wh..opq');
      return packDir(dir, this.sys, { include: top });
    }
    return diffOfViews(this, id, parent, this.sys, (err) => this.log.warn({ layerId: id, err }, 'release after diff failed'));
  }

  async changes(id: string, parent: string): Promise<Change[]> {
    const parents = await this.nativeReadable(id, parent);
    if (parents !== null) return branchChanges(this.diffDir(id), parents.map((p) => this.diffDir(p)));
    return changesOfViews(this, id, parent);
  }

  async applyDiff(id: string, _parent: string, diff: Readable): Promise<number> {
    await this.parents(id);
    const t0 = performance.now();
    // Whiteouts stay the files they are in the tar: aufs reads them in the branch.
    const size = await applyTar(this.diffDir(id), diff, { fs: this.sys, whiteoutFormat: 'keep' });
    this.log.debug({ layerId: id, size, ms: Math.round(performance.now() - t0) }, 'layer applied');
    return size;
  }

  async diffSize(id: string, parent: string): Promise<number> {
    if ((await this.nativeReadable(id, parent)) !== null) return diskUsage(this.diffDir(id));
    return diffSizeOfViews(this, id, parent);
  }

  async capabilities(): Promise<GraphDriverCapabilities> {
    return { reproducesExactDiffs: false };
  }
}
