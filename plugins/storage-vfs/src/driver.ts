import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { BerthError } from '@berth/errors';
import type {
  Change,
  CreateOpts,
  DriverLogger,
  DriverSkip,
  GraphDriver,
  GraphDriverCapabilities,
  GraphDriverDeps,
  GraphDriverDescriptor,
} from '@berth/plugin-api';
import { applyTar, changesBetween, changesSize, packChanges, spreadLayerDirs, type ArchiveFs, type InodeFlagsFs } from '@berth/archive';

const execFileP = promisify(execFile);

export interface VfsDriverOptions {
  /** The driver home, e.g. /var/lib/berth/vfs; layers live in `<root>/dir/<id>`. */
  root: string;
  logger: DriverLogger;
  /** mknod and xattr calls (@berth/native's realSyscalls() in production). */
  fs: ArchiveFs & InodeFlagsFs;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function storageError(what: string, cause: unknown, details: Record<string, unknown> = {}): BerthError {
  const inner = cause instanceof Error ? cause.message : String(cause);
  return new BerthError('BERTH_STORAGE', `vfs: ${what}: ${inner}`, { cause, details });
}

/**
 * Docker's vfs layout: `<root>/dir/<id>`, each layer a full copy of its parent. Works on any
 * filesystem; costs a copy per layer and per container.
 */
export class VfsDriver implements GraphDriver {
  readonly name = 'vfs';
  private readonly home: string;
  private readonly log: DriverLogger;

  constructor(private readonly opts: VfsDriverOptions) {
    this.home = path.join(opts.root, 'dir');
    this.log = opts.logger;
  }

  /** Prepares the driver home (`<root>/dir`, mode 0700 as Docker). */
  async init(): Promise<void> {
    await fs.mkdir(this.home, { recursive: true, mode: 0o700 });
    await fs.chmod(this.home, 0o700);
    // Each layer dir in a block group of its own (chattr +T; see spreadLayerDirs).
    if (!spreadLayerDirs(this.home, this.opts.fs)) this.log.debug({}, 'layer dirs not spread over block groups (no inode flags here)');
  }

  private dir(id: string): string {
    if (!ID.test(id)) throw new BerthError('BERTH_INVALID_ARGUMENT', `vfs: invalid layer id ${JSON.stringify(id)}`, { details: { layerId: id } });
    return path.join(this.home, id);
  }

  private async existing(id: string): Promise<string> {
    const d = this.dir(id);
    try {
      const st = await fs.lstat(d);
      if (st.isDirectory()) return d;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError(`stat layer ${id}`, err, { layerId: id });
    }
    throw new BerthError('BERTH_LAYER_NOT_FOUND', `vfs: no layer ${id}`, { details: { layerId: id } });
  }

  async create(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    if (opts?.storageOpt !== undefined && Object.keys(opts.storageOpt).length > 0)
      throw new BerthError('BERTH_INVALID_ARGUMENT', 'vfs: --storage-opt is not supported', { details: { layerId: id, storageOpt: Object.keys(opts.storageOpt) } });
    const d = this.dir(id);
    const parentDir = parent === '' ? null : await this.existing(parent);
    const t0 = performance.now();
    try {
      await fs.mkdir(this.home, { recursive: true, mode: 0o700 });
      await fs.mkdir(d, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        throw new BerthError('BERTH_STORAGE', `vfs: layer ${id} already exists`, { details: { layerId: id } });
      throw storageError(`create layer ${id}`, err, { layerId: id });
    }
    try {
      await fs.chmod(d, 0o755);
      if (parentDir !== null) {
        // GNU cp -a keeps modes, owners, times, hard links, symlinks, device nodes and xattrs,
        // and reflinks where the filesystem can; on the busybox rootfs it takes a few ms where a
        // Node walk of the same tree takes tens (see the privileged test's timing).
        await execFileP('cp', ['-a', '--reflink=auto', '-T', '--', parentDir, d], { maxBuffer: 1 << 20 });
      }
    } catch (err) {
      await fs.rm(d, { recursive: true, force: true }).catch(() => undefined);
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw storageError(`copy layer ${parent} to ${id}`, stderr ? new Error(stderr) : err, { layerId: id });
    }
    this.log.debug({ layerId: id, parent, ms: Math.round(performance.now() - t0) }, 'layer created');
  }

  async createReadWrite(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    return this.create(id, parent, opts);
  }

  async remove(id: string): Promise<void> {
    const d = this.dir(id);
    try {
      await fs.rm(d, { recursive: true, force: true });
    } catch (err) {
      throw storageError(`remove layer ${id}`, err, { layerId: id });
    }
  }

  async get(id: string, _mountLabel?: string): Promise<string> {
    return this.existing(id);
  }

  async put(id: string): Promise<void> {
    // vfs mounts nothing; only check the id.
    this.dir(id);
  }

  async exists(id: string): Promise<boolean> {
    try {
      return (await fs.lstat(this.dir(id))).isDirectory();
    } catch {
      return false;
    }
  }

  async status(): Promise<[string, string][]> {
    return [];
  }

  async getMetadata(id: string): Promise<Record<string, string>> {
    await this.existing(id);
    return {};
  }

  async cleanup(): Promise<void> {}

  async diff(id: string, parent: string): Promise<Readable> {
    const d = await this.existing(id);
    return packChanges(parent === '' ? null : await this.existing(parent), d, this.opts.fs);
  }

  async changes(id: string, parent: string): Promise<Change[]> {
    const d = await this.existing(id);
    if (parent === '') return changesBetween(null, d);
    return changesBetween(await this.existing(parent), d);
  }

  async applyDiff(id: string, _parent: string, diff: Readable): Promise<number> {
    const d = await this.existing(id);
    const t0 = performance.now();
    const size = await applyTar(d, diff, { fs: this.opts.fs });
    this.log.debug({ layerId: id, size, ms: Math.round(performance.now() - t0) }, 'layer applied');
    return size;
  }

  async diffSize(id: string, parent: string): Promise<number> {
    const d = await this.existing(id);
    return changesSize(parent === '' ? null : await this.existing(parent), d);
  }

  async capabilities(): Promise<GraphDriverCapabilities> {
    return { reproducesExactDiffs: false };
  }
}

export const vfsDriver: GraphDriverDescriptor = {
  kind: 'graph',
  name: 'vfs',
  async create(deps: GraphDriverDeps): Promise<GraphDriver | DriverSkip> {
    // Loaded here so a process that never makes the driver never loads the addon.
    const { realSyscalls } = await import('@berth/native');
    const driver = new VfsDriver({ root: deps.root, logger: deps.logger.child({ driver: 'vfs' }), fs: realSyscalls() });
    await driver.init();
    return driver;
  },
};
