import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { applyTar, changesOfViews, diffOfViews, diffSizeOfViews, diskUsage, packDir, mountAt, OVERLAY_OPAQUE_XATTR, PrivateHome, ViewTable, spreadLayerDirs, withViews } from '@berth/archive';
import { BerthError } from '@berth/errors';
import { FsMagic, MNT_DETACH, MS_BIND, MS_PRIVATE, type Syscalls } from '@berth/native';
import {
  ChangeKind,
  type Change,
  type CreateOpts,
  type DriverLogger,
  type DriverSkip,
  type GraphDriver,
  type GraphDriverCapabilities,
  type GraphDriverDeps,
  type GraphDriverDescriptor,
} from '@berth/plugin-api';
import { backingFsName, plainFormatOptions, probeOverlay, skipReason } from './probe.js';

const execFileP = promisify(execFile);

/** The kernel calls the driver makes (@berth/native's realSyscalls() in production). */
export type OverlaySyscalls = Pick<Syscalls, 'mount' | 'umount2' | 'mknod' | 'lsetxattr' | 'lgetxattr' | 'statfs'> &
  Partial<Pick<Syscalls, 'inodeFlags'>>;

export interface Overlay2DriverOptions {
  /** The driver home, e.g. /var/lib/berth/overlay2. */
  root: string;
  logger: DriverLogger;
  sys: OverlaySyscalls;
  /** Extra overlay mount options (see `plainFormatOptions`); default none. */
  mountOptions?: string[];
  /**
   * Make the home a private mount (bind onto itself when it is not a mount point) so layer
   * mounts never propagate to other mount namespaces; default true. Needs root.
   */
  privateHome?: boolean;
  /** The mount(2) data size limit (one page); a longer lowerdir list mounts with relative paths. */
  pageSize?: number;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const LINK_DIR = 'l';
/**
 * A removed layer's dir is first renamed to `<root>/.removing-<id>-<random>` (a name no layer id
 * can take: ids start with a letter or digit), then deleted in the background: the removal of a
 * container answers after one rename instead of a recursive delete (~1.5 ms of a `run --rm`).
 * Leftovers of a daemon that stopped meanwhile go at the next init.
 */
const REMOVING = '.removing-';
/** Berth's marker file in a throwaway container layer's dir (see CreateOpts.volatile). */
const VOLATILE_MARKER = 'berth-volatile';
const SHORT_LEN = 26;
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** A 26-character base32 name for `l/` (Docker's short link ids). */
export function shortId(): string {
  const bytes = randomBytes(SHORT_LEN);
  let s = '';
  for (let i = 0; i < SHORT_LEN; i++) s += B32[bytes[i]! & 31];
  return s;
}

function storageError(what: string, cause: unknown, details: Record<string, unknown> = {}): BerthError {
  const inner = cause instanceof Error ? cause.message : String(cause);
  return new BerthError('BERTH_STORAGE', `overlay2: ${what}: ${inner}`, { cause, details });
}

function isErrno(err: unknown, code: string): boolean {
  return (err as { code?: unknown }).code === code;
}

async function readOrNull(p: string): Promise<string | null> {
  try {
    return (await fs.readFile(p, 'utf8')).trim();
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
    throw err;
  }
}

const isWhiteout = (st: Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

/**
 * Docker's overlay2 layout under the home:
 *   <id>/diff/    the layer's own files (an overlay upper dir: whiteouts are 0/0 char devices)
 *   <id>/link     the 26-char short name;  l/<short> -> ../<id>/diff
 *   <id>/lower    `l/<short>:l/<short>...` of every parent, nearest first (absent for a base layer)
 *   <id>/work/, <id>/merged/   overlay's work dir and the mount point (layers with a parent)
 * `get` mounts lowerdir=l/... (through the short links), upperdir=diff, workdir=work on merged.
 */
export class Overlay2Driver implements GraphDriver {
  readonly name = 'overlay2';
  private readonly root: string;
  private readonly log: DriverLogger;
  private readonly sys: OverlaySyscalls;
  private readonly mountOptions: string[];
  private readonly pageSize: number;
  /** Counted mounts and the per-layer lock: get/put/remove of one layer never interleave. */
  private readonly views = new ViewTable();
  /** Whether this kernel's overlayfs takes `volatile` (undefined until a throwaway layer is mounted). */
  private volatileWorks: boolean | undefined;
  private readonly home: PrivateHome;
  /** Background deletions of removed layers (see REMOVING); cleanup() waits for them. */
  private readonly deleting = new Set<Promise<void>>();

  constructor(private readonly opts: Overlay2DriverOptions) {
    this.root = path.resolve(opts.root);
    this.log = opts.logger;
    this.sys = opts.sys;
    this.home = new PrivateHome(this.root, {
      mount: (source, target, fstype, flags, data) => opts.sys.mount(source, target, fstype, flags, data),
      umount2: (target, flags) => opts.sys.umount2(target, flags),
      flags: { bind: MS_BIND, private: MS_PRIVATE, detach: MNT_DETACH },
    });
    this.mountOptions = opts.mountOptions ?? [];
    this.pageSize = opts.pageSize ?? 4096;
  }

  /** Prepares the home (mode 0700, `l/`) and, unless told not to, makes it a private mount. */
  async init(): Promise<void> {
    try {
      await fs.mkdir(path.join(this.root, LINK_DIR), { recursive: true, mode: 0o700 });
      await fs.chmod(this.root, 0o700);
    } catch (err) {
      throw storageError(`prepare ${this.root}`, err);
    }
    for (const n of await fs.readdir(this.root).catch(() => [] as string[])) if (n.startsWith(REMOVING)) this.deleteLater(path.join(this.root, n));
    // Each layer dir in a block group of its own (chattr +T; see spreadLayerDirs).
    if (!spreadLayerDirs(this.root, this.sys)) this.log.debug({}, 'layer dirs not spread over block groups (no inode flags here)');
    if (this.opts.privateHome ?? true) {
      try {
        await this.home.make();
      } catch (err) {
        throw storageError(`make ${this.root} a private mount`, err);
      }
    }
  }

  private dir(id: string): string {
    if (!ID.test(id)) throw new BerthError('BERTH_INVALID_ARGUMENT', `overlay2: invalid layer id ${JSON.stringify(id)}`, { details: { layerId: id } });
    return path.join(this.root, id);
  }

  private async existing(id: string): Promise<string> {
    const d = this.dir(id);
    const st = await lstatOrNull(path.join(d, 'diff')).catch((err: unknown) => {
      throw storageError(`stat layer ${id}`, err, { layerId: id });
    });
    if (st?.isDirectory()) return d;
    throw new BerthError('BERTH_LAYER_NOT_FOUND', `overlay2: no layer ${id}`, { details: { layerId: id } });
  }

  async create(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    const d = this.dir(id);
    if (opts?.storageOpt !== undefined && Object.keys(opts.storageOpt).length > 0)
      throw new BerthError('BERTH_INVALID_ARGUMENT', 'overlay2: --storage-opt is not supported (it needs xfs project quotas)', {
        details: { layerId: id, storageOpt: Object.keys(opts.storageOpt) },
      });
    let lower = '';
    if (parent !== '') {
      const pd = await this.existing(parent);
      const parentLink = await readOrNull(path.join(pd, 'link'));
      if (parentLink === null) throw storageError(`layer ${parent} has no link file`, new Error('missing'), { layerId: parent });
      const parentLower = await readOrNull(path.join(pd, 'lower'));
      lower = `${LINK_DIR}/${parentLink}${parentLower ? `:${parentLower}` : ''}`;
    }
    try {
      await fs.mkdir(d, { mode: 0o700 });
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw new BerthError('BERTH_STORAGE', `overlay2: layer ${id} already exists`, { details: { layerId: id } });
      throw storageError(`create layer ${id}`, err, { layerId: id });
    }
    const short = shortId();
    try {
      await fs.mkdir(path.join(d, 'diff'), { mode: 0o755 });
      await fs.chmod(path.join(d, 'diff'), 0o755);
      await fs.symlink(`../${id}/diff`, path.join(this.root, LINK_DIR, short));
      await fs.writeFile(path.join(d, 'link'), short, { mode: 0o644 });
      if (lower !== '') {
        await fs.writeFile(path.join(d, 'lower'), lower, { mode: 0o644 });
        await fs.mkdir(path.join(d, 'work'), { mode: 0o700 });
        await fs.mkdir(path.join(d, 'merged'), { mode: 0o700 });
      }
    } catch (err) {
      await fs.rm(path.join(this.root, LINK_DIR, short), { force: true }).catch(() => undefined);
      await fs.rm(d, { recursive: true, force: true }).catch(() => undefined);
      throw storageError(`create layer ${id}`, err, { layerId: id });
    }
    this.log.debug({ layerId: id, parent, depth: lower === '' ? 0 : lower.split(':').length }, 'layer created');
  }

  async createReadWrite(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    const { volatile, ...rest } = opts ?? {};
    await this.create(id, parent, rest);
    if (volatile === true && parent !== '') {
      // A marker beside Docker's files: get() mounts this layer with overlayfs `volatile`.
      await fs.writeFile(path.join(this.dir(id), VOLATILE_MARKER), '', { mode: 0o644 }).catch(async (err: unknown) => {
        await this.remove(id).catch(() => undefined);
        throw storageError(`create layer ${id}`, err, { layerId: id });
      });
    }
  }

  async remove(id: string): Promise<void> {
    const d = this.dir(id);
    await this.views.locked(id, async () => {
      const merged = path.join(d, 'merged');
      if (this.views.has(id) || this.isMounted(merged)) {
        try {
          this.sys.umount2(merged, MNT_DETACH);
        } catch (err) {
          if (!isErrno(err, 'EINVAL') && !isErrno(err, 'ENOENT')) throw storageError(`unmount layer ${id}`, err, { layerId: id });
        }
        this.views.delete(id);
      }
      try {
        const short = await readOrNull(path.join(d, 'link'));
        if (short !== null && short !== '' && !short.includes('/')) await fs.rm(path.join(this.root, LINK_DIR, short), { force: true });
        const doomed = path.join(this.root, `${REMOVING}${id}-${randomBytes(4).toString('hex')}`);
        try {
          await fs.rename(d, doomed);
        } catch (err) {
          if (isErrno(err, 'ENOENT')) return;
          await fs.rm(d, { recursive: true, force: true });
          return;
        }
        this.deleteLater(doomed);
      } catch (err) {
        throw storageError(`remove layer ${id}`, err, { layerId: id });
      }
    });
  }

  /** Whether the layer was made throwaway (createReadWrite with `volatile`). */
  private async isVolatile(d: string): Promise<boolean> {
    try {
      await fs.access(path.join(d, VOLATILE_MARKER));
      return true;
    } catch {
      return false;
    }
  }

  /** Whether an overlay is mounted on `merged` (statfs magic; the home itself is never overlayfs). */
  private isMounted(merged: string): boolean {
    try {
      return this.sys.statfs(merged).type === FsMagic.OVERLAYFS;
    } catch {
      return false;
    }
  }

  async get(id: string, mountLabel?: string): Promise<string> {
    const d = this.dir(id);
    // A mounted layer is only counted (no I/O); the first get mounts it.
    return this.views.get(id, async () => {
      const lower = await readOrNull(path.join(d, 'lower')).catch((err: unknown) => {
        throw storageError(`read layer ${id}`, err, { layerId: id });
      });
      if (lower === null) {
        // A base layer: nothing to mount, its diff is the whole tree.
        await this.existing(id);
        return { path: path.join(d, 'diff'), counted: false };
      }
      if (mountLabel) this.log.debug({ layerId: id, mountLabel }, 'mount label ignored (no SELinux)');
      const merged = path.join(d, 'merged');
      if (this.isMounted(merged)) {
        // Mounted by an earlier daemon that did not clean up: adopt it.
        return { path: merged, counted: true };
      }
      await fs.mkdir(merged, { mode: 0o700 }).catch((err: unknown) => {
        if (!isErrno(err, 'EEXIST')) throw storageError(`create ${merged}`, err, { layerId: id });
      });
      const lowers = lower.split(':');
      const options = [...this.mountOptions];
      if (this.volatileWorks !== false && (await this.isVolatile(d))) {
        // overlayfs leaves work/work/incompat/volatile behind (even after a clean unmount) and
        // refuses to mount over it: this layer is throwaway, so it goes.
        await fs.rm(path.join(d, 'work', 'work', 'incompat'), { recursive: true, force: true });
        options.push('volatile');
      }
      const tail = [`upperdir=${d}/diff`, `workdir=${d}/work`, ...options];
      const data = [`lowerdir=${lowers.map((l) => path.join(this.root, l)).join(':')}`, ...tail].join(',');
      try {
        if (Buffer.byteLength(data) < this.pageSize) {
          try {
            this.sys.mount('overlay', merged, 'overlay', 0, data);
            if (options.includes('volatile')) this.volatileWorks = true;
          } catch (err) {
            // A kernel older than 5.10 has no `volatile`: mount as every other layer from now on.
            if (!options.includes('volatile') || this.volatileWorks === true || !isErrno(err, 'EINVAL')) throw err;
            this.volatileWorks = false;
            this.log.info({ layerId: id }, 'overlayfs has no volatile option here: throwaway layers are mounted like others');
            this.sys.mount('overlay', merged, 'overlay', 0, data.replace(/,volatile$/, ''));
          }
        } else {
          // Too long for one page with absolute paths: mount(8) run from the home with relative
          // lowerdirs (the daemon itself never changes its working directory).
          const rel = [`lowerdir=${lowers.join(':')}`, `upperdir=${id}/diff`, `workdir=${id}/work`, ...options].join(',');
          if (Buffer.byteLength(rel) >= this.pageSize)
            throw new Error(`${lowers.length} lower layers do not fit the mount data page even with relative paths`);
          await execFileP('mount', ['-n', '-i', '-t', 'overlay', '-o', rel, 'overlay', `${id}/merged`], { cwd: this.root });
        }
      } catch (err) {
        const stderr = (err as { stderr?: string }).stderr?.trim();
        throw storageError(`mount layer ${id}`, stderr ? new Error(stderr) : err, { layerId: id, depth: lowers.length });
      }
      return { path: merged, counted: true };
    });
  }

  async put(id: string): Promise<void> {
    const d = this.dir(id);
    await this.views.put(id, async (m) => {
      const merged = path.join(d, 'merged');
      if (m === undefined && !this.isMounted(merged)) return; // a base layer, or not mounted
      try {
        this.sys.umount2(merged, MNT_DETACH);
      } catch (err) {
        if (!isErrno(err, 'EINVAL') && !isErrno(err, 'ENOENT')) throw storageError(`unmount layer ${id}`, err, { layerId: id });
      }
    });
  }

  async exists(id: string): Promise<boolean> {
    try {
      return (await fs.lstat(this.dir(id))).isDirectory();
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
    return [
      ['Backing Filesystem', backing],
      ['Supports d_type', 'true'],
      ['Using metacopy', 'false'],
      ['Native Overlay Diff', 'true'],
      ['userxattr', 'false'],
    ];
  }

  /** The diff dirs of the parents, nearest first (resolved from the short links). */
  private async lowerDirs(id: string): Promise<string[]> {
    const lower = await readOrNull(path.join(this.dir(id), 'lower'));
    if (lower === null || lower === '') return [];
    const out: string[] = [];
    for (const l of lower.split(':')) {
      const link = path.join(this.root, l);
      out.push(path.resolve(path.dirname(link), await fs.readlink(link)));
    }
    return out;
  }

  async getMetadata(id: string): Promise<Record<string, string>> {
    const d = await this.existing(id);
    const md: Record<string, string> = {
      MergedDir: path.join(d, 'merged'),
      UpperDir: path.join(d, 'diff'),
      WorkDir: path.join(d, 'work'),
    };
    const lowers = await this.lowerDirs(id);
    if (lowers.length > 0) md.LowerDir = lowers.join(':');
    return md;
  }

  /** Deletes a renamed-away layer dir in the background; a failure is logged (the next init retries). */
  private deleteLater(dir: string): void {
    const p = fs.rm(dir, { recursive: true, force: true }).then(
      () => undefined,
      (err: unknown) => this.log.warn({ err, dir }, 'deleting a removed layer failed'),
    );
    this.deleting.add(p);
    void p.finally(() => this.deleting.delete(p));
  }

  /** Resolves once every removed layer's data is deleted from disk. */
  async settled(): Promise<void> {
    while (this.deleting.size > 0) await Promise.all([...this.deleting]);
  }

  async cleanup(): Promise<void> {
    await this.settled();
    for (const [id, m] of this.views.entries()) {
      try {
        this.sys.umount2(m.path, MNT_DETACH);
      } catch (err) {
        this.log.warn({ layerId: id, err }, 'unmount at cleanup failed');
      }
    }
    this.views.clear();
    this.home.release((err) => this.log.warn({ err }, 'unmount of the driver home failed'));
  }

  /** Whether `parent` is the layer `id` was created on (then diff/ alone is the answer). */
  private async isParent(id: string, parent: string): Promise<boolean> {
    const d = await this.existing(id);
    const lower = (await readOrNull(path.join(d, 'lower'))) ?? '';
    if (parent === '') return lower === '';
    const pd = await this.existing(parent);
    const link = await readOrNull(path.join(pd, 'link'));
    return link !== null && lower.split(':')[0] === `${LINK_DIR}/${link}`;
  }

  async diff(id: string, parent: string): Promise<Readable> {
    const d = await this.existing(id);
    if (await this.isParent(id, parent)) return packDir(path.join(d, 'diff'), this.sys, { overlayWhiteouts: true });
    // Against another layer: compare the mounted trees; the mounts last as long as the stream.
    return diffOfViews(this, id, parent, this.sys, (err) => this.log.warn({ layerId: id, err }, 'release after diff failed'));
  }

  async changes(id: string, parent: string): Promise<Change[]> {
    if (await this.isParent(id, parent)) return this.nativeChanges(id);
    return changesOfViews(this, id, parent);
  }

  /**
   * Changes read from diff/ alone: a whiteout is a deletion, anything else is a modification
   * when some parent has the path (a copied-up directory counts, as Docker reports it) and an
   * addition otherwise. Below an opaque directory everything is new.
   */
  private async nativeChanges(id: string): Promise<Change[]> {
    const upper = path.join(this.dir(id), 'diff');
    const lowers = await this.lowerDirs(id);
    const out: Change[] = [];
    const inLower = async (rel: string): Promise<boolean> => {
      const parts = rel.split('/');
      for (const l of lowers) {
        let hiddenBelow = false;
        for (let i = 0; i < parts.length; i++) {
          const p = path.join(l, ...parts.slice(0, i + 1));
          const st = await lstatOrNull(p);
          if (st === null) {
            if (hiddenBelow) return false;
            break; // not in this layer: look further down
          }
          if (isWhiteout(st)) return false;
          if (i === parts.length - 1) return true;
          if (!st.isDirectory()) return false;
          if (this.isOpaque(p)) hiddenBelow = true;
        }
      }
      return false;
    };
    const walk = async (rel: string, lowerVisible: boolean): Promise<void> => {
      const abs = rel === '' ? upper : path.join(upper, rel);
      for (const n of (await fs.readdir(abs)).sort()) {
        const childRel = rel === '' ? n : `${rel}/${n}`;
        const st = await fs.lstat(path.join(abs, n));
        if (isWhiteout(st)) {
          out.push({ path: `/${childRel}`, kind: ChangeKind.Delete });
          continue;
        }
        const existed = lowerVisible && (await inLower(childRel));
        out.push({ path: `/${childRel}`, kind: existed ? ChangeKind.Modify : ChangeKind.Add });
        if (st.isDirectory()) await walk(childRel, existed && !this.isOpaque(path.join(abs, n)));
      }
    };
    await walk('', lowers.length > 0);
    return out;
  }

  private isOpaque(dir: string): boolean {
    try {
      return this.sys.lgetxattr(dir, OVERLAY_OPAQUE_XATTR)?.toString() === 'y';
    } catch {
      return false;
    }
  }

  async applyDiff(id: string, parent: string, diff: Readable): Promise<number> {
    const d = await this.existing(id);
    const t0 = performance.now();
    let size: number;
    if (await this.isParent(id, parent)) {
      size = await applyTar(path.join(d, 'diff'), diff, { fs: this.sys, whiteoutFormat: 'overlay' });
    } else {
      // Not on its own parent: apply through the mount, where deleting is how whiteouts work.
      size = await withViews(this, id, '', (view) => applyTar(view, diff, { fs: this.sys, whiteoutFormat: 'apply' }));
    }
    this.log.debug({ layerId: id, size, ms: Math.round(performance.now() - t0) }, 'layer applied');
    return size;
  }

  async diffSize(id: string, parent: string): Promise<number> {
    const d = await this.existing(id);
    if (await this.isParent(id, parent)) return diskUsage(path.join(d, 'diff'));
    return diffSizeOfViews(this, id, parent);
  }

  async capabilities(): Promise<GraphDriverCapabilities> {
    return { reproducesExactDiffs: false };
  }
}

/** Whether `dir` is a mount point, by /proc/self/mountinfo. */
export async function isMountPoint(dir: string): Promise<boolean> {
  return (await mountAt(dir)) !== null;
}

export const overlay2Driver: GraphDriverDescriptor = {
  kind: 'graph',
  name: 'overlay2',
  async create(deps: GraphDriverDeps): Promise<GraphDriver | DriverSkip> {
    // Loaded here so a process that never makes the driver never loads the addon.
    const { realSyscalls } = await import('@berth/native');
    const sys = realSyscalls();
    const logger = deps.logger.child({ driver: 'overlay2' });
    const mountOptions = await plainFormatOptions();
    const driver = new Overlay2Driver({ root: deps.root, logger, sys, mountOptions });
    try {
      await driver.init();
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      if (cause?.code !== 'EPERM') throw err;
      return { skip: 'overlay2: mounting needs CAP_SYS_ADMIN' };
    }
    const facts = await probeOverlay(path.resolve(deps.root), sys, mountOptions);
    const reason = skipReason(facts);
    if (reason !== null) {
      await driver.cleanup();
      logger.info({ reason }, 'overlay2 not available');
      return { skip: reason };
    }
    return driver;
  },
};
