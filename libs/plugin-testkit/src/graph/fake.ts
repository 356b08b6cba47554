import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { applyTar, changesBetween, changesSize, packChanges, type ArchiveFs } from '@berth/archive';
import { BerthError } from '@berth/errors';
import { type Change, type CreateOpts, type GraphDriver, type GraphDriverCapabilities } from '@berth/plugin-api';

const execFileP = promisify(execFile);
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * A reference GraphDriver with nothing clever in it: every layer is a plain directory holding
 * a full copy of its parent (`cp -a`), views are those directories, Diff compares trees. It
 * exists to prove the contract suite is satisfiable and to stand in for a driver in tests of
 * code above the driver. Counts get/put like a mounting driver would (visible via `held`).
 */
export class FakeGraphDriver implements GraphDriver {
  readonly name = 'fake';
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly root: string,
    private readonly afs: ArchiveFs,
  ) {}

  /** Outstanding gets of a layer. */
  held(id: string): number {
    return this.counts.get(id) ?? 0;
  }

  private dir(id: string): string {
    if (!ID.test(id)) throw new BerthError('BERTH_INVALID_ARGUMENT', `fake: invalid layer id ${JSON.stringify(id)}`);
    return path.join(this.root, id);
  }

  private async existing(id: string): Promise<string> {
    const d = this.dir(id);
    const st = await fs.lstat(d).catch(() => null);
    if (st?.isDirectory()) return d;
    throw new BerthError('BERTH_LAYER_NOT_FOUND', `fake: no layer ${id}`);
  }

  async create(id: string, parent: string, _opts?: CreateOpts): Promise<void> {
    const d = this.dir(id);
    const p = parent === '' ? null : await this.existing(parent);
    await fs.mkdir(this.root, { recursive: true });
    try {
      await fs.mkdir(d, { mode: 0o755 });
    } catch (err) {
      throw new BerthError('BERTH_STORAGE', `fake: layer ${id}: ${(err as Error).message}`, { cause: err });
    }
    if (p !== null) await execFileP('cp', ['-a', '-T', '--', p, d]);
  }

  async createReadWrite(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    return this.create(id, parent, opts);
  }

  async remove(id: string): Promise<void> {
    this.counts.delete(id);
    await fs.rm(this.dir(id), { recursive: true, force: true });
  }

  async get(id: string): Promise<string> {
    const d = await this.existing(id);
    this.counts.set(id, this.held(id) + 1);
    return d;
  }

  async put(id: string): Promise<void> {
    const n = this.held(id);
    if (n <= 1) this.counts.delete(id);
    else this.counts.set(id, n - 1);
  }

  async exists(id: string): Promise<boolean> {
    return (await fs.lstat(this.dir(id)).catch(() => null))?.isDirectory() ?? false;
  }

  async status(): Promise<[string, string][]> {
    return [['Layers', String((await fs.readdir(this.root).catch(() => [])).length)]];
  }

  async getMetadata(id: string): Promise<Record<string, string>> {
    return { Dir: await this.existing(id) };
  }

  async cleanup(): Promise<void> {
    this.counts.clear();
  }

  async diff(id: string, parent: string): Promise<Readable> {
    const d = await this.existing(id);
    return packChanges(parent === '' ? null : await this.existing(parent), d, this.afs);
  }

  async changes(id: string, parent: string): Promise<Change[]> {
    return changesBetween(parent === '' ? null : await this.existing(parent), await this.existing(id));
  }

  async applyDiff(id: string, _parent: string, diff: Readable): Promise<number> {
    return applyTar(await this.existing(id), diff, { fs: this.afs });
  }

  async diffSize(id: string, parent: string): Promise<number> {
    const d = await this.existing(id);
    return changesSize(parent === '' ? null : await this.existing(parent), d);
  }

  async capabilities(): Promise<GraphDriverCapabilities> {
    return { reproducesExactDiffs: false };
  }
}

/** A fake driver in `root` (made if missing); `afs` defaults to @berth/native's realSyscalls(). */
export async function fakeGraphDriver(root: string, afs?: ArchiveFs): Promise<FakeGraphDriver> {
  await fs.mkdir(root, { recursive: true });
  const sys = afs ?? (await import('@berth/native')).realSyscalls();
  return new FakeGraphDriver(root, sys);
}
