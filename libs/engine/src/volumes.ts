/**
 * Volumes: the store of named and anonymous volumes and Docker's built-in `local` driver.
 *
 * Layout (Docker's): `<data-root>/volumes/<name>/_data` is what containers mount, beside it
 * `volume.json` holds the metadata (driver, labels, options, creation time), written atomically
 * and fsynced so a volume survives a daemon restart or a power loss as it was created.
 *
 * A volume is in use while a container (created, running or stopped) references it; the store
 * asks its owner for those references (`refs`), so they are never out of step with the records
 * of the containers. A `local` volume with options (`type`, `device`, `o`) is mounted with
 * mount(2) when its first user starts and unmounted when its last user stops, as Docker's local
 * driver does; a plain one is a directory and needs no mount.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Filters } from '@berth/api';
import { BerthError } from '@berth/errors';
import type { Logger } from '@berth/log';
import { checkFilterKeys, invalidFilter, matchLabels, matchRegexp } from './filters.js';
import { writeFileAtomic } from './store.js';

/** The label Docker (23+) gives anonymous volumes; prune on API 1.42+ removes only those by default. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

/** Docker's names.RestrictedNameChars, as the local driver checks a volume name. */
export const VOLUME_NAME_CHARS = '[a-zA-Z0-9][a-zA-Z0-9_.-]';
const nameRe = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** The options of Docker's local driver (`size` needs a quota-capable filesystem: not offered). */
const localOptionKeys = new Set(['type', 'device', 'o']);

/** `GET /volumes/{name}` and each entry of `GET /volumes` (Docker's volume.Volume). */
export interface Volume {
  CreatedAt: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: 'local';
  /** `system df` only: size and the number of containers referencing it. */
  UsageData?: { Size: number; RefCount: number };
}

export interface VolumeCreateRequest {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

/** What is stored per volume (volume.json). */
interface VolumeMeta {
  Name: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Options: Record<string, string> | null;
  CreatedAt: string;
}

/** The kernel calls of the local driver: a recording fake in unit tests, @berth/native's syscalls for real. */
export interface VolumeMounter {
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
}

/** mount(2) flags by the names `o=` may use (Docker's mount.ParseOptions); the rest is data for the filesystem. */
const mountFlags: Record<string, [clear: boolean, flag: number]> = {
  defaults: [false, 0], ro: [false, 0x1], rw: [true, 0x1], suid: [true, 0x2], nosuid: [false, 0x2], dev: [true, 0x4], nodev: [false, 0x4],
  exec: [true, 0x8], noexec: [false, 0x8], sync: [false, 0x10], async: [true, 0x10], dirsync: [false, 0x80], remount: [false, 0x20],
  mand: [false, 0x40], nomand: [true, 0x40], atime: [true, 0x400], noatime: [false, 0x400], diratime: [true, 0x800], nodiratime: [false, 0x800],
  bind: [false, 0x1000], rbind: [false, 0x1000 | 0x4000], relatime: [false, 0x200000], norelatime: [true, 0x200000],
  strictatime: [false, 0x1000000], nostrictatime: [true, 0x1000000],
};

/** `o=` split into mount(2) flags and the filesystem's data string. */
export function parseMountOptions(o: string): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const opt of o.split(',').filter(Boolean)) {
    const f = mountFlags[opt];
    if (!f) data.push(opt);
    else if (f[0]) flags &= ~f[1];
    else flags |= f[1];
  }
  return { flags, data: data.join(',') };
}

const MNT_DETACH = 0x2;

export interface VolumeStoreOptions {
  root: string;
  logger: Logger;
  /** The ids of the containers that reference a volume (created, running or stopped). */
  refs(name: string): string[];
  /** Event sink: `volume` create, destroy, mount, unmount, prune. */
  emit(action: string, id: string, attributes: Record<string, string>): void;
  /** Lazily: the native addon loads only when a volume with options is mounted. */
  mounter(): VolumeMounter;
}

export function volumeNameProblem(name: string): string | null {
  if (name.length === 1) return 'volume name is too short, names should be at least two alphanumeric characters';
  if (!nameRe.test(name))
    return `"${name}" includes invalid characters for a local volume name, only "${VOLUME_NAME_CHARS}" are allowed. If you intended to pass a host directory, use absolute path`;
  return null;
}

/** RFC 3339 to the second in UTC, as dockerd shows a volume's CreatedAt. */
function rfc3339Seconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export class VolumeStore {
  private readonly volumes = new Map<string, VolumeMeta>();
  /** Which containers have each volume mounted now (started and not yet exited). */
  private readonly mounted = new Map<string, Set<string>>();
  private readonly log: Logger;

  constructor(private readonly o: VolumeStoreOptions) {
    this.log = o.logger;
  }

  get root(): string {
    return this.o.root;
  }

  /**
   * Reads the volumes of the data root. A directory with `_data` but no metadata (a create cut
   * short after its mkdir, or a volume copied in by hand) is a plain local volume, as Docker's
   * local driver lists any directory of its root; one without `_data` is a leftover and goes.
   */
  load(): void {
    mkdirSync(this.o.root, { recursive: true, mode: 0o701 });
    for (const name of readdirSync(this.o.root)) {
      const dir = join(this.o.root, name);
      if (!nameRe.test(name) || !safeIsDir(dir)) continue;
      const meta = readMeta(join(dir, 'volume.json'));
      if (meta && meta.Name === name) {
        this.volumes.set(name, meta);
        continue;
      }
      if (safeIsDir(join(dir, '_data'))) {
        this.volumes.set(name, { Name: name, Driver: 'local', Labels: null, Options: null, CreatedAt: rfc3339Seconds(statSync(dir).ctimeMs) });
        continue;
      }
      this.log.warn({ volume: name }, 'removing a volume directory without data or metadata (an interrupted create)');
      rmSync(dir, { recursive: true, force: true });
    }
  }

  pathOf(name: string): string {
    return join(this.o.root, name, '_data');
  }

  has(name: string): boolean {
    return this.volumes.has(name);
  }

  /**
   * Creates a volume, or answers the existing one of that name when its driver is the same
   * (Docker's create is idempotent: labels and options of a second create are ignored).
   * `created` tells which happened, so a container create can undo only what it made.
   */
  create(req: VolumeCreateRequest, opts: { anonymous?: boolean } = {}): { volume: Volume; created: boolean } {
    const name = req.Name ? req.Name : randomBytes(32).toString('hex');
    const driver = req.Driver || 'local';
    const fail = (code: 'BERTH_INVALID_ARGUMENT' | 'BERTH_VOLUME_IN_USE' | 'BERTH_PLUGIN_NOT_FOUND', why: string): BerthError =>
      new BerthError(code, `create ${name}: ${why}`, { details: { field: code === 'BERTH_INVALID_ARGUMENT' ? 'Name' : 'Driver' } });
    const existing = this.volumes.get(name);
    if (existing) {
      if (existing.Driver !== driver) throw fail('BERTH_VOLUME_IN_USE', `driver '${existing.Driver}' already has volume '${name}': volume name must be unique`);
      // Docker emits create again for each create that finds the volume (a container's `-v name:/x` too).
      this.o.emit('create', name, { driver });
      return { volume: this.view(existing), created: false };
    }
    if (driver !== 'local') throw fail('BERTH_PLUGIN_NOT_FOUND', `error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    const problem = volumeNameProblem(name);
    if (problem) throw fail('BERTH_INVALID_ARGUMENT', problem);
    const options = req.DriverOpts && Object.keys(req.DriverOpts).length ? { ...req.DriverOpts } : null;
    for (const k of Object.keys(options ?? {})) if (!localOptionKeys.has(k)) throw new BerthError('BERTH_INVALID_ARGUMENT', `create ${name}: invalid option: "${k}"`, { details: { field: 'DriverOpts' } });
    let labels = req.Labels && Object.keys(req.Labels).length ? { ...req.Labels } : null;
    if (opts.anonymous) labels = { ...(labels ?? {}), [ANONYMOUS_LABEL]: '' };
    const meta: VolumeMeta = { Name: name, Driver: driver, Labels: labels, Options: options, CreatedAt: rfc3339Seconds(Date.now()) };
    const dir = join(this.o.root, name);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o701 });
      mkdirSync(join(dir, '_data'), { mode: 0o755 });
      writeFileAtomic(join(dir, 'volume.json'), JSON.stringify(meta), 0o600, true);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw new BerthError('BERTH_VOLUME', `create ${name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.volumes.set(name, meta);
    this.o.emit('create', name, { driver });
    return { volume: this.view(meta), created: true };
  }

  get(name: string): Volume {
    const v = this.volumes.get(name);
    if (!v) throw new BerthError('BERTH_VOLUME_NOT_FOUND', `get ${name}: no such volume`);
    return this.view(v);
  }

  /** `GET /volumes`: filters `dangling`, `driver`, `label`, `name`. */
  list(filters: Filters): Volume[] {
    checkFilterKeys(filters, ['dangling', 'driver', 'label', 'name']);
    const dangling = [...(filters.get('dangling') ?? [])].map((v) => {
      if (['true', '1'].includes(v.toLowerCase())) return true;
      if (['false', '0'].includes(v.toLowerCase())) return false;
      throw invalidFilter('dangling', v);
    });
    const out: Volume[] = [];
    for (const v of [...this.volumes.values()].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0))) {
      if (dangling.length && !dangling.includes(this.o.refs(v.Name).length === 0)) continue;
      const drivers = filters.get('driver');
      if (drivers?.size && !drivers.has(v.Driver)) continue;
      if (!matchRegexp(filters.get('name'), v.Name)) continue;
      if (!matchLabels(filters.get('label'), v.Labels)) continue;
      out.push(this.view(v));
    }
    return out;
  }

  /**
   * `DELETE /volumes/{name}`: refused while a container references it (force does not change
   * that, as in Docker); `force` only makes a missing volume no error.
   */
  remove(name: string, opts: { force?: boolean } = {}): void {
    const v = this.volumes.get(name);
    if (!v) {
      if (opts.force) return;
      throw new BerthError('BERTH_VOLUME_NOT_FOUND', `get ${name}: no such volume`);
    }
    const refs = this.o.refs(name);
    if (refs.length) throw new BerthError('BERTH_VOLUME_IN_USE', `remove ${name}: volume is in use - [${refs.join(', ')}]`);
    this.dropMount(name);
    this.volumes.delete(name);
    rmSync(join(this.o.root, name), { recursive: true, force: true });
    this.o.emit('destroy', name, { driver: v.Driver });
  }

  /**
   * `POST /volumes/prune`: unused volumes; from API 1.42 only anonymous ones unless `all=true`
   * (Docker 23's rule). Filters `label`, `label!`, `all`.
   */
  async prune(filters: Filters, apiVersion: string): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    checkFilterKeys(filters, versionAtLeast(apiVersion, '1.42') ? ['label', 'label!', 'all'] : ['label', 'label!']);
    const allValues = [...(filters.get('all') ?? [])];
    for (const a of allValues) if (!['true', 'false', '1', '0'].includes(a.toLowerCase())) throw invalidFilter('all', a);
    const all = !versionAtLeast(apiVersion, '1.42') || allValues.some((a) => ['true', '1'].includes(a.toLowerCase()));
    const notLabels = [...(filters.get('label!') ?? [])];
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const v of [...this.volumes.values()]) {
      if (!all && !(v.Labels && ANONYMOUS_LABEL in v.Labels)) continue;
      if (!matchLabels(filters.get('label'), v.Labels)) continue;
      if (notLabels.some((l) => matchLabels(new Set([l]), v.Labels))) continue;
      if (this.o.refs(v.Name).length) continue;
      const size = await this.size(v.Name);
      try {
        this.remove(v.Name);
      } catch (err) {
        this.log.warn({ err, volume: v.Name }, 'prune: volume removal failed');
        continue;
      }
      deleted.push(v.Name);
      reclaimed += size;
    }
    this.o.emit('prune', '', { reclaimed: String(reclaimed) });
    return { VolumesDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  /** The volume's data, mounted for `containerId` when it has options: the host path to bind into the container. */
  mount(name: string, containerId: string): string {
    const v = this.volumes.get(name);
    if (!v) throw new BerthError('BERTH_VOLUME_NOT_FOUND', `get ${name}: no such volume`);
    const path = this.pathOf(name);
    const users = this.mounted.get(name) ?? new Set<string>();
    if (users.size === 0 && v.Options?.type) {
      const { flags, data } = parseMountOptions(v.Options.o ?? '');
      mkdirSync(path, { recursive: true, mode: 0o755 });
      try {
        this.o.mounter().mount(v.Options.device ?? v.Options.type, path, v.Options.type === 'none' ? null : v.Options.type, flags, data || null);
      } catch (err) {
        const e = err as { message?: string };
        throw new BerthError('BERTH_VOLUME', `error while mounting volume '${path}': failed to mount local volume: mount ${v.Options.device ?? ''}:${path}, flags: 0x${flags.toString(16)}, data: ${data}: ${e.message ?? String(err)}`, { cause: err });
      }
    }
    users.add(containerId);
    this.mounted.set(name, users);
    return path;
  }

  isMountedBy(name: string, containerId: string): boolean {
    return this.mounted.get(name)?.has(containerId) === true;
  }

  /** The container no longer uses the volume; the last user unmounts a volume with options. */
  unmount(name: string, containerId: string): void {
    const users = this.mounted.get(name);
    if (!users?.delete(containerId)) return;
    if (users.size === 0) this.dropMount(name);
  }

  /**
   * At daemon start, after recovery: `users` are the running containers of each volume (their
   * mounts stay); a volume with options still mounted but no longer used is unmounted.
   */
  reconcile(users: Map<string, string[]>): void {
    for (const [name, ids] of users) if (this.volumes.has(name)) this.mounted.set(name, new Set(ids));
    for (const v of this.volumes.values()) {
      if (!v.Options?.type || this.mounted.get(v.Name)?.size) continue;
      if (isMountPoint(this.pathOf(v.Name))) this.unmountPath(v.Name);
    }
  }

  private dropMount(name: string): void {
    this.mounted.delete(name);
    const v = this.volumes.get(name);
    if (v?.Options?.type) this.unmountPath(name);
  }

  private unmountPath(name: string): void {
    try {
      this.o.mounter().umount2(this.pathOf(name), MNT_DETACH);
    } catch (err) {
      // EINVAL: not mounted (a mount that failed, or was undone by hand).
      if ((err as { code?: string }).code !== 'EINVAL') this.log.warn({ err, volume: name }, 'unmounting a volume failed');
    }
  }

  /** Bytes of the files under `_data` (du's apparent size), for `system df` and prune's SpaceReclaimed. */
  async size(name: string): Promise<number> {
    let total = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else {
          try {
            total += (await lstat(p)).size;
          } catch {
            // removed meanwhile
          }
        }
      }
    };
    await walk(this.pathOf(name));
    return total;
  }

  /** Every volume with its usage (`system df`). */
  async usage(): Promise<Volume[]> {
    const out: Volume[] = [];
    for (const v of this.volumes.values()) out.push({ ...this.view(v), UsageData: { Size: await this.size(v.Name), RefCount: this.o.refs(v.Name).length } });
    return out;
  }

  /** Maps with their keys sorted, as Go's encoding/json writes them. */
  private view(v: VolumeMeta): Volume {
    return {
      CreatedAt: v.CreatedAt, Driver: v.Driver, Labels: sorted(v.Labels), Mountpoint: this.pathOf(v.Name), Name: v.Name,
      Options: sorted(v.Options), Scope: 'local',
    };
  }
}

export function versionAtLeast(version: string, min: string): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  const [c = 0, d = 0] = min.split('.').map(Number);
  return a > c || (a === c && b >= d);
}

function sorted(m: Record<string, string> | null): Record<string, string> | null {
  return m ? Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : null;
}

function safeIsDir(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

function readMeta(path: string): VolumeMeta | null {
  if (!existsSync(path)) return null;
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as Partial<VolumeMeta>;
    if (typeof m.Name !== 'string' || typeof m.Driver !== 'string' || typeof m.CreatedAt !== 'string') return null;
    return { Name: m.Name, Driver: m.Driver, Labels: m.Labels ?? null, Options: m.Options ?? null, CreatedAt: m.CreatedAt };
  } catch {
    return null;
  }
}

/** Whether `path` is a mount point (its device differs from its parent's, or it is listed in mountinfo). */
export function isMountPoint(path: string): boolean {
  try {
    const info = readFileSync('/proc/self/mountinfo', 'utf8');
    return info.split('\n').some((l) => l.split(' ')[4] === path);
  } catch {
    return false;
  }
}
