/**
 * A container's volumes: which volume goes where (decided at create, by Docker's precedence),
 * mounting them at start with the copy-up of the image's content into an empty volume, and
 * letting them go at exit and at removal (`rm -v`: the anonymous ones).
 *
 * Precedence (Docker's registerMountPoints): `--volumes-from` first, then `-v`/Binds and
 * `--mount` (which replace a volumes-from mount at the same destination; between them a
 * destination twice is a 400), then each `Config.Volumes` path (the image's VOLUMEs and `-v
 * /path`) that nothing else mounts gets an anonymous volume.
 */
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import type { ContainerConfig, HostConfig, MountPoint } from '@berth/api';
import { BerthError } from '@berth/errors';
import { resolveInRoot } from '@berth/image';
import { cleanPath, invalid, isVolumeBind, mountsOf, parseBind, parseVolumeBind, parseVolumesFrom } from './config.js';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';

const execFileP = promisify(execFile);

/** One volume (or, through --volumes-from, a bind) of a container, as its record keeps it. */
export interface VolumeMount {
  Type: 'volume' | 'bind';
  /** The volume (Type volume). */
  Name?: string;
  /** The host path (Type bind, copied from another container by --volumes-from). */
  Source?: string;
  Destination: string;
  RW: boolean;
  Mode: string;
  Propagation: string;
  Driver?: string;
  /** Not named by the user: `rm -v` and `run --rm` remove it. */
  Anonymous?: boolean;
  /** Copy the image's content at Destination into the volume at the next start if it is empty (cleared once done). */
  CopyData?: boolean;
  /** A plugin volume's mount ID of the current run (its Unmount carries it, also after a daemon restart). */
  MountID?: string;
}

/** The record's volume mounts (absent in records of containers made before volumes). */
export function volumeMountsOf(c: { rec: { VolumeMounts?: VolumeMount[] } }): VolumeMount[] {
  return c.rec.VolumeMounts ?? [];
}

/**
 * The container's volume mounts, the volumes made for it on the way (named ones created on
 * demand, anonymous ones): on a failure every volume made here is removed again.
 */
export async function resolveVolumes(ctx: EngineContext, host: HostConfig, config: ContainerConfig): Promise<{ mounts: VolumeMount[]; created: string[] }> {
  const created: string[] = [];
  const volume = async (name: string, field: string, driver: string, opts: Record<string, string> | null, labels: Record<string, string> | null): Promise<string> => {
    try {
      const r = await ctx.volumes.create({ Name: name, Driver: driver, DriverOpts: opts, Labels: labels }, { anonymous: name === '' });
      if (r.created) created.push(r.volume.Name);
      return r.volume.Name;
    } catch (err) {
      // A 404 from create means a missing image to the docker CLI, which would go and pull it.
      if (err instanceof BerthError && (err.code === 'BERTH_PLUGIN_NOT_FOUND' || err.code === 'BERTH_VOLUME_IN_USE'))
        throw new BerthError('BERTH_INVALID_ARGUMENT', err.message, { cause: err, details: { field } });
      throw err;
    }
  };
  try {
    const byDest = new Map<string, VolumeMount>();
    // 1. --volumes-from: the other container's volumes and binds, read-only if asked (never made writable).
    for (const [i, spec] of (host.VolumesFrom ?? []).entries()) {
      const field = `HostConfig.VolumesFrom[${i}]`;
      const { container, mode } = parseVolumesFrom(spec, field);
      let other: Ctr;
      try {
        other = ctx.get(container);
      } catch (err) {
        if (err instanceof BerthError && err.code === 'BERTH_CONTAINER_NOT_FOUND') throw new BerthError('BERTH_INVALID_ARGUMENT', err.message, { cause: err, details: { field } });
        throw err;
      }
      for (const m of volumeMountsOf(other)) byDest.set(m.Destination, { ...m, RW: m.RW && mode !== 'ro', Mode: '', CopyData: false });
      for (const mp of other.rec.MountPoints) {
        if (mp.Type !== 'bind') continue;
        byDest.set(cleanPath(mp.Destination), { Type: 'bind', Source: mp.Source, Destination: cleanPath(mp.Destination), RW: mp.RW && mode !== 'ro', Mode: '', Propagation: mp.Propagation });
      }
    }
    // 2. Binds and --mount: each destination once; they replace a volumes-from mount there.
    const own = new Map<string, string>();
    const claim = (dest: string, field: string): string => {
      const d = cleanPath(dest);
      if (own.has(d)) throw invalid(field, `Duplicate mount point: ${d}`);
      own.set(d, field);
      byDest.delete(d);
      return d;
    };
    const pending: Array<() => Promise<void>> = [];
    for (const [i, b] of (host.Binds ?? []).entries()) {
      const field = `HostConfig.Binds[${i}]`;
      if (!isVolumeBind(b)) {
        claim(parseBind(b, field).destination, field);
        continue;
      }
      const v = parseVolumeBind(b, field);
      const dest = claim(v.destination, field);
      pending.push(async () => {
        const name = await volume(v.name, field, host.VolumeDriver, null, null);
        byDest.set(dest, { Type: 'volume', Name: name, Destination: dest, RW: !v.readonly, Mode: v.mode, Propagation: '', Driver: ctx.volumes.get(name).Driver, Anonymous: v.name === '', CopyData: !v.nocopy });
      });
    }
    for (const [i, m] of mountsOf(host).entries()) {
      const field = `HostConfig.Mounts[${i}]`;
      const dest = claim(m.Target, field);
      if (m.Type !== 'volume') continue;
      const vo = m.VolumeOptions ?? {};
      pending.push(async () => {
        const name = await volume(m.Source ?? '', field, vo.DriverConfig?.Name || host.VolumeDriver, vo.DriverConfig?.Options ?? null, vo.Labels ?? null);
        byDest.set(dest, { Type: 'volume', Name: name, Destination: dest, RW: m.ReadOnly !== true, Mode: 'z', Propagation: '', Driver: ctx.volumes.get(name).Driver, Anonymous: !m.Source, CopyData: vo.NoCopy !== true });
      });
    }
    for (const dst of Object.keys(host.Tmpfs ?? {})) own.set(cleanPath(dst), 'HostConfig.Tmpfs');
    // Every spec is checked before the first volume is made.
    for (const make of pending) await make();
    // 3. Config.Volumes (the image's VOLUMEs, `-v /path`): an anonymous volume where nothing else mounts.
    for (const path of Object.keys(config.Volumes ?? {})) {
      const field = 'Config.Volumes';
      if (!path.startsWith('/')) throw invalid(field, `invalid volume specification: '${path}': invalid mount config: invalid mount path: '${path}' mount path must be absolute`);
      const dest = cleanPath(path);
      if (own.has(dest) || byDest.has(dest)) continue;
      const v = parseVolumeBind(dest, field);
      const name = await volume('', field, host.VolumeDriver, null, null);
      byDest.set(dest, { Type: 'volume', Name: name, Destination: v.destination, RW: true, Mode: '', Propagation: '', Driver: ctx.volumes.get(name).Driver, Anonymous: true, CopyData: true });
    }
    return { mounts: [...byDest.values()], created };
  } catch (err) {
    await dropVolumes(ctx, created);
    throw err;
  }
}

/** Removes volumes a failed create made (never one that another container uses). */
export async function dropVolumes(ctx: EngineContext, names: readonly string[]): Promise<void> {
  for (const n of names) {
    try {
      await ctx.volumes.remove(n, { force: true });
    } catch (err) {
      ctx.log.warn({ err, volume: n }, 'removing a volume made for a failed create failed');
    }
  }
}

/** inspect's Mounts entries of the volume mounts (and binds from --volumes-from). */
export function volumeMountPoints(ctx: EngineContext, mounts: readonly VolumeMount[]): MountPoint[] {
  return mounts.map((m): MountPoint =>
    m.Type === 'volume'
      ? { Type: 'volume', Name: m.Name!, Source: (m.Driver ?? 'local') === 'local' ? ctx.volumes.pathOf(m.Name!) : '', Destination: m.Destination, Driver: m.Driver ?? 'local', Mode: m.Mode, RW: m.RW, Propagation: '' }
      : { Type: 'bind', Source: m.Source!, Destination: m.Destination, Mode: m.Mode, RW: m.RW, Propagation: m.Propagation },
  );
}

/**
 * At start: each volume mounted for the container (the local driver mounts one with options),
 * an empty one filled with the image's content at its destination once (copy-up; `nocopy`
 * skips it), and the binds to add to the spec as `source:destination:ro|rw` Binds entries.
 * On a failure what was mounted is released again.
 */
export async function mountVolumes(ctx: EngineContext, c: Ctr, rootfs: string): Promise<string[]> {
  const binds: string[] = [];
  const mounted: string[] = [];
  let copied = false;
  try {
    for (const m of volumeMountsOf(c)) {
      if (m.Type === 'bind') {
        binds.push(`${m.Source}:${m.Destination}:${m.RW ? 'rw' : 'ro'}${m.Propagation ? `,${m.Propagation}` : ''}`);
        continue;
      }
      const path = await ctx.volumes.mount(m.Name!, c.id);
      mounted.push(m.Name!);
      if ((m.Driver ?? 'local') !== 'local') {
        // Saved with the record at start: kept for the Unmount, and inspect shows where the plugin put it.
        m.MountID = ctx.volumes.mountIdOf(m.Name!, c.id);
        const mp = c.rec.MountPoints.find((p) => p.Type === 'volume' && p.Name === m.Name && p.Destination === m.Destination);
        if (mp) mp.Source = path;
      }
      ctx.bus.publish('volume', 'mount', m.Name!, { container: c.id, destination: m.Destination, driver: m.Driver ?? 'local', propagation: '', 'read/write': String(m.RW) });
      if (m.CopyData) {
        await copyUp(rootfs, m.Destination, path);
        m.CopyData = false;
        copied = true;
      }
      binds.push(`${path}:${m.Destination}:${m.RW ? 'rw' : 'ro'}`);
    }
    if (copied) ctx.save(c, false, c.host.AutoRemove !== true);
  } catch (err) {
    for (const n of mounted) ctx.volumes.unmount(n, c.id);
    throw err;
  }
  return binds;
}

/**
 * The HostConfig the spec is built from: the Binds that are host paths plus the volumes'
 * binds from mountVolumes, the --mount entries other than volumes.
 */
export function specHostConfig(host: HostConfig, volumeBinds: readonly string[]): HostConfig {
  if (volumeBinds.length === 0 && !(host.Binds ?? []).some(isVolumeBind) && !mountsOf(host).some((m) => m.Type === 'volume')) return host;
  const out: HostConfig = { ...host, Binds: [...(host.Binds ?? []).filter((b) => !isVolumeBind(b)), ...volumeBinds] };
  if ((host as { Mounts?: unknown }).Mounts !== undefined) (out as { Mounts?: unknown }).Mounts = mountsOf(host).filter((m) => m.Type !== 'volume');
  return out;
}

/** The run is over (exit, failed start, removal): the container's volumes are released. */
export function releaseVolumes(ctx: EngineContext, c: Ctr): void {
  for (const m of volumeMountsOf(c)) {
    if (m.Type !== 'volume' || !ctx.volumes.isMountedBy(m.Name!, c.id)) continue;
    ctx.volumes.unmount(m.Name!, c.id);
    ctx.bus.publish('volume', 'unmount', m.Name!, { container: c.id, driver: m.Driver ?? 'local' });
  }
}

/**
 * After the container is gone: with `rm -v` (and for `--rm`) its anonymous volumes are removed,
 * unless another container still uses one (through --volumes-from): not an error, as in Docker.
 */
export async function removeContainerVolumes(ctx: EngineContext, c: Ctr, anonymous: boolean): Promise<void> {
  releaseVolumes(ctx, c);
  if (!anonymous) return;
  for (const m of volumeMountsOf(c)) {
    if (m.Type !== 'volume' || !m.Anonymous) continue;
    try {
      await ctx.volumes.remove(m.Name!, { force: true });
    } catch (err) {
      if (!(err instanceof BerthError && err.code === 'BERTH_VOLUME_IN_USE')) ctx.log.warn({ err, volume: m.Name, containerId: c.id }, 'removing an anonymous volume failed');
    }
  }
}

/** The containers that reference each volume (for the store's in-use check). */
export function volumeRefs(ctx: EngineContext, name: string): string[] {
  const out: string[] = [];
  for (const c of ctx.containers.values()) if (volumeMountsOf(c).some((m) => m.Type === 'volume' && m.Name === name)) out.push(c.id);
  return out;
}

/** The running containers of each volume, for the store after a daemon restart. */
export function runningVolumeUsers(ctx: EngineContext): Map<string, Array<[string, string | undefined]>> {
  const out = new Map<string, Array<[string, string | undefined]>>();
  for (const c of ctx.containers.values()) {
    if (!c.rec.State.Running) continue;
    for (const m of volumeMountsOf(c)) if (m.Type === 'volume') out.set(m.Name!, [...(out.get(m.Name!) ?? []), [c.id, m.MountID]]);
  }
  return out;
}

/**
 * Docker's copy-up: the image's directory at `destination` (inside the container's rootfs,
 * never followed out of it) copied into an empty volume with owners, modes, times, links and
 * xattrs (`cp -a`), the volume's root taking the directory's owner and mode.
 */
async function copyUp(rootfs: string, destination: string, volume: string): Promise<void> {
  if (readdirSync(volume).length > 0) return;
  let src: string;
  try {
    src = await resolveInRoot(rootfs, destination, { followFinal: true });
  } catch {
    return;
  }
  let st;
  try {
    st = statSync(src);
  } catch {
    return;
  }
  if (!st.isDirectory()) return;
  try {
    await execFileP('cp', ['-a', '--', `${src}/.`, volume]);
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    throw new BerthError('BERTH_VOLUME', `copying the image's content at ${destination} into the volume failed: ${(e.stderr || e.message || String(err)).trim()}`, { cause: err });
  }
}
