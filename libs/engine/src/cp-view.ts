/**
 * What `docker cp` sees: the container's filesystem as its processes see it, the volumes, the
 * binds and the /etc/hosts, /etc/hostname and /etc/resolv.conf the daemon wrote over the
 * container's layer (Docker's mountVolumes for archive calls; tmpfs mounts are not seen, as in
 * Docker). A read-only volume or bind stays read-only, and so does the root of a `--read-only`
 * container.
 *
 * Each cp builds its own view: the layer's root bound (not recursively) at a new directory of
 * `<exec-root>/cp`, made private, the container's mounts bound into it. No mount is made on the
 * layer's own mount: the container, a start meanwhile and another cp see none of them, and
 * releasing the view is one detach of its root. A daemon that died with views open leaves only
 * that directory, which the next start sweeps (sweepCpViews).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';
import { containerPathOf, resolveInRoot } from '@berth/image';
import { MNT_DETACH, MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT } from '@berth/native';
import { isVolumeBind, mountsOf, parseBind } from './config.js';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { volumeMountsOf } from './volumes-mounts.js';

/** One mount of the view: a volume or bind (Docker's MountPoints), or a file the daemon wrote. */
interface ViewMount {
  destination: string;
  rw: boolean;
  kind: 'volume' | 'bind' | 'file';
  /** The host path (a volume's is known once it is mounted). */
  source?: string;
  volume?: string;
}

export interface CpView {
  /** The host directory that is the container's `/`. */
  root: string;
  release(): Promise<void>;
}

const cpDir = (ctx: EngineContext): string => join(ctx.opts.execRoot, 'cp');
const depth = (p: string): number => p.split('/').filter(Boolean).length;

/** The container's volumes and binds: what Docker counts as "in a volume". */
function volumesAndBinds(c: Ctr): ViewMount[] {
  const out: ViewMount[] = [];
  for (const m of volumeMountsOf(c)) {
    if (m.Type === 'bind') out.push({ destination: m.Destination, source: m.Source!, rw: m.RW, kind: 'bind' });
    else out.push({ destination: m.Destination, volume: m.Name!, rw: m.RW, kind: 'volume' });
  }
  for (const [i, b] of (c.host.Binds ?? []).entries()) {
    if (isVolumeBind(b)) continue;
    const bind = parseBind(b, `HostConfig.Binds[${i}]`);
    out.push({ destination: bind.destination, source: bind.source, rw: !bind.readonly, kind: 'bind' });
  }
  for (const m of mountsOf(c.host)) if (m.Type === 'bind') out.push({ destination: m.Target, source: m.Source!, rw: m.ReadOnly !== true, kind: 'bind' });
  return out;
}

/** The view's mounts, parents first: the volumes and binds, then the daemon's files nothing covers. */
function viewMounts(c: Ctr): ViewMount[] {
  const out = volumesAndBinds(c);
  const taken = new Set(out.map((m) => m.destination));
  const files: Array<[string, string]> = [['/etc/resolv.conf', c.rec.ResolvConfPath], ['/etc/hostname', c.rec.HostnamePath], ['/etc/hosts', c.rec.HostsPath]];
  for (const [destination, source] of files) if (!taken.has(destination)) out.push({ destination, source, rw: true, kind: 'file' });
  return out.sort((a, b) => depth(a.destination) - depth(b.destination));
}

/**
 * The view of the container whose layer is mounted at `layerRoot`. On a failure everything made
 * so far is undone before the error goes on.
 */
export async function openCpView(ctx: EngineContext, c: Ctr, layerRoot: string): Promise<CpView> {
  const sys = ctx.sys();
  const tag = randomBytes(6).toString('hex');
  const root = join(cpDir(ctx), `${c.id.slice(0, 12)}-${tag}`);
  const user = `${c.id}:cp:${tag}`;
  const volumes: string[] = [];
  let bound = false;
  const release = async (): Promise<void> => {
    if (bound) {
      bound = false;
      sys.umount2(root, MNT_DETACH);
    }
    try {
      rmdirSync(root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') ctx.log.warn({ err, containerId: c.id, dir: root }, 'removing a cp view failed');
    }
    for (const name of volumes.splice(0)) ctx.volumes.unmount(name, user);
  };
  try {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    sys.mount(layerRoot, root, null, MS_BIND, null);
    bound = true;
    sys.mount(null, root, null, MS_PRIVATE, null);
    for (const m of viewMounts(c)) {
      if (m.volume !== undefined) {
        m.source = await ctx.volumes.mount(m.volume, user);
        volumes.push(m.volume);
      }
      const source = m.source!;
      // A file the daemon has not written (yet) is not mounted; a missing bind source is made, as at start.
      if (!existsSync(source)) {
        if (m.kind === 'file') continue;
        mkdirSync(source, { recursive: true, mode: 0o755 });
      }
      const isDir = statSync(source).isDirectory();
      const target = await resolveInRoot(root, m.destination, { followFinal: true });
      // Docker's CreateIfNotExists: the mount point is made in the layer when the image lacks it.
      // Only what is missing is made: opening an image's file for writing would copy it up.
      if (isDir) mkdirSync(target, { recursive: true, mode: 0o755 });
      else if (!existsSync(target)) {
        mkdirSync(join(target, '..'), { recursive: true, mode: 0o755 });
        writeFileSync(target, '', { flag: 'wx' });
      }
      sys.mount(source, target, null, MS_BIND | MS_REC, null);
      sys.mount(null, target, null, MS_PRIVATE | MS_REC, null);
      if (!m.rw) sys.mount(null, target, null, MS_BIND | MS_REMOUNT | MS_RDONLY, null);
    }
    if (c.host.ReadonlyRootfs) sys.mount(null, root, null, MS_BIND | MS_REMOUNT | MS_RDONLY, null);
  } catch (err) {
    await release().catch(() => undefined);
    throw err;
  }
  return { root, release };
}

/**
 * Docker's checks before an extraction into `path` of the view: the directory it resolves to
 * must not lie in a read-only volume or bind, nor, outside every volume and bind, in the root of
 * a `--read-only` container.
 */
export async function checkWritable(c: Ctr, view: CpView, path: string): Promise<void> {
  const abs = containerPathOf(view.root, await resolveInRoot(view.root, path, { followFinal: true }));
  const within = (dest: string): boolean => abs === dest || abs.startsWith(dest === '/' ? '/' : `${dest}/`);
  const inner = volumesAndBinds(c).filter((m) => within(m.destination)).sort((a, b) => depth(b.destination) - depth(a.destination))[0];
  if (inner ? !inner.rw : c.host.ReadonlyRootfs)
    throw new BerthError('BERTH_INVALID_ARGUMENT', inner ? 'mounted volume is marked read-only' : 'container rootfs is marked read-only', { details: { field: 'path', path } });
}

/** At daemon start: the views a daemon that died left behind are detached and removed. */
export function sweepCpViews(ctx: EngineContext): void {
  let names: string[];
  try {
    names = readdirSync(cpDir(ctx));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(cpDir(ctx), name);
    try {
      ctx.sys().umount2(dir, MNT_DETACH);
    } catch {
      /* not mounted: only the directory is left */
    }
    try {
      rmdirSync(dir);
    } catch (err) {
      ctx.log.warn({ err, dir }, 'removing a cp view left by an earlier daemon failed');
    }
  }
}
