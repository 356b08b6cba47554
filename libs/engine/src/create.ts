/** Container create: validation, the image merge, the record, the layer and the host files. */
import { mkdirSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import type { ContainerCreateBody, ContainerCreateResponse, HostConfig, MountPoint } from '@berth/api';
import { BerthError } from '@berth/errors';
import { commandLine, invalid, isVolumeBind, mountsOf, mergeImageConfig, normaliseConfig, normaliseHostConfig, parseBind } from './config.js';
import { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { HOST_GATEWAY, hostnameFile, hostsFile, readOr } from './host-files.js';
import { hostGatewayIp, networksAtCreate, resolvConfFor, usesSandbox } from './network.js';
import { normaliseLinks } from './links.js';
import { generateName, nameConflict, newId, normaliseName } from './names.js';
import { containerCapabilities, hostnameOf, parseSecurityOpts } from './oci-spec.js';
import { checkUserProfile } from './seccomp.js';
import { writeFileAtomic, type ContainerRecord } from './store.js';
import { dropVolumes, resolveVolumes, volumeMountPoints } from './volumes-mounts.js';
import { ZERO_TIME, nowNanos, rfc3339Nano } from './time.js';

export async function createContainer(ctx: EngineContext, name: string | undefined, body: ContainerCreateBody): Promise<ContainerCreateResponse> {
  if (body === null || typeof body !== 'object') throw invalid('body', 'config cannot be empty in order to create a container');
  let wanted = name ? normaliseName(name) : undefined;
  const cfg = normaliseConfig(body);
  if (!cfg.Image) throw invalid('Image', 'No image specified');
  const host = normaliseHostConfig(body.HostConfig);
  containerCapabilities(host);
  const security = parseSecurityOpts(host.SecurityOpt);
  // A user's seccomp profile that cannot be used fails the create, not the start.
  if (security.seccomp.kind === 'file' && !host.Privileged) checkUserProfile(security.seccomp.path);
  const resolved = await ctx.images.resolve(cfg.Image);
  const merged = mergeImageConfig(cfg, resolved.config.config ?? {});
  const argv = commandLine(merged);
  if (argv.length === 0) throw invalid('Cmd', 'No command specified');
  for (const [field, mode] of [['HostConfig.NetworkMode', host.NetworkMode], ['HostConfig.IpcMode', host.IpcMode], ['HostConfig.PidMode', host.PidMode]] as const) {
    if (mode.startsWith('container:')) referenced(field, () => ctx.get(mode.slice('container:'.length)));
  }
  const networks = referenced('HostConfig.NetworkMode', () => networksAtCreate(ctx, host, body.NetworkingConfig?.EndpointsConfig));
  const hostGateway = hostGatewayIp(ctx);
  if (hostGateway === undefined && (host.ExtraHosts ?? []).some((e) => e.endsWith(`:${HOST_GATEWAY}`)))
    throw invalid('HostConfig.ExtraHosts', `unable to derive the IP value for ${HOST_GATEWAY}`);
  if (wanted) {
    const holder = [...ctx.containers.values()].find((c) => c.name === wanted);
    if (holder) throw nameConflict(wanted, holder.id);
  } else wanted = generateName((n) => [...ctx.containers.values()].some((c) => c.name === n));
  referenced('HostConfig.Links', () => normaliseLinks(ctx, host, wanted));
  const id = newId();
  const dir = ctx.store.dir(id);
  const created = rfc3339Nano(nowNanos());
  const rec: ContainerRecord = {
    Id: id, Created: created, Path: argv[0]!, Args: argv.slice(1), Config: merged, Image: resolved.id, Name: `/${wanted}`,
    RestartCount: 0, Driver: ctx.opts.graphDriver.name, Platform: 'linux',
    State: {
      Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '',
      StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME,
    },
    ResolvConfPath: join(dir, 'resolv.conf'), HostnamePath: join(dir, 'hostname'), HostsPath: join(dir, 'hosts'),
    LogPath: join(dir, `${id}-json.log`), MountPoints: mountPoints(host), HasBeenStartedBefore: false, HasBeenManuallyStopped: false,
  };
  if (usesSandbox(host.NetworkMode)) rec.Networks = networks;
  if (!merged.Hostname) merged.Hostname = host.NetworkMode === 'host' ? osHostname() : id.slice(0, 12);
  // The start that usually follows moves a process into new cgroups: get that ready meanwhile.
  ctx.runtime.primeCgroups();
  const c = new Ctr(rec, host);
  // Reserve the name before the first await that could interleave another create.
  ctx.containers.set(id, c);
  let layerMade = false;
  let vols: Awaited<ReturnType<typeof resolveVolumes>> = { mounts: [], created: [] };
  try {
    // After the name is reserved (it awaits), before the layer: a bad volume spec is a 400 with
    // nothing made; the volumes made here are removed again if the create fails.
    vols = await resolveVolumes(ctx, host, merged);
    rec.MountPoints.push(...volumeMountPoints(ctx, vols.mounts));
    rec.VolumeMounts = vols.mounts;
    // An --rm container's layer goes with it: the driver need not sync it (overlayfs volatile).
    await ctx.images.createContainerLayer(id, resolved.id, { volatile: host.AutoRemove === true, ...(host.StorageOpt ? { storageOpt: host.StorageOpt } : {}) });
    layerMade = true;
    mkdirSync(dir, { recursive: true, mode: 0o710 });
    // Made from the config (and remade at start where the network changes them), as Docker
    // writes them: atomic, without fsync. The record below is the durable one.
    writeFileAtomic(rec.HostnamePath, hostnameFile(host.NetworkMode === 'host' ? osHostname() : hostnameOf(id, merged)), 0o644, false);
    writeFileAtomic(rec.HostsPath, host.NetworkMode === 'host' ? readOr('/etc/hosts', hostsFile(host)) : hostsFile(host, undefined, undefined, hostGateway), 0o644, false);
    writeFileAtomic(rec.ResolvConfPath, resolvConfFor(readOr('/etc/resolv.conf', ''), host), 0o644, false);
    // An --rm container's record goes with it, as its layer does: no fsync (two of them cost
    // ~1 ms of the daemon's thread per run). After a power loss such a record may be torn: the
    // daemon then reports it and leaves it, as any damaged record.
    ctx.save(c, true, host.AutoRemove !== true);
  } catch (err) {
    ctx.containers.delete(id);
    if (layerMade) await ctx.images.removeContainerLayer(id).catch(() => undefined);
    ctx.store.remove(id);
    await dropVolumes(ctx, vols.created);
    throw err;
  }
  ctx.emit(c, 'create');
  return { Id: id, Warnings: [] };
}

/**
 * What create looks up besides the image (a network, a container to join or to link): when it is
 * missing, a 400, as dockerd answers. A 404 from create means a missing image to the docker CLI,
 * which then goes to pull it ('Unable to find image ...') instead of showing the error.
 */
function referenced<T>(field: string, lookup: () => T): T {
  try {
    return lookup();
  } catch (err) {
    if (err instanceof BerthError && (err.code === 'BERTH_CONTAINER_NOT_FOUND' || err.code === 'BERTH_NETWORK_NOT_FOUND'))
      throw new BerthError('BERTH_INVALID_ARGUMENT', err.message, { cause: err, details: { field } });
    throw err;
  }
}

/** inspect's Mounts: the -v binds, then the --mount ones (Docker's fields; --tmpfs is not listed, as in Docker). */
function mountPoints(h: HostConfig): MountPoint[] {
  const binds = (h.Binds ?? []).filter((b) => !isVolumeBind(b)).map((b, i): MountPoint => {
    const bind = parseBind(b, `HostConfig.Binds[${i}]`);
    return { Type: 'bind', Source: bind.source, Destination: bind.destination, Mode: bind.mode, RW: !bind.readonly, Propagation: bind.propagation };
  });
  const mounts = mountsOf(h).filter((m) => m.Type !== 'volume').map((m): MountPoint =>
    m.Type === 'tmpfs'
      ? { Type: 'tmpfs', Source: '', Destination: m.Target, Mode: '', RW: m.ReadOnly !== true, Propagation: '' }
      : { Type: 'bind', Source: m.Source ?? '', Destination: m.Target, Mode: '', RW: m.ReadOnly !== true, Propagation: m.BindOptions?.Propagation || 'rprivate' });
  return [...binds, ...mounts];
}
