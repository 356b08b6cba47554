/** System views: version, info, and the events stream. */
import { readdirSync } from 'node:fs';
import { cpus, hostname as osHostname, release, totalmem, type as osType } from 'node:os';
import type { InfoResponse, VersionResponse } from '@berth/api/wire';
import { API_VERSION, MIN_API_VERSION } from '@berth/api/wire';
import type { EventsOptions, EventSubscription } from './contract.js';
import type { EngineContext } from './context.js';
import { checkFilterKeys, eventFilterKeys } from './filters.js';
import { readTrim } from './host-files.js';
import { nowNanos, rfc3339Nano } from './time.js';

const ENGINE_VERSION = '0.1.0';

export function version(ctx: EngineContext): VersionResponse {
  const v = ctx.opts.version ?? ENGINE_VERSION;
  const details = {
    ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, GitCommit: 'berth', GoVersion: `node${process.versions.node}`,
    Os: 'linux', Arch: goArch(), BuildTime: '', KernelVersion: release(), Experimental: 'false',
  };
  return {
    Platform: { Name: 'Berth Engine' },
    Components: [
      { Name: 'Engine', Version: v, Details: details },
      { Name: 'berth-runtime', Version: v, Details: { GitCommit: 'berth' } },
    ],
    Version: v, ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, GitCommit: 'berth',
    GoVersion: `node${process.versions.node}`, Os: 'linux', Arch: goArch(), KernelVersion: release(), BuildTime: '',
  };
}

export async function info(ctx: EngineContext): Promise<InfoResponse> {
  const all = [...ctx.containers.values()];
  const running = all.filter((c) => c.rec.State.Running && !c.rec.State.Paused).length;
  const paused = all.filter((c) => c.rec.State.Paused).length;
  let driverStatus: [string, string][] = [];
  try {
    driverStatus = await ctx.opts.graphDriver.status();
  } catch {
    // A driver without status: nothing to show.
  }
  let images = 0;
  try {
    images = ctx.images.count();
  } catch {
    images = 0;
  }
  const osRelease = readOsRelease();
  const v = ctx.opts.version ?? ENGINE_VERSION;
  const memCg = ctx.cgroups.layout.mode !== 'v2' ? ctx.cgroups.layout.hierarchies.some((h) => h.controllers.includes('memory')) : true;
  return {
    ID: ctx.id, Containers: all.length, ContainersRunning: running, ContainersPaused: paused,
    ContainersStopped: all.length - running - paused, Images: images, Driver: ctx.opts.graphDriver.name, DriverStatus: driverStatus,
    Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'none'], Authorization: ctx.opts.authorizationPlugins?.length ? [...ctx.opts.authorizationPlugins] : null, Log: ['json-file'] },
    MemoryLimit: memCg, SwapLimit: memCg, CpuCfsPeriod: true, CpuCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
    IPv4Forwarding: readTrim('/proc/sys/net/ipv4/ip_forward') === '1', BridgeNfIptables: false, BridgeNfIp6tables: false,
    Debug: false, OomKillDisable: ctx.cgroups.version === 1, NFd: countFds(), NGoroutines: 0, SystemTime: rfc3339Nano(nowNanos()),
    LoggingDriver: 'json-file', CgroupDriver: 'cgroupfs', CgroupVersion: String(ctx.cgroups.version), NEventsListener: ctx.bus.listenerCount,
    KernelVersion: release(), OperatingSystem: osRelease.PRETTY_NAME ?? 'Linux', OSVersion: osRelease.VERSION_ID ?? '', OSType: osType().toLowerCase(),
    Architecture: process.arch === 'x64' ? 'x86_64' : process.arch, IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: { AllowNondistributableArtifactsCIDRs: null, AllowNondistributableArtifactsHostnames: null, InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: null },
    NCPU: cpus().length, MemTotal: totalmem(), GenericResources: null, DockerRootDir: ctx.opts.dataRoot,
    HttpProxy: process.env.HTTP_PROXY ?? '', HttpsProxy: process.env.HTTPS_PROXY ?? '', NoProxy: process.env.NO_PROXY ?? '',
    Name: osHostname(), Labels: [], ExperimentalBuild: false, ServerVersion: v,
    Runtimes: { runc: { path: 'berth-runtime' }, 'berth-runtime': { path: 'berth-runtime' } }, DefaultRuntime: 'runc',
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    LiveRestoreEnabled: ctx.liveRestore, Isolation: '', InitBinary: 'berth-init',
    ContainerdCommit: { ID: '', Expected: '' }, RuncCommit: { ID: 'berth', Expected: 'berth' }, InitCommit: { ID: 'berth', Expected: 'berth' },
    SecurityOptions: ['name=seccomp,profile=builtin', 'name=cgroupns'], CDISpecDirs: [], Warnings: [],
  };
}

export function events(ctx: EngineContext, opts: EventsOptions, signal: AbortSignal): EventSubscription {
  checkFilterKeys(opts.filters, eventFilterKeys);
  const ac = new AbortController();
  const onAbort = (): void => ac.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  ctx.closers.add(onAbort);
  if (ctx.closed) ac.abort();
  const sub = ctx.bus.subscribe(opts, ac.signal);
  const closers = ctx.closers;
  return {
    [Symbol.asyncIterator]: async function* () {
      try {
        yield* sub;
      } finally {
        closers.delete(onAbort);
        signal.removeEventListener('abort', onAbort);
      }
    },
  };
}

function goArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
}

function readOsRelease(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readTrim('/etc/os-release').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return out;
}

function countFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}
