/** Container start: the OCI spec of the run, the runtime create and start, and the rollback of a failed start. */
import { closeSync, constants as fsConstants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';
import { resolveInRoot } from '@berth/image';
import type { OciDevice } from '@berth/runtime';
import { isVolumeBind, logRotation, parseBind } from './config.js';
import { deferred, type Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { watchExit } from './exit.js';
import { startHealth } from './health.js';
import { buildSpec, containerCapabilities, resolveUser, type ResolvedUser } from './oci-spec.js';
import { linksAtStart } from './links.js';
import { openNetwork, teardownNetwork } from './network.js';
import { removeNow } from './remove.js';
import { prepareShm, releaseShm } from './shm.js';
import { mountVolumes, releaseVolumes, specHostConfig } from './volumes-mounts.js';
import { hostResources } from './resources.js';
import { cancelRestart } from './restart-policy.js';
import { writeFileAtomic } from './store.js';
import { nowNanos, rfc3339Nano } from './time.js';

export async function startContainer(ctx: EngineContext, ref: string): Promise<'started' | 'not-modified'> {
  const c = ctx.get(ref);
  return c.locked(async () => {
    if (c.removing) throw new BerthError('BERTH_CONTAINER_STATE', `container is marked for removal and cannot be started`);
    if (c.rec.State.Paused) throw new BerthError('BERTH_CONTAINER_STATE', 'cannot start a paused container, try unpause instead');
    if (c.rec.State.Running) return 'not-modified';
    cancelRestart(c);
    c.rec.HasBeenManuallyStopped = false;
    await startLocked(ctx, c);
    return 'started';
  });
}

export async function startLocked(ctx: EngineContext, c: Ctr): Promise<void> {
  const id = c.id;
  const log = ctx.log.child({ containerId: id });
  let rootfs: string | null = null;
  let created = false;
  let netReady: Promise<unknown> | undefined;
  ctx.runtime.primeCgroups();
  try {
    // Links first: a linked container that does not run fails the start before anything is made.
    const linked = linksAtStart(ctx, c);
    c.linkHosts = linked.hosts;
    rootfs = await ctx.images.mountContainerLayer(id);
    await ensureWorkingDir(rootfs, c.rec.Config.WorkingDir);
    for (const [i, b] of (c.host.Binds ?? []).entries()) {
      if (isVolumeBind(b)) continue;
      const bind = parseBind(b, `HostConfig.Binds[${i}]`);
      if (!existsSync(bind.source)) mkdirSync(bind.source, { recursive: true, mode: 0o755 });
    }
    // Volumes mounted (a local one with options at its first user), empty ones filled from the image.
    const volumeBinds = await mountVolumes(ctx, c, rootfs);
    const net = await openNetwork(ctx, c);
    // Handled from here on: a failure below still waits for it (the catch tears the sandbox down).
    netReady = net?.ready.then(
      () => undefined,
      (err: unknown) => err,
    );
    const sandboxKey = net?.key;
    const caps = containerCapabilities(c.host, ctx.availableCaps);
    const user = userOf(rootfs, c.rec.Config.User, c.host.GroupAdd ?? []);
    const spec = buildSpec({
      id, config: linked.env.length ? { ...c.rec.Config, Env: [...linked.env, ...(c.rec.Config.Env ?? [])] } : c.rec.Config, hostConfig: specHostConfig(c.host, volumeBinds), rootfs,
      files: { hostname: c.rec.HostnamePath, hosts: c.rec.HostsPath, resolvConf: c.rec.ResolvConfPath },
      user, seccomp: ctx.seccomp.for(c.host, caps), availableCaps: ctx.availableCaps,
      joinNetns: sandboxKey ?? nsPathOf(ctx, c.host.NetworkMode, 'net', 'network namespace'),
      joinIpc: nsPathOf(ctx, c.host.IpcMode, 'ipc', 'IPC namespace'),
      shmSource: prepareShm(ctx, c),
      joinPid: nsPathOf(ctx, c.host.PidMode, 'pid', 'PID namespace'),
      hostDevices: c.host.Privileged ? await hostDevices() : [],
      hostResources: hostResources(c.host),
    });
    const bundle = ctx.bundleOf(id);
    mkdirSync(bundle, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(bundle, 'config.json'), JSON.stringify(spec, null, 2), 0o644, false);
    // A run that ended before the daemon restarted may have left runtime state behind.
    await ctx.runtime.delete(id, true).catch(() => undefined);
    rmSync(ctx.socketOf(id), { force: true });
    // The init is made (namespaces, cgroups, mounts; it waits before exec) while the network is
    // attached in the namespace it joined; the process runs once both are done.
    const [made, attached] = await Promise.allSettled([
      ctx.runtime.create(id, bundle, {
        io: { socket: ctx.socketOf(id), ...(c.host.LogConfig.Type === 'none' ? {} : { logFile: c.rec.LogPath, ...logRotation(c.host.LogConfig.Config) }), tty: c.rec.Config.Tty, stdin: c.rec.Config.OpenStdin, stdinOnce: c.rec.Config.StdinOnce && !c.rec.Config.Tty },
        reaper: c.host.Init === true,
      }),
      netReady,
    ]);
    created = made.status === 'fulfilled';
    // A failed attachment is the cause when both failed: its rollback removed the namespace
    // the init was joining.
    if (attached.status === 'fulfilled' && attached.value !== undefined) throw attached.value;
    if (made.status === 'rejected') throw made.reason;
    c.spec = spec;
    // Attach sessions that were waiting join before the process runs, so they miss no output.
    const pending = [...c.pendingAttach.keys()];
    c.pendingAttach.clear();
    await Promise.all(pending.map((p) => p()));
    await ctx.runtime.start(id);
    const st = ctx.runtime.state(id);
    const s = c.rec.State;
    Object.assign(s, {
      Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: st.pid, ExitCode: 0,
      Error: '', StartedAt: rfc3339Nano(nowNanos()),
    });
    c.rec.HasBeenStartedBefore = true;
    c.suppressRestart = false;
    c.exited = deferred();
    startHealth(ctx, c);
    ctx.save(c, false, c.host.AutoRemove !== true);
    watchExit(ctx, c);
    log.info({ pid: st.pid }, 'container started');
    ctx.emit(c, 'start');
  } catch (err) {
    // Roll back: no process, no runtime state or cgroup, no mount; the container stays created/exited with the error.
    if (created) await ctx.runtime.delete(id, true).catch((e: unknown) => log.warn({ err: e }, 'rollback: runtime delete failed'));
    else await ctx.rtCgroups.destroy(ctx.cgroupPathOf(c)).catch(() => undefined);
    rmSync(ctx.socketOf(id), { force: true });
    await netReady;
    if (rootfs !== null) await ctx.images.unmountContainerLayer(id).catch((e: unknown) => log.warn({ err: e }, 'rollback: unmount failed'));
    releaseShm(ctx, c);
    releaseVolumes(ctx, c);
    (await teardownNetwork(ctx, c))();
    const message = err instanceof Error ? err.message : String(err);
    const details = err instanceof BerthError ? err.details : undefined;
    const code = typeof details?.exitCode === 'number' && (details.exitCode === 126 || details.exitCode === 127) ? details.exitCode : 128;
    c.rec.State.Error = message;
    c.rec.State.ExitCode = code;
    ctx.save(c);
    // As Docker: a --rm container whose start failed goes away.
    if (c.host.AutoRemove) await removeNow(ctx, c).catch((e: unknown) => log.warn({ err: e }, 'auto-remove after a failed start failed'));
    if (err instanceof BerthError && (code === 126 || code === 127))
      throw new BerthError('BERTH_INVALID_ARGUMENT', `failed to create task for container: ${message}`, { cause: err, details: { exitCode: code } });
    throw err;
  }
}

/** As Docker: a working directory the image lacks is made (root's, 0755), inside the rootfs. */
async function ensureWorkingDir(rootfs: string, workdir: string): Promise<void> {
  if (!workdir || workdir === '/') return;
  const p = await resolveInRoot(rootfs, workdir, { followFinal: true });
  let st;
  try {
    st = statSync(p);
  } catch {
    mkdirSync(p, { recursive: true, mode: 0o755 });
    return;
  }
  if (!st.isDirectory()) throw new BerthError('BERTH_INVALID_ARGUMENT', `cannot use ${workdir} as the working directory: it is not a directory`, { details: { field: 'Config.WorkingDir' } });
}

function nsPathOf(ctx: EngineContext, mode: string, kind: 'net' | 'ipc' | 'pid', what: string): string | undefined {
  if (!mode.startsWith('container:')) return undefined;
  const other = ctx.get(mode.slice('container:'.length));
  if (!other.rec.State.Running || other.rec.State.Pid <= 0)
    throw new BerthError('BERTH_CONTAINER_STATE', `cannot join ${what} of a non running container: ${other.id}`);
  return `/proc/${other.rec.State.Pid}/ns/${kind}`;
}

export function userOf(rootfs: string, user: string, groupAdd: readonly string[]): ResolvedUser {
  // The container controls these files: never follow a symlink out of it, never block on a
  // fifo, never read more than a real passwd file holds.
  const read = (p: string): string => {
    let fd = -1;
    try {
      if (lstatSync(join(rootfs, 'etc')).isSymbolicLink()) return '';
      fd = openSync(join(rootfs, p), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
      const st = fstatSync(fd);
      if (!st.isFile() || st.size > 4 << 20) return '';
      const buf = Buffer.alloc(st.size);
      const n = readSync(fd, buf, 0, st.size, 0);
      return buf.subarray(0, n).toString('utf8');
    } catch {
      return '';
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  };
  return resolveUser(user, read('etc/passwd'), read('etc/group'), groupAdd);
}

export async function hostDevices(): Promise<OciDevice[]> {
  const out: OciDevice[] = [];
  const walk = (dir: string, depth: number): void => {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      if (['/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/fd', '/dev/.lxc', '/dev/console'].includes(p)) continue;
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory() && depth < 3) walk(p, depth + 1);
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const rdev = st.rdev;
        const major = Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
        const minor = Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);
        out.push({ type: st.isCharacterDevice() ? 'c' : 'b', path: p, major, minor, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
      }
    }
  };
  walk('/dev', 0);
  return out;
}
