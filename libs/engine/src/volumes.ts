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
 *
 * Any other driver is a v1 plugin (VolumeDriver protocol, found in the plugin directories):
 * the store keeps the same metadata for its volumes and calls the plugin to create, remove,
 * mount (with a per-mount 64-hex ID) and unmount them; the data is wherever it says.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Filters } from '@berth/api';
import { BerthError } from '@berth/errors';
import type { Logger } from '@berth/log';
import type { VolumeDriver, VolumeInfo } from '@berth/plugin-api';
import { checkFilterKeys, invalidFilter, matchLabels, matchRegexp } from './filters.js';
import { writeFileAtomic } from './store.js';
import type { Volume, VolumeCreateRequest } from '@berth/api';

/** The label Docker (23+) gives anonymous volumes; prune on API 1.42+ removes only those by default. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

/** Docker's names.RestrictedNameChars, as the local driver checks a volume name. */
export const VOLUME_NAME_CHARS = '[a-zA-Z0-9][a-zA-Z0-9_.-]';
const nameRe = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** The options of Docker's local driver (`size` needs a quota-capable filesystem: not offered). */
const localOptionKeys = new Set(['type', 'device', 'o']);

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
  /** A volume plugin by name; throws BERTH_PLUGIN_NOT_FOUND when there is none. */
  plugin?(name: string): Promise<VolumeDriver>;
  /** Every volume plugin in the plugin directories (those that answer activation). */
  plugins?(): Promise<VolumeDriver[]>;
}

/** The CreatedAt Docker shows for a plugin's volume whose List gives none (Go's zero time). */
const ZERO_TIME = '0001-01-01T00:00:00Z';

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
  /** Which containers have each volume mounted now (started and not yet exited), with the plugin mount ID. */
  private readonly mounted = new Map<string, Map<string, string>>();
  /** A plugin volume's host path, as its last Mount or Path answered. */
  private readonly pluginPaths = new Map<string, string>();
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
  async create(req: VolumeCreateRequest, opts: { anonymous?: boolean } = {}): Promise<{ volume: Volume; created: boolean }> {
    const name = req.Name ? req.Name : randomBytes(32).toString('hex');
    const driver = req.Driver || 'local';
    const fail = (code: 'BERTH_INVALID_ARGUMENT' | 'BERTH_VOLUME_IN_USE' | 'BERTH_PLUGIN_NOT_FOUND', why: string): BerthError =>
      new BerthError(code, `create ${name}: ${why}`, { details: { field: code === 'BERTH_INVALID_ARGUMENT' ? 'Name' : 'Driver' } });
    const existing = this.volumes.get(name);
    if (existing) {
      // No driver asked (a container's `-v name:/x`): whichever driver the volume has.
      if (req.Driver && existing.Driver !== driver) throw fail('BERTH_VOLUME_IN_USE', `driver '${existing.Driver}' already has volume '${name}': volume name must be unique`);
      // Docker emits create again for each create that finds the volume (a container's `-v name:/x` too).
      this.o.emit('create', name, { driver: existing.Driver });
      return { volume: this.view(existing), created: false };
    }
    // A name the store does not know, and no driver asked (`-v name:/x`): a plugin's volume of
    // that name is the one meant, as in Docker. Recorded, never reported as made here: a failed
    // container create must not remove the plugin's volume.
    if (!req.Driver && req.Name) {
      const found = await this.lookupPlugins(name);
      if (found) return { volume: this.adopt(name, found.driver.name, req.Labels ?? null), created: false };
    }
    // Checked for plugins' volumes too: the name is a directory of the store.
    const problem = volumeNameProblem(name);
    if (problem) throw fail('BERTH_INVALID_ARGUMENT', problem);
    const options = req.DriverOpts && Object.keys(req.DriverOpts).length ? { ...req.DriverOpts } : null;
    const plugin = driver === 'local' ? null : await this.pluginOf(driver, `create ${name}`);
    if (!plugin) for (const k of Object.keys(options ?? {})) if (!localOptionKeys.has(k)) throw new BerthError('BERTH_INVALID_ARGUMENT', `create ${name}: invalid option: "${k}"`, { details: { field: 'DriverOpts' } });
    // Made meanwhile (the plugin lookup awaited): the same answer as above.
    if (this.volumes.has(name)) return this.create(req, opts);
    if (plugin) await pluginCall(`create ${name}`, () => plugin.create({ Name: name, Opts: options }));
    let labels = req.Labels && Object.keys(req.Labels).length ? { ...req.Labels } : null;
    if (opts.anonymous) labels = { ...(labels ?? {}), [ANONYMOUS_LABEL]: '' };
    const meta: VolumeMeta = { Name: name, Driver: driver, Labels: labels, Options: options, CreatedAt: rfc3339Seconds(Date.now()) };
    const dir = join(this.o.root, name);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o701 });
      if (!plugin) mkdirSync(join(dir, '_data'), { mode: 0o755 });
      writeFileAtomic(join(dir, 'volume.json'), JSON.stringify(meta), 0o600, true);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      if (plugin) await plugin.remove({ Name: name }).catch(() => undefined);
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

  /** `GET /volumes/{name}`: a plugin's volume with what its Get answers (Mountpoint, Status). */
  async inspect(name: string): Promise<Volume> {
    if (!this.volumes.has(name)) {
      // Not recorded here: a plugin may have it (made by another daemon, or by hand).
      const found = await this.lookupPlugins(name);
      if (!found) throw new BerthError('BERTH_VOLUME_NOT_FOUND', `get ${name}: no such volume`);
      const { info, driver } = found;
      if (info.Mountpoint) this.pluginPaths.set(name, info.Mountpoint);
      return { ...this.listedView(driver.name, info), ...(info.Status && Object.keys(info.Status).length ? { Status: info.Status } : {}) };
    }
    const v = this.get(name);
    if (v.Driver === 'local') return v;
    const plugin = await this.pluginOf(v.Driver, `get ${name}`);
    const got = (await pluginCall(`get ${name}`, () => plugin.get({ Name: name }))).Volume;
    if (!got) throw new BerthError('BERTH_VOLUME_NOT_FOUND', `get ${name}: no such volume`);
    if (got.Mountpoint) this.pluginPaths.set(name, got.Mountpoint);
    return { ...v, Mountpoint: got.Mountpoint ?? v.Mountpoint, ...(got.Status && Object.keys(got.Status).length ? { Status: got.Status } : {}) };
  }

  /** The store's volumes: filters `dangling`, `driver`, `label`, `name` (prune and df count these). */
  list(filters: Filters): Volume[] {
    const keep = this.filter(filters);
    return [...this.volumes.values()].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0)).filter(keep).map((v) => this.view(v));
  }

  /**
   * `GET /volumes`: the store's volumes, then those the volume plugins list that the store has no
   * record of (Docker lists every driver's). A plugin that cannot list is a warning, in Docker's
   * words `list <plugin>: <error>`, and the rest is still answered.
   */
  async listAll(filters: Filters): Promise<{ Volumes: Volume[]; Warnings: string[] }> {
    const keep = this.filter(filters);
    const out = this.list(filters);
    const warnings: string[] = [];
    for (const driver of await this.allPlugins()) {
      let listed: VolumeInfo[];
      try {
        listed = (await driver.list()).Volumes ?? [];
      } catch (err) {
        warnings.push(`list ${driver.name}: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      for (const info of listed) {
        // Recorded: listed above (or a name another driver has: the store's record wins, as in Docker).
        if (this.volumes.has(info.Name)) continue;
        const view = this.listedView(driver.name, info);
        if (keep({ Name: view.Name, Driver: view.Driver, Labels: null })) out.push(view);
      }
    }
    return { Volumes: out, Warnings: warnings };
  }

  /** The filter of list: checks the keys and values once, answers the test of one volume. */
  private filter(filters: Filters): (v: Pick<VolumeMeta, 'Name' | 'Driver' | 'Labels'>) => boolean {
    checkFilterKeys(filters, ['dangling', 'driver', 'label', 'name']);
    const dangling = [...(filters.get('dangling') ?? [])].map((v) => {
      if (['true', '1'].includes(v.toLowerCase())) return true;
      if (['false', '0'].includes(v.toLowerCase())) return false;
      throw invalidFilter('dangling', v);
    });
    const drivers = filters.get('driver');
    return (v) =>
      (!dangling.length || dangling.includes(this.o.refs(v.Name).length === 0)) &&
      (!drivers?.size || drivers.has(v.Driver)) &&
      matchRegexp(filters.get('name'), v.Name) &&
      matchLabels(filters.get('label'), v.Labels);
  }

  /**
   * `DELETE /volumes/{name}`: refused while a container references it (force does not change
   * that, as in Docker); `force` only makes a missing volume no error.
   */
  async remove(name: string, opts: { force?: boolean } = {}): Promise<void> {
    let v = this.volumes.get(name);
    if (!v) {
      // Only a plugin has it: recorded first, then removed as any plugin volume is.
      const found = await this.lookupPlugins(name);
      if (found) {
        this.adopt(name, found.driver.name, null, false);
        v = this.volumes.get(name);
      }
    }
    if (!v) {
      if (opts.force) return;
      throw new BerthError('BERTH_VOLUME_NOT_FOUND', `get ${name}: no such volume`);
    }
    const refs = this.o.refs(name);
    if (refs.length) throw new BerthError('BERTH_VOLUME_IN_USE', `remove ${name}: volume is in use - [${refs.join(', ')}]`);
    if (v.Driver !== 'local') {
      // force: the volume goes from the store even when its plugin cannot be reached or fails (Docker's purge).
      try {
        const plugin = await this.pluginOf(v.Driver, `remove ${name}`);
        await pluginCall(`remove ${name}`, () => plugin.remove({ Name: name }));
      } catch (err) {
        if (!opts.force) throw err;
        this.log.warn({ err, volume: name }, 'removing a plugin volume failed: purged from the store (force)');
      }
      // Removed meanwhile by another call.
      if (!this.volumes.has(name)) return;
    }
    this.dropMount(name);
    // Never rm -rf through a mount (a type=none,o=bind volume still bound would lose the host's files).
    if (v.Driver === 'local' && isMountPoint(this.pathOf(name)))
      throw new BerthError('BERTH_VOLUME', `remove ${name}: ${this.pathOf(name)} is still a mount point; unmount it first`);
    this.pluginPaths.delete(name);
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
        await this.remove(v.Name);
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
  async mount(name: string, containerId: string): Promise<string> {
    const v = this.volumes.get(name);
    if (!v) throw new BerthError('BERTH_VOLUME_NOT_FOUND', `get ${name}: no such volume`);
    if (v.Driver !== 'local') {
      const plugin = await this.pluginOf(v.Driver, `mount ${name}`);
      const id = randomBytes(32).toString('hex');
      const { Mountpoint } = await pluginCall(`error while mounting volume '${name}'`, () => plugin.mount({ Name: name, ID: id }));
      if (!Mountpoint) throw new BerthError('BERTH_VOLUME', `error while mounting volume '${name}': the plugin answered no Mountpoint`);
      this.pluginPaths.set(name, Mountpoint);
      const users = this.mounted.get(name) ?? new Map<string, string>();
      users.set(containerId, id);
      this.mounted.set(name, users);
      return Mountpoint;
    }
    const path = this.pathOf(name);
    const users = this.mounted.get(name) ?? new Map<string, string>();
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
    users.set(containerId, '');
    this.mounted.set(name, users);
    return path;
  }

  /** The plugin mount ID of the container's mount of the volume ('' for local volumes). */
  mountIdOf(name: string, containerId: string): string | undefined {
    return this.mounted.get(name)?.get(containerId);
  }

  isMountedBy(name: string, containerId: string): boolean {
    return this.mounted.get(name)?.has(containerId) === true;
  }

  /**
   * The container no longer uses the volume; the last user unmounts a local volume with options
   * (at once). A plugin's Unmount with the mount's ID goes out in the background (a failure is logged).
   */
  unmount(name: string, containerId: string): void {
    const users = this.mounted.get(name);
    const id = users?.get(containerId);
    if (!users || id === undefined) return;
    users.delete(containerId);
    const v = this.volumes.get(name);
    if (v && v.Driver !== 'local') {
      if (users.size === 0) this.mounted.delete(name);
      void this.pluginOf(v.Driver, `unmount ${name}`)
        .then((plugin) => pluginCall(`unmount ${name}`, () => plugin.unmount({ Name: name, ID: id })))
        .catch((err: unknown) => this.log.warn({ err, volume: name }, 'unmounting a plugin volume failed'));
      return;
    }
    if (users.size === 0) this.dropMount(name);
  }

  /**
   * At daemon start, after recovery: `users` are the running containers of each volume (their
   * mounts stay); a volume with options still mounted but no longer used is unmounted.
   */
  reconcile(users: Map<string, Array<[containerId: string, mountId: string | undefined]>>): void {
    // A plugin mount's ID comes from the container's record (its Unmount must carry the same one).
    for (const [name, ids] of users) if (this.volumes.has(name)) this.mounted.set(name, new Map(ids.map(([cid, mid]) => [cid, mid ?? randomBytes(32).toString('hex')])));
    for (const v of this.volumes.values()) {
      if (!v.Options?.type || this.mounted.get(v.Name)?.size) continue;
      if (isMountPoint(this.pathOf(v.Name))) this.unmountPath(v.Name);
    }
  }

  private async pluginOf(driver: string, op: string): Promise<VolumeDriver> {
    try {
      if (!this.o.plugin) throw new BerthError('BERTH_PLUGIN_NOT_FOUND', `plugin "${driver}" not found`);
      return await this.o.plugin(driver);
    } catch (err) {
      if (err instanceof BerthError && err.code === 'BERTH_PLUGIN_NOT_FOUND')
        throw new BerthError('BERTH_PLUGIN_NOT_FOUND', `${op}: error looking up volume plugin ${driver}: plugin "${driver}" not found`, { cause: err, details: { field: 'Driver' } });
      throw err;
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

  /** Bytes of the files under `_data` (du's apparent size), for `system df` and prune's SpaceReclaimed; -1 for a plugin's volume. */
  async size(name: string): Promise<number> {
    if (this.volumes.get(name)?.Driver !== 'local') return this.volumes.has(name) ? -1 : 0;
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
  /** Every volume plugin, or none when they cannot be listed (logged). */
  private async allPlugins(): Promise<VolumeDriver[]> {
    if (!this.o.plugins) return [];
    try {
      return await this.o.plugins();
    } catch (err) {
      this.log.warn({ err }, 'listing the volume plugins failed');
      return [];
    }
  }

  /** The first plugin whose Get knows `name`, with what it answered. */
  private async lookupPlugins(name: string): Promise<{ driver: VolumeDriver; info: VolumeInfo } | undefined> {
    for (const driver of await this.allPlugins()) {
      try {
        const info = (await driver.get({ Name: name })).Volume;
        if (info) return { driver, info };
      } catch {
        // Get answers an error for a volume it does not have (Docker's plugins do): not this one.
      }
    }
    return undefined;
  }

  /** Records a plugin's volume the store did not know (its directory holds only the record); `emit`: a create event, as for a create that finds a volume. */
  private adopt(name: string, driver: string, labels: Record<string, string> | null, emit = true): Volume {
    const meta: VolumeMeta = { Name: name, Driver: driver, Labels: labels, Options: null, CreatedAt: rfc3339Seconds(Date.now()) };
    const dir = join(this.o.root, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(dir, 'volume.json'), JSON.stringify(meta), 0o600, true);
    this.volumes.set(name, meta);
    if (emit) this.o.emit('create', name, { driver });
    return this.view(meta);
  }

  /** A volume as a plugin's List or Get gives it, for one the store has no record of. */
  private listedView(driver: string, info: VolumeInfo): Volume {
    return { CreatedAt: info.CreatedAt ?? ZERO_TIME, Driver: driver, Labels: null, Mountpoint: info.Mountpoint ?? '', Name: info.Name, Options: null, Scope: 'local' };
  }

  private view(v: VolumeMeta): Volume {
    return {
      CreatedAt: v.CreatedAt, Driver: v.Driver, Labels: sorted(v.Labels), Mountpoint: v.Driver === 'local' ? this.pathOf(v.Name) : (this.pluginPaths.get(v.Name) ?? ''), Name: v.Name,
      Options: sorted(v.Options), Scope: 'local',
    };
  }
}

/** A volume plugin's error, in Docker's words: `<op> <name>: <Subsystem.Method: message>`. */
async function pluginCall<T>(op: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw new BerthError('BERTH_VOLUME', `${op}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
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
