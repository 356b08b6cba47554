/**
 * An in-memory VolumeDriver that passes the suite: each volume a directory under a temp root,
 * mounts counted by ID, Remove refused while mounted.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { VolumeDriver, VolumeInfo } from '@berth/plugin-api';

export class FakeVolumeDriver implements VolumeDriver {
  readonly volumes = new Map<string, { opts: Record<string, string>; createdAt: string; mounts: Set<string> }>();

  constructor(
    readonly root: string,
    readonly name = 'fake',
  ) {}

  private vol(n: string) {
    const v = this.volumes.get(n);
    if (!v) throw new Error(`no such volume: ${n}`);
    return v;
  }
  private pathOf(n: string): string {
    return path.join(this.root, n);
  }

  async create(req: { Name: string; Opts: Record<string, string> | null }): Promise<void> {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(req.Name)) throw new Error(`invalid volume name: ${req.Name}`);
    if (this.volumes.has(req.Name)) return;
    await fs.mkdir(this.pathOf(req.Name), { recursive: true });
    this.volumes.set(req.Name, { opts: req.Opts ?? {}, createdAt: new Date().toISOString(), mounts: new Set() });
  }
  async remove(req: { Name: string }): Promise<void> {
    if (this.vol(req.Name).mounts.size) throw new Error(`volume ${req.Name} is in use`);
    await fs.rm(this.pathOf(req.Name), { recursive: true, force: true });
    this.volumes.delete(req.Name);
  }
  async mount(req: { Name: string; ID: string }): Promise<{ Mountpoint: string }> {
    this.vol(req.Name).mounts.add(req.ID);
    return { Mountpoint: this.pathOf(req.Name) };
  }
  async unmount(req: { Name: string; ID: string }): Promise<void> {
    this.vol(req.Name).mounts.delete(req.ID);
  }
  async path(req: { Name: string }): Promise<{ Mountpoint: string }> {
    this.vol(req.Name);
    return { Mountpoint: this.pathOf(req.Name) };
  }
  async get(req: { Name: string }): Promise<{ Volume: VolumeInfo | null }> {
    const v = this.volumes.get(req.Name);
    return { Volume: v ? { Name: req.Name, Mountpoint: this.pathOf(req.Name), CreatedAt: v.createdAt, Status: { mounts: v.mounts.size } } : null };
  }
  async list(): Promise<{ Volumes: VolumeInfo[] }> {
    return { Volumes: [...this.volumes.keys()].map((n) => ({ Name: n, Mountpoint: this.pathOf(n) })) };
  }
  async capabilities(): Promise<{ Capabilities: { Scope: string } }> {
    return { Capabilities: { Scope: 'local' } };
  }
}

/** A fresh fake under its own temp root, and the cleanup that removes it. */
export async function fakeVolumeDriver(): Promise<{ driver: FakeVolumeDriver; cleanup(): Promise<void> }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), `berth-fake-volumes-${process.pid}-`));
  return { driver: new FakeVolumeDriver(root), cleanup: () => fs.rm(root, { recursive: true, force: true }) };
}
