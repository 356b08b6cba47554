/**
 * The container engine behind berthd: containers, exec, logs, events and images, with
 * Docker's semantics and texts (specs/engine-api.md).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, lstatSync } from 'node:fs';
import { cpus, hostname as osHostname, release, totalmem, type as osType, arch as osArch } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Duplex, Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import type {
  ContainerCreateBody,
  ContainerCreateResponse,
  ContainerInspect,
  ContainerSummary,
  EndpointSettings,
  ExecCreateBody,
  ExecInspect,
  ExecStartBody,
  Filters,
  HostConfig,
  ImageDeleteItem,
  ImageInspect,
  ImageSummary,
  InfoResponse,
  JsonMessage,
  MountPoint,
  NetworkSettings,
  TopResponse,
  VersionResponse,
  WaitResponse,
} from '@berth/api';
import { API_VERSION, MIN_API_VERSION } from '@berth/api';
import { BerthError } from '@berth/errors';
import type { Logger } from '@berth/log';
import type { GraphDriver } from '@berth/plugin-api';
import { ImageStore } from '@berth/image';
import {
  Runtime,
  ShimClient,
  runtimeCgroups,
  parseSignal,
  loadSeccompProfile,
  dockerProfileToOci,
  type DockerSeccompProfile,
  type OciDevice,
  type OciProcess,
  type OciSeccomp,
  type OciSpec,
  type RuntimeCgroups,
} from '@berth/runtime';
import { createCgroupManager, type CgroupManager } from '@berth/cgroups';
import { realSyscalls, type Syscalls } from '@berth/native';
import type {
  AttachOptions,
  Engine,
  EventsOptions,
  EventSubscription,
  ImportOptions,
  LogsOptions,
  LogsStream,
  StopOptions,
  StreamSession,
  WaitCondition,
  WaitHandle,
} from './contract.js';
import { commandLine, invalid, mergeImageConfig, normaliseConfig, normaliseHostConfig, parseBind } from './config.js';
import { DetachScanner, parseDetachKeys } from './detach.js';
import { EventBus } from './events.js';
import { checkFilterKeys, containerStates, invalidFilter, matchLabels, matchRegexp, psFilterKeys, eventFilterKeys } from './filters.js';
import { hostnameFile, hostsFile, resolvConf } from './host-files.js';
import { readLog } from './logs.js';
import { generateName, nameConflict, newId, normaliseName, shortId } from './names.js';
import { buildSpec, capabilitiesOfMask, containerCapabilities, hostnameOf, parseSecurityOpts, resolveUser, type ResolvedUser } from './oci-spec.js';
import { noSuchContainer, resolveReference } from './references.js';
import { Backoff, shouldRestart } from './restart.js';
import { watchShim, readExitFile, type ShimWatch } from './shim-watch.js';
import { commandText, statusText } from './status.js';
import { ContainerStore, writeFileAtomic, type ContainerRecord } from './store.js';
import { nowNanos, parseRfc3339Nano, rfc3339Nano, ZERO_TIME } from './time.js';
import { parsePs } from './top.js';

const execFileP = promisify(execFile);

export interface EngineOptions {
  dataRoot: string;
  execRoot: string;
  logger: Logger;
  graphDriver: GraphDriver;
  /** Keep containers running across daemon restarts (default true). */
  liveRestore?: boolean;
  version?: string;
  /** Docker's default seccomp profile; /usr/share/containers/seccomp.json by default. */
  seccompProfile?: string;
  /** Seams for tests: a prepared cgroup manager / runtime. */
  cgroupManager?: CgroupManager;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

interface Waiter {
  condition: WaitCondition;
  resolve(r: WaitResponse): void;
}

class Ctr {
  watch: ShimWatch | null = null;
  /** Settles when the current run's exit has been processed (state saved, cleanup done). */
  exited: Deferred<void> = deferred();
  readonly waiters = new Set<Waiter>();
  /** Attach sessions waiting for the next start: called between create and start. */
  /** Attach sessions waiting for the next start: run between create and start; the value drops one (rm, close). */
  readonly pendingAttach = new Map<() => Promise<void>, () => void>();
  readonly execs = new Set<string>();
  readonly backoff = new Backoff();
  restartTimer: NodeJS.Timeout | null = null;
  /** Set while stop/kill/rm asked for the exit: no restart policy applies. */
  suppressRestart = false;
  removing = false;
  private chain: Promise<unknown> = Promise.resolve();
  /** The spec of the current run (exec builds on its process). */
  spec: OciSpec | null = null;

  constructor(
    public rec: ContainerRecord,
    public host: HostConfig,
  ) {}

  get id(): string {
    return this.rec.Id;
  }
  get name(): string {
    return this.rec.Name.slice(1);
  }

  /** Serialises lifecycle operations on one container. */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }
}

/** What an attach asks of the shim, and whether client stdin EOF closes the container's stdin. */
interface Streams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  closeStdin: boolean;
}

interface ExecRec {
  id: string;
  containerId: string;
  cmd: string[];
  user: string;
  privileged: boolean;
  tty: boolean;
  env: string[];
  workingDir: string;
  attachStdin: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  detachKeys: string | null;
  consoleSize: [number, number] | null;
  running: boolean;
  started: boolean;
  exitCode: number | null;
  pid: number;
  socket: string;
  exitFile: string;
  watch: ShimWatch | null;
}

const ENGINE_VERSION = '0.1.0';

export class BerthEngine implements Engine {
  private readonly log: Logger;
  private readonly containers = new Map<string, Ctr>();
  private readonly execs = new Map<string, ExecRec>();
  private readonly bus = new EventBus(1000);
  private readonly store: ContainerStore;
  private images!: ImageStore;
  private runtime!: Runtime;
  private cgroups!: CgroupManager;
  private rtCgroups!: RuntimeCgroups;
  private syscalls: Syscalls | undefined;
  private seccompDefault: DockerSeccompProfile | null = null;
  private readonly seccompByCaps = new Map<string, OciSeccomp>();
  private closed = false;
  /** The daemon's bounding set: what --privileged and --cap-add ALL can give. */
  private readonly availableCaps: string[] = capabilitiesOfMask(/^CapBnd:\s*([0-9a-f]+)$/m.exec(readTrim('/proc/self/status'))?.[1] ?? 'ffffffffff');
  private readonly liveRestore: boolean;
  private readonly shimDir: string;
  private readonly bundleRoot: string;
  private readonly id = randomBytes(16).toString('hex');
  private readonly closers = new Set<() => void>();

  constructor(private readonly opts: EngineOptions) {
    this.log = opts.logger;
    this.liveRestore = opts.liveRestore ?? true;
    this.store = new ContainerStore(join(opts.dataRoot, 'containers'));
    this.shimDir = shimSocketDir(opts.execRoot);
    this.bundleRoot = join(opts.execRoot, 'containers');
  }

  async init(): Promise<void> {
    mkdirSync(this.shimDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.bundleRoot, { recursive: true, mode: 0o700 });
    this.cgroups = this.opts.cgroupManager ?? (await createCgroupManager({ logger: this.log.child({ component: 'cgroups' }) }));
    this.rtCgroups = runtimeCgroups(this.cgroups);
    this.runtime = new Runtime({
      root: join(this.opts.execRoot, 'runtime'),
      cgroups: this.rtCgroups,
      syscalls: () => (this.syscalls ??= realSyscalls()),
      logger: this.log.child({ component: 'runtime' }),
    });
    this.images = await ImageStore.open({ root: join(this.opts.dataRoot, 'image', this.opts.graphDriver.name), driver: this.opts.graphDriver, logger: this.log });
    await this.recover();
  }

  // ---------------------------------------------------------------- paths

  private socketOf(id: string): string {
    return join(this.shimDir, `${id.slice(0, 32)}.sock`);
  }
  private bundleOf(id: string): string {
    return join(this.bundleRoot, id);
  }
  private cgroupPathOf(c: Ctr): string {
    return c.host.CgroupParent ? `${c.host.CgroupParent.replace(/\/+$/, '')}/${c.id}` : `berth/${c.id}`;
  }

  // ---------------------------------------------------------------- lookup

  private get(ref: string): Ctr {
    const named = resolveReference(ref, [...this.containers.values()].map((c) => ({ id: c.id, name: c.name, c })));
    return named.c;
  }

  private attrs(c: Ctr, extra: Record<string, string> = {}): Record<string, string> {
    return { ...(c.rec.Config.Labels ?? {}), image: c.rec.Config.Image, name: c.name, ...extra };
  }

  private emit(c: Ctr, action: string, extra: Record<string, string> = {}): void {
    this.bus.publish('container', action, c.id, this.attrs(c, extra));
  }

  private save(c: Ctr, withHost = false): void {
    this.store.save(c.rec, withHost ? c.host : undefined);
  }

  private isRunning(c: Ctr): boolean {
    return c.rec.State.Running;
  }

  // ---------------------------------------------------------------- system

  version(): VersionResponse {
    const v = this.opts.version ?? ENGINE_VERSION;
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

  async info(): Promise<InfoResponse> {
    const all = [...this.containers.values()];
    const running = all.filter((c) => c.rec.State.Running && !c.rec.State.Paused).length;
    const paused = all.filter((c) => c.rec.State.Paused).length;
    let driverStatus: [string, string][] = [];
    try {
      driverStatus = await this.opts.graphDriver.status();
    } catch {
      // A driver without status: nothing to show.
    }
    let images = 0;
    try {
      images = this.images.count();
    } catch {
      images = 0;
    }
    const osRelease = readOsRelease();
    const v = this.opts.version ?? ENGINE_VERSION;
    const memCg = this.cgroups.layout.mode !== 'v2' ? this.cgroups.layout.hierarchies.some((h) => h.controllers.includes('memory')) : true;
    return {
      ID: this.id, Containers: all.length, ContainersRunning: running, ContainersPaused: paused,
      ContainersStopped: all.length - running - paused, Images: images, Driver: this.opts.graphDriver.name, DriverStatus: driverStatus,
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'none'], Authorization: null, Log: ['json-file'] },
      MemoryLimit: memCg, SwapLimit: memCg, CpuCfsPeriod: true, CpuCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
      IPv4Forwarding: readTrim('/proc/sys/net/ipv4/ip_forward') === '1', BridgeNfIptables: false, BridgeNfIp6tables: false,
      Debug: false, OomKillDisable: this.cgroups.version === 1, NFd: countFds(), NGoroutines: 0, SystemTime: rfc3339Nano(nowNanos()),
      LoggingDriver: 'json-file', CgroupDriver: 'cgroupfs', CgroupVersion: String(this.cgroups.version), NEventsListener: this.bus.listenerCount,
      KernelVersion: release(), OperatingSystem: osRelease.PRETTY_NAME ?? 'Linux', OSVersion: osRelease.VERSION_ID ?? '', OSType: osType().toLowerCase(),
      Architecture: process.arch === 'x64' ? 'x86_64' : process.arch, IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: { AllowNondistributableArtifactsCIDRs: null, AllowNondistributableArtifactsHostnames: null, InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: null },
      NCPU: cpus().length, MemTotal: totalmem(), GenericResources: null, DockerRootDir: this.opts.dataRoot,
      HttpProxy: process.env.HTTP_PROXY ?? '', HttpsProxy: process.env.HTTPS_PROXY ?? '', NoProxy: process.env.NO_PROXY ?? '',
      Name: osHostname(), Labels: [], ExperimentalBuild: false, ServerVersion: v,
      Runtimes: { runc: { path: 'berth-runtime' }, 'berth-runtime': { path: 'berth-runtime' } }, DefaultRuntime: 'runc',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: this.liveRestore, Isolation: '', InitBinary: 'berth-init',
      ContainerdCommit: { ID: '', Expected: '' }, RuncCommit: { ID: 'berth', Expected: 'berth' }, InitCommit: { ID: 'berth', Expected: 'berth' },
      SecurityOptions: ['name=seccomp,profile=builtin', 'name=cgroupns'], CDISpecDirs: [], Warnings: [],
    };
  }

  events(opts: EventsOptions, signal: AbortSignal): EventSubscription {
    checkFilterKeys(opts.filters, eventFilterKeys);
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.closers.add(onAbort);
    if (this.closed) ac.abort();
    const sub = this.bus.subscribe(opts, ac.signal);
    const closers = this.closers;
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

  // ---------------------------------------------------------------- create

  async createContainer(name: string | undefined, body: ContainerCreateBody): Promise<ContainerCreateResponse> {
    if (body === null || typeof body !== 'object') throw invalid('body', 'config cannot be empty in order to create a container');
    let wanted = name ? normaliseName(name) : undefined;
    const cfg = normaliseConfig(body);
    if (!cfg.Image) throw invalid('Image', 'No image specified');
    const host = normaliseHostConfig(body.HostConfig);
    containerCapabilities(host);
    parseSecurityOpts(host.SecurityOpt);
    const resolved = await this.images.resolve(cfg.Image).catch((err: unknown) => {
      if (err instanceof BerthError && err.code === 'BERTH_IMAGE_NOT_FOUND') throw new BerthError('BERTH_IMAGE_NOT_FOUND', `No such image: ${cfg.Image}`, { cause: err });
      throw err;
    });
    const merged = mergeImageConfig(cfg, resolved.config.config ?? {});
    const argv = commandLine(merged);
    if (argv.length === 0) throw invalid('Cmd', 'No command specified');
    for (const mode of [host.NetworkMode, host.IpcMode, host.PidMode]) {
      if (mode.startsWith('container:')) this.get(mode.slice('container:'.length));
    }
    if (wanted) {
      const holder = [...this.containers.values()].find((c) => c.name === wanted);
      if (holder) throw nameConflict(wanted, holder.id);
    } else wanted = generateName((n) => [...this.containers.values()].some((c) => c.name === n));
    const id = newId();
    const dir = this.store.dir(id);
    const created = rfc3339Nano(nowNanos());
    const rec: ContainerRecord = {
      Id: id, Created: created, Path: argv[0]!, Args: argv.slice(1), Config: merged, Image: resolved.id, Name: `/${wanted}`,
      RestartCount: 0, Driver: this.opts.graphDriver.name, Platform: 'linux',
      State: {
        Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '',
        StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME,
      },
      ResolvConfPath: join(dir, 'resolv.conf'), HostnamePath: join(dir, 'hostname'), HostsPath: join(dir, 'hosts'),
      LogPath: join(dir, `${id}-json.log`), MountPoints: mountPoints(host), HasBeenStartedBefore: false, HasBeenManuallyStopped: false,
    };
    if (!merged.Hostname) merged.Hostname = host.NetworkMode === 'host' ? osHostname() : id.slice(0, 12);
    // The start that usually follows moves a process into new cgroups: get that ready meanwhile.
    this.runtime.primeCgroups();
    const c = new Ctr(rec, host);
    // Reserve the name before the first await that could interleave another create.
    this.containers.set(id, c);
    let layerMade = false;
    try {
      await this.images.createContainerLayer(id, resolved.id);
      layerMade = true;
      mkdirSync(dir, { recursive: true, mode: 0o710 });
      writeFileAtomic(rec.HostnamePath, hostnameFile(host.NetworkMode === 'host' ? osHostname() : hostnameOf(id, merged)));
      writeFileAtomic(rec.HostsPath, host.NetworkMode === 'host' ? readOr('/etc/hosts', hostsFile(host)) : hostsFile(host));
      writeFileAtomic(rec.ResolvConfPath, resolvConf(readOr('/etc/resolv.conf', ''), host));
      this.save(c, true);
    } catch (err) {
      this.containers.delete(id);
      if (layerMade) await this.images.removeContainerLayer(id).catch(() => undefined);
      this.store.remove(id);
      throw err;
    }
    this.emit(c, 'create');
    return { Id: id, Warnings: [] };
  }

  // ---------------------------------------------------------------- start

  async startContainer(ref: string): Promise<'started' | 'not-modified'> {
    const c = this.get(ref);
    return c.locked(async () => {
      if (c.removing) throw new BerthError('BERTH_CONTAINER_STATE', `container is marked for removal and cannot be started`);
      if (c.rec.State.Paused) throw new BerthError('BERTH_CONTAINER_STATE', 'cannot start a paused container, try unpause instead');
      if (c.rec.State.Running) return 'not-modified';
      this.cancelRestart(c);
      c.rec.HasBeenManuallyStopped = false;
      await this.startLocked(c);
      return 'started';
    });
  }

  private cancelRestart(c: Ctr): void {
    if (c.restartTimer) clearTimeout(c.restartTimer);
    c.restartTimer = null;
    if (c.rec.State.Restarting) {
      c.rec.State.Restarting = false;
      c.rec.State.Status = 'exited';
    }
  }

  private async hostDevices(): Promise<OciDevice[]> {
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

  private seccompFor(c: Ctr, caps: string[]): OciSeccomp | null {
    const sec = parseSecurityOpts(c.host.SecurityOpt);
    if (c.host.Privileged || sec.seccomp.kind === 'unconfined') return null;
    if (sec.seccomp.kind === 'file') return dockerProfileToOci(loadSeccompProfile(sec.seccomp.path), { capabilities: caps });
    const key = caps.join(',');
    let prof = this.seccompByCaps.get(key);
    if (!prof) {
      this.seccompDefault ??= loadSeccompProfile(this.opts.seccompProfile ?? '/usr/share/containers/seccomp.json');
      prof = dockerProfileToOci(this.seccompDefault, { capabilities: caps });
      this.seccompByCaps.set(key, prof);
    }
    return prof;
  }

  private nsPathOf(mode: string, kind: 'net' | 'ipc' | 'pid', what: string): string | undefined {
    if (!mode.startsWith('container:')) return undefined;
    const other = this.get(mode.slice('container:'.length));
    if (!other.rec.State.Running || other.rec.State.Pid <= 0)
      throw new BerthError('BERTH_CONTAINER_STATE', `cannot join ${what} of a non running container: ${other.id}`);
    return `/proc/${other.rec.State.Pid}/ns/${kind}`;
  }

  private userOf(rootfs: string, user: string, groupAdd: readonly string[]): ResolvedUser {
    const read = (p: string): string => {
      try {
        if (lstatSync(join(rootfs, 'etc')).isSymbolicLink()) return '';
        return readFileSync(join(rootfs, p), 'utf8');
      } catch {
        return '';
      }
    };
    return resolveUser(user, read('etc/passwd'), read('etc/group'), groupAdd);
  }

  private async startLocked(c: Ctr): Promise<void> {
    const id = c.id;
    const log = this.log.child({ containerId: id });
    let rootfs: string | null = null;
    let created = false;
    this.runtime.primeCgroups();
    try {
      rootfs = await this.images.mountContainerLayer(id);
      for (const [i, b] of (c.host.Binds ?? []).entries()) {
        const bind = parseBind(b, `HostConfig.Binds[${i}]`);
        if (!existsSync(bind.source)) mkdirSync(bind.source, { recursive: true, mode: 0o755 });
      }
      const caps = containerCapabilities(c.host, this.availableCaps);
      const user = this.userOf(rootfs, c.rec.Config.User, c.host.GroupAdd ?? []);
      const spec = buildSpec({
        id, config: c.rec.Config, hostConfig: c.host, rootfs,
        files: { hostname: c.rec.HostnamePath, hosts: c.rec.HostsPath, resolvConf: c.rec.ResolvConfPath },
        user, seccomp: this.seccompFor(c, caps), availableCaps: this.availableCaps,
        joinNetns: this.nsPathOf(c.host.NetworkMode, 'net', 'network namespace'),
        joinIpc: this.nsPathOf(c.host.IpcMode, 'ipc', 'IPC namespace'),
        joinPid: this.nsPathOf(c.host.PidMode, 'pid', 'PID namespace'),
        hostDevices: c.host.Privileged ? await this.hostDevices() : [],
      });
      const bundle = this.bundleOf(id);
      mkdirSync(bundle, { recursive: true, mode: 0o700 });
      writeFileAtomic(join(bundle, 'config.json'), JSON.stringify(spec, null, 2), 0o644, false);
      // A run that ended before the daemon restarted may have left runtime state behind.
      await this.runtime.delete(id, true).catch(() => undefined);
      rmSync(this.socketOf(id), { force: true });
      await this.runtime.create(id, bundle, {
        io: { socket: this.socketOf(id), logFile: c.rec.LogPath, tty: c.rec.Config.Tty, stdin: c.rec.Config.OpenStdin, stdinOnce: c.rec.Config.StdinOnce && !c.rec.Config.Tty },
        reaper: c.host.Init === true,
      });
      created = true;
      c.spec = spec;
      // Attach sessions that were waiting join before the process runs, so they miss no output.
      const pending = [...c.pendingAttach.keys()];
      c.pendingAttach.clear();
      await Promise.all(pending.map((p) => p()));
      await this.runtime.start(id);
      const st = this.runtime.state(id);
      const s = c.rec.State;
      Object.assign(s, {
        Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: st.pid, ExitCode: 0,
        Error: '', StartedAt: rfc3339Nano(nowNanos()),
      });
      c.rec.HasBeenStartedBefore = true;
      c.suppressRestart = false;
      c.exited = deferred();
      this.save(c);
      this.watchExit(c);
      log.info({ pid: st.pid }, 'container started');
      this.emit(c, 'start');
    } catch (err) {
      // Roll back: no process, no runtime state or cgroup, no mount; the container stays created/exited with the error.
      if (created) await this.runtime.delete(id, true).catch((e: unknown) => log.warn({ err: e }, 'rollback: runtime delete failed'));
      else await this.rtCgroups.destroy(this.cgroupPathOf(c)).catch(() => undefined);
      rmSync(this.socketOf(id), { force: true });
      if (rootfs !== null) await this.images.unmountContainerLayer(id).catch((e: unknown) => log.warn({ err: e }, 'rollback: unmount failed'));
      const message = err instanceof Error ? err.message : String(err);
      const details = err instanceof BerthError ? err.details : undefined;
      const code = typeof details?.exitCode === 'number' && (details.exitCode === 126 || details.exitCode === 127) ? details.exitCode : 128;
      c.rec.State.Error = message;
      c.rec.State.ExitCode = code;
      this.save(c);
      // As Docker: a --rm container whose start failed goes away.
      if (c.host.AutoRemove) await this.removeNow(c).catch((e: unknown) => log.warn({ err: e }, 'auto-remove after a failed start failed'));
      if (err instanceof BerthError && (code === 126 || code === 127))
        throw new BerthError('BERTH_INVALID_ARGUMENT', `failed to create task for container: ${message}`, { cause: err, details: { exitCode: code } });
      throw err;
    }
  }

  private watchExit(c: Ctr): void {
    c.watch?.cancel();
    const w = watchShim(this.socketOf(c.id), this.runtime.exitFile(c.id));
    c.watch = w;
    this.log.debug({ containerId: c.id }, 'watching the shim for the exit');
    w.result.then(
      (code) => {
        this.log.debug({ containerId: c.id, exitCode: code }, 'the shim reported the exit');
        void this.onExit(c, code).catch((err: unknown) => this.log.error({ err, containerId: c.id }, 'exit handling failed'));
      },
      (err: unknown) => {
        this.log.warn({ err, containerId: c.id }, 'lost the shim without an exit status');
        void this.onExit(c, 255);
      },
    );
  }

  private oomKilled(c: Ctr): boolean {
    try {
      const h = this.cgroups.open(this.cgroupPathOf(c));
      const mem = h?.paths().memory;
      if (mem) return /oom_kill [1-9]/.test(readFileSync(join(mem, 'memory.oom_control'), 'utf8'));
      const uni = h?.paths().unified;
      if (uni) return /oom_kill [1-9]/.test(readFileSync(join(uni, 'memory.events'), 'utf8'));
    } catch {
      // Best effort.
    }
    return false;
  }

  private async onExit(c: Ctr, code: number): Promise<void> {
    if (this.closed) return;
    c.watch = null;
    const log = this.log.child({ containerId: c.id });
    const s = c.rec.State;
    const startedMs = parseRfc3339Nano(s.StartedAt);
    const finished = nowNanos();
    const ranMs = startedMs === null ? 0 : Number((finished - startedMs) / 1_000_000n);
    const oom = this.oomKilled(c);
    try {
      await this.runtime.delete(c.id, true);
    } catch (err) {
      if (!(err instanceof BerthError && err.code === 'BERTH_CONTAINER_NOT_FOUND')) log.warn({ err }, 'runtime delete after exit failed');
    }
    await this.rtCgroups.destroy(this.cgroupPathOf(c)).catch(() => undefined);
    rmSync(this.socketOf(c.id), { force: true });
    await this.images.unmountContainerLayer(c.id).catch((err: unknown) => log.warn({ err }, 'unmount after exit failed'));
    for (const eid of c.execs) {
      const e = this.execs.get(eid);
      if (e?.running) {
        e.running = false;
        e.watch?.cancel();
      }
    }
    Object.assign(s, { Status: 'exited', Running: false, Paused: false, Restarting: false, Pid: 0, ExitCode: code, OOMKilled: oom, FinishedAt: rfc3339Nano(finished) });
    this.save(c);
    log.info({ exitCode: code, oomKilled: oom }, 'container exited');
    if (oom) this.emit(c, 'oom');
    this.emit(c, 'die', { exitCode: String(code), execDuration: String(Math.floor(ranMs / 1000)) });
    for (const w of [...c.waiters]) {
      if (w.condition === 'removed') continue;
      c.waiters.delete(w);
      w.resolve({ StatusCode: code });
    }
    const done = c.exited;
    const manual = c.suppressRestart || c.rec.HasBeenManuallyStopped || c.removing;
    if (!manual && c.host.AutoRemove) {
      done.resolve();
      void this.removeNow(c).catch((err: unknown) => log.warn({ err }, 'auto-remove failed'));
      return;
    }
    if (!manual && shouldRestart(c.host.RestartPolicy, { exitCode: code, restartCount: c.rec.RestartCount, manuallyStopped: false })) {
      const delay = c.backoff.next(ranMs);
      Object.assign(s, { Status: 'restarting', Restarting: true });
      this.save(c);
      c.restartTimer = setTimeout(() => {
        c.restartTimer = null;
        void c.locked(async () => {
          if (this.closed || c.removing || !c.rec.State.Restarting || c.rec.State.Running) return;
          c.rec.RestartCount++;
          await this.startLocked(c);
        }).catch((err: unknown) => {
          log.warn({ err }, 'restart by policy failed');
          Object.assign(c.rec.State, { Status: 'exited', Restarting: false });
          this.save(c);
        });
      }, delay);
    }
    done.resolve();
  }

  // ---------------------------------------------------------------- stop / kill / restart

  private async signal(c: Ctr, sig: number, all = false): Promise<void> {
    await this.runtime.kill(c.id, sig, all);
    this.emit(c, 'kill', { signal: String(sig) });
  }

  private async thawIfPaused(c: Ctr): Promise<void> {
    if (!c.rec.State.Paused) return;
    await this.cgroups.open(this.cgroupPathOf(c))?.thaw();
    c.rec.State.Paused = false;
    c.rec.State.Status = 'running';
    this.emit(c, 'unpause');
  }

  /** Waits at most ms (negative = forever) for the current run to end. */
  private async waitExited(c: Ctr, ms: number): Promise<boolean> {
    if (!c.rec.State.Running) return true;
    if (ms < 0) {
      await c.exited.promise;
      return true;
    }
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => (t = setTimeout(() => r(false), ms)));
    const ok = await Promise.race([c.exited.promise.then(() => true as const), timeout]);
    clearTimeout(t);
    return ok;
  }

  private async stopLocked(c: Ctr, opts: StopOptions): Promise<void> {
    c.suppressRestart = true;
    c.rec.HasBeenManuallyStopped = true;
    this.save(c);
    const sig = parseSignal(opts.signal || c.rec.Config.StopSignal || 'SIGTERM');
    const timeout = opts.timeout ?? c.rec.Config.StopTimeout ?? 10;
    try {
      await this.signal(c, sig);
      await this.thawIfPaused(c);
    } catch (err) {
      this.log.debug({ err, containerId: c.id }, 'stop signal failed; killing');
    }
    if (!(await this.waitExited(c, timeout < 0 ? -1 : timeout * 1000))) {
      await this.signal(c, 9, true).catch(() => undefined);
      await this.thawIfPaused(c).catch(() => undefined);
      await this.waitExited(c, -1);
    }
  }

  async stopContainer(ref: string, opts: StopOptions): Promise<'stopped' | 'not-modified'> {
    const c = this.get(ref);
    if (opts.signal) parseSignal(opts.signal);
    return c.locked(async () => {
      if (!c.rec.State.Running) {
        if (c.rec.State.Restarting) {
          this.cancelRestart(c);
          c.rec.HasBeenManuallyStopped = true;
          this.save(c);
          this.emit(c, 'stop');
          return 'stopped';
        }
        return 'not-modified';
      }
      await this.stopLocked(c, opts);
      this.emit(c, 'stop');
      return 'stopped';
    });
  }

  async restartContainer(ref: string, opts: StopOptions): Promise<void> {
    const c = this.get(ref);
    await c.locked(async () => {
      this.cancelRestart(c);
      if (c.rec.State.Running) {
        await this.stopLocked(c, opts);
        this.emit(c, 'stop');
      }
      c.rec.HasBeenManuallyStopped = false;
      await this.startLocked(c);
      this.emit(c, 'restart');
    });
  }

  async killContainer(ref: string, signal?: string): Promise<void> {
    const c = this.get(ref);
    const sig = parseSignal(signal || 'SIGKILL');
    if (!c.rec.State.Running)
      throw new BerthError('BERTH_CONTAINER_STATE', `cannot kill container: ${ref}: container ${c.id} is not running`, { details: { id: c.id } });
    if (sig === 9 || sig === 15 || sig === 2) {
      c.suppressRestart = true;
      c.rec.HasBeenManuallyStopped = true;
      this.save(c);
    }
    await this.signal(c, sig, sig === 9);
    if (sig === 9) {
      await this.thawIfPaused(c).catch(() => undefined);
      await this.waitExited(c, 10_000);
    }
  }

  // ---------------------------------------------------------------- remove

  async removeContainer(ref: string, opts: { force: boolean; volumes: boolean }): Promise<void> {
    const c = this.get(ref);
    if (c.removing) throw new BerthError('BERTH_CONTAINER_STATE', `removal of container ${ref} is already in progress`);
    if (c.rec.State.Running && !opts.force) {
      if (c.rec.State.Paused)
        throw new BerthError('BERTH_CONTAINER_STATE', `cannot remove container "${c.rec.Name}": container is paused and must be unpaused first`);
      throw new BerthError(
        'BERTH_CONTAINER_STATE',
        `cannot remove container "${c.rec.Name}": container is running: stop the container before removing or force remove`,
      );
    }
    await c.locked(async () => {
      c.removing = true;
      this.cancelRestart(c);
      if (c.rec.State.Running) {
        c.suppressRestart = true;
        await this.signal(c, 9, true).catch(() => undefined);
        await this.thawIfPaused(c).catch(() => undefined);
        await this.waitExited(c, -1);
      }
    });
    await this.removeNow(c);
  }

  private async removeNow(c: Ctr): Promise<void> {
    if (!this.containers.has(c.id)) return;
    c.removing = true;
    Object.assign(c.rec.State, { Status: 'removing' });
    this.cancelRestart(c);
    for (const drop of [...c.pendingAttach.values()]) drop();
    c.pendingAttach.clear();
    for (const eid of c.execs) {
      this.execs.get(eid)?.watch?.cancel();
      this.execs.delete(eid);
    }
    await this.runtime.delete(c.id, true).catch(() => undefined);
    await this.images.unmountContainerLayer(c.id).catch(() => undefined);
    await this.images.removeContainerLayer(c.id).catch((err: unknown) => {
      if (!(err instanceof BerthError && err.code === 'BERTH_LAYER_NOT_FOUND')) throw err;
    });
    rmSync(this.bundleOf(c.id), { recursive: true, force: true });
    rmSync(this.socketOf(c.id), { force: true });
    this.store.remove(c.id);
    this.containers.delete(c.id);
    for (const eid of c.execs) this.execs.delete(eid);
    this.emit(c, 'destroy');
    for (const w of [...c.waiters]) {
      c.waiters.delete(w);
      w.resolve({ StatusCode: c.rec.State.ExitCode });
    }
  }

  // ---------------------------------------------------------------- wait

  async waitContainer(ref: string, condition: WaitCondition): Promise<WaitHandle> {
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw invalid('condition', `invalid condition: "${condition}"`);
    const c = this.get(ref);
    const d = deferred<WaitResponse>();
    const running = c.rec.State.Running || c.rec.State.Restarting;
    if (condition === 'not-running' && !running) {
      d.resolve({ StatusCode: c.rec.State.ExitCode });
      return { result: d.promise, cancel: () => undefined };
    }
    const w: Waiter = { condition, resolve: d.resolve };
    c.waiters.add(w);
    return { result: d.promise, cancel: () => c.waiters.delete(w) };
  }

  // ---------------------------------------------------------------- attach, resize, logs

  async attachContainer(ref: string, opts: AttachOptions): Promise<StreamSession> {
    const c = this.get(ref);
    const keys = parseDetachKeys(opts.detachKeys);
    const tty = c.rec.Config.Tty;
    return {
      tty,
      pipe: (client) => this.pipeAttach(c, client, opts, keys),
    };
  }

  private async pipeAttach(c: Ctr, client: Duplex, opts: AttachOptions, keys: Buffer): Promise<void> {
    this.emit(c, 'attach');
    if (opts.logs) {
      const body = readLog(c.rec.LogPath, { stdout: opts.stdout, stderr: opts.stderr, since: 0, until: 0, timestamps: false, tty: c.rec.Config.Tty }, 'all', {
        follow: false, running: () => false, stopped: Promise.resolve(),
      });
      for await (const chunk of body) if (!client.destroyed) client.write(chunk as Buffer);
    }
    if (!opts.stream) {
      client.end();
      return;
    }
    const streams: Streams = { stdin: opts.stdin && c.rec.Config.OpenStdin, stdout: opts.stdout, stderr: opts.stderr, closeStdin: c.rec.Config.StdinOnce && !c.rec.Config.Tty };
    const connect = (): Promise<void> => this.joinShim(this.socketOf(c.id), client, streams, keys);
    if (c.rec.State.Running) {
      try {
        await connect();
      } catch (err) {
        this.log.debug({ err, containerId: c.id }, 'attach failed');
        client.end();
      }
      return;
    }
    // Not running: join at the next start (docker run attaches before it starts). The hook runs
    // between the runtime's create and start, and returns once the shim has accepted the attach,
    // so no output is missed.
    await new Promise<void>((resolve) => {
      const hook = async (): Promise<void> => {
        client.off('close', gone);
        try {
          const shim = await ShimClient.attach(this.socketOf(c.id), streams);
          void this.pipeShim(shim, client, streams, keys).finally(resolve);
        } catch (err) {
          this.log.debug({ err, containerId: c.id }, 'attach at start failed');
          if (!client.destroyed) client.end();
          resolve();
        }
      };
      const gone = (): void => {
        c.pendingAttach.delete(hook);
        resolve();
      };
      const drop = (): void => {
        client.off('close', gone);
        c.pendingAttach.delete(hook);
        if (!client.destroyed) client.end();
        resolve();
      };
      client.once('close', gone);
      c.pendingAttach.set(hook, drop);
    });
  }

  /** Pipes a client socket to a shim attach stream until either side ends or detach keys arrive. */
  private async joinShim(
    socket: string,
    client: Duplex,
    streams: Streams,
    keys: Buffer,
    beforeEnd?: () => Promise<unknown>,
  ): Promise<void> {
    const shim = await ShimClient.attach(socket, streams);
    return this.pipeShim(shim, client, streams, keys, beforeEnd);
  }

  /**
   * Joins the client and the shim stream. The session ends when the shim closes (the process
   * exited and its output is drained: `beforeEnd` runs first, so an exec's exit code is known
   * before the client learns the stream ended), on detach keys, or when the client goes away.
   */
  private async pipeShim(
    shim: import('node:net').Socket,
    client: Duplex,
    streams: Streams,
    keys: Buffer,
    beforeEnd?: () => Promise<unknown>,
  ): Promise<void> {
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    let ended = false;
    const end = (graceful: boolean): void => {
      if (ended) return;
      ended = true;
      client.off('data', onData);
      shim.destroy();
      const finish = (): void => {
        if (!client.destroyed) client.end();
        done();
      };
      if (graceful && beforeEnd) void beforeEnd().catch(() => undefined).then(finish);
      else finish();
    };
    const scanner = new DetachScanner(keys);
    const onData = (chunk: Buffer): void => {
      if (!streams.stdin) return;
      const { forward, detached } = scanner.push(chunk);
      if (forward.length) shim.write(forward);
      if (detached) end(false);
    };
    shim.on('data', (d: Buffer) => {
      if (client.destroyed) return;
      // A slow client slows the shim stream down (the shim drops it past its own queue limit).
      if (!client.write(d)) {
        shim.pause();
        client.once('drain', () => shim.resume());
      }
    });
    shim.on('end', () => end(true));
    shim.on('close', () => end(true));
    shim.on('error', () => end(false));
    client.on('data', onData);
    // Client stdin EOF, as Docker: with StdinOnce and no tty the container's stdin closes and
    // output goes on until exit; otherwise the session ends and the container keeps its stdin.
    client.on('end', () => {
      if (!streams.stdin || ended) return;
      if (streams.closeStdin) shim.end();
      else end(false);
    });
    client.on('close', () => end(false));
    client.on('error', () => end(false));
    shim.resume();
    // The caller may have paused the socket (reading a request body off it): flow again.
    client.resume();
    await finished;
  }

  async resizeContainer(ref: string, height: number, width: number): Promise<void> {
    const c = this.get(ref);
    if (!c.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is not running`);
    if (c.rec.Config.Tty) await ShimClient.resize(this.socketOf(c.id), height, width);
    this.emit(c, 'resize', { height: String(height), width: String(width) });
  }

  async containerLogs(ref: string, opts: LogsOptions): Promise<LogsStream> {
    const c = this.get(ref);
    if (!opts.stdout && !opts.stderr) throw invalid('stdout', 'Bad parameters: you must choose at least one stream');
    const tty = c.rec.Config.Tty;
    const body = readLog(
      c.rec.LogPath,
      { stdout: opts.stdout, stderr: opts.stderr, since: opts.since, until: opts.until, timestamps: opts.timestamps, tty },
      opts.tail,
      { follow: opts.follow && c.rec.State.Running, running: () => c.rec.State.Running, stopped: c.exited.promise },
    );
    return { tty, body };
  }

  // ---------------------------------------------------------------- rename, top, pause, export

  async renameContainer(ref: string, newName: string): Promise<void> {
    const c = this.get(ref);
    const name = normaliseName(newName);
    if (name === c.name) throw invalid('name', 'Renaming a container with the same name as its current name');
    const holder = [...this.containers.values()].find((o) => o.name === name);
    if (holder) throw nameConflict(name, holder.id);
    const old = c.rec.Name;
    c.rec.Name = `/${name}`;
    this.save(c);
    this.emit(c, 'rename', { oldName: old });
  }

  async topContainer(ref: string, psArgs: string): Promise<TopResponse> {
    const c = this.get(ref);
    if (!c.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is not running`);
    const pids = await this.rtCgroups.pids(this.cgroupPathOf(c));
    const args = (psArgs || '-ef').split(/\s+/).filter(Boolean);
    let out: string;
    try {
      out = (await execFileP('ps', args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (err) {
      throw invalid('ps_args', `Error running ps: ${(err as Error).message}`);
    }
    return parsePs(out, pids);
  }

  async pauseContainer(ref: string): Promise<void> {
    const c = this.get(ref);
    await c.locked(async () => {
      if (!c.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is not running`);
      if (c.rec.State.Paused) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is already paused`);
      const h = this.cgroups.open(this.cgroupPathOf(c));
      if (!h) throw new BerthError('BERTH_CGROUP', `Container ${c.id}: no cgroup to freeze`);
      await h.freeze();
      Object.assign(c.rec.State, { Paused: true, Status: 'paused' });
      this.save(c);
      this.emit(c, 'pause');
    });
  }

  async unpauseContainer(ref: string): Promise<void> {
    const c = this.get(ref);
    await c.locked(async () => {
      if (!c.rec.State.Paused) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is not paused`);
      await this.cgroups.open(this.cgroupPathOf(c))?.thaw();
      Object.assign(c.rec.State, { Paused: false, Status: 'running' });
      this.save(c);
      this.emit(c, 'unpause');
    });
  }

  async exportContainer(ref: string): Promise<Readable> {
    const c = this.get(ref);
    const r = await this.images.exportContainer(c.id);
    this.emit(c, 'export');
    return r;
  }

  // ---------------------------------------------------------------- inspect, list

  async inspectContainer(ref: string, opts?: { size: boolean }): Promise<ContainerInspect> {
    const c = this.get(ref);
    const r = c.rec;
    const s = r.State;
    let graph: { Name: string; Data: Record<string, string> | null } = { Name: r.Driver, Data: null };
    try {
      graph = await this.images.containerGraphDriver(c.id);
    } catch {
      // Shown without data.
    }
    const out: ContainerInspect = {
      Id: r.Id, Created: r.Created, Path: r.Path, Args: r.Args,
      State: {
        Status: s.Status, Running: s.Running, Paused: s.Paused, Restarting: s.Restarting, OOMKilled: s.OOMKilled, Dead: s.Dead,
        Pid: s.Pid, ExitCode: s.ExitCode, Error: s.Error, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt,
      },
      Image: r.Image, ResolvConfPath: r.ResolvConfPath, HostnamePath: r.HostnamePath, HostsPath: r.HostsPath, LogPath: r.LogPath,
      Name: r.Name, RestartCount: r.RestartCount, Driver: r.Driver, Platform: r.Platform, MountLabel: '', ProcessLabel: '', AppArmorProfile: '',
      ExecIDs: c.execs.size ? [...c.execs] : null, HostConfig: c.host, GraphDriver: graph,
      Mounts: r.MountPoints, Config: r.Config, NetworkSettings: networkSettings(c.host, s.Running ? s.Pid : 0),
    };
    if (opts?.size) {
      const rw = await this.images.size(c.id).catch(() => 0);
      out.SizeRw = rw;
      out.SizeRootFs = rw + (await this.imageSize(r.Image));
    }
    return out;
  }

  private async imageSize(imageId: string): Promise<number> {
    try {
      return (await this.images.inspect(imageId)).Size;
    } catch {
      return 0;
    }
  }

  async listContainers(opts: { all: boolean; limit: number; size: boolean; filters: Filters }): Promise<ContainerSummary[]> {
    const f = opts.filters;
    checkFilterKeys(f, psFilterKeys);
    for (const st of f.get('status') ?? []) if (!containerStates.includes(st)) throw invalidFilter('status', st);
    const all = [...this.containers.values()].sort((a, b) => (a.rec.Created < b.rec.Created ? 1 : a.rec.Created > b.rec.Created ? -1 : 0));
    const ancestors = new Set<string>();
    for (const a of f.get('ancestor') ?? []) {
      try {
        ancestors.add((await this.images.resolve(a)).id);
      } catch {
        // An unknown image matches nothing.
      }
    }
    const refTime = (key: 'before' | 'since'): string | null => {
      const v = [...(f.get(key) ?? [])][0];
      return v === undefined ? null : this.get(v).rec.Created;
    };
    const before = refTime('before');
    const since = refTime('since');
    const showAll = opts.all || opts.limit > 0 || f.has('status') || before !== null || since !== null;
    const out: ContainerSummary[] = [];
    for (const c of all) {
      const r = c.rec;
      if (!showAll && !r.State.Running && !r.State.Restarting) continue;
      if (before !== null && r.Created >= before) continue;
      if (since !== null && r.Created <= since) continue;
      const status = f.get('status');
      if (status?.size && !status.has(r.State.Status)) continue;
      if (!matchRegexp(f.get('name'), r.Name) && !matchRegexp(f.get('name'), c.name)) continue;
      const ids = f.get('id');
      if (ids?.size && ![...ids].some((v) => c.id.startsWith(v)) && !matchRegexp(ids, c.id)) continue;
      if (!matchLabels(f.get('label'), r.Config.Labels)) continue;
      if (ancestors.size || f.get('ancestor')?.size) {
        if (!ancestors.has(r.Image) && !f.get('ancestor')!.has(r.Config.Image)) continue;
      }
      const exited = f.get('exited');
      if (exited?.size && (r.State.Status !== 'exited' || !exited.has(String(r.State.ExitCode)))) continue;
      const net = f.get('network');
      if (net?.size && !net.has(c.host.NetworkMode)) continue;
      const summary: ContainerSummary = {
        Id: c.id, Names: [r.Name], Image: r.Config.Image, ImageID: r.Image, Command: commandText(r.Path, r.Args),
        Created: Math.floor(Number(parseRfc3339Nano(r.Created) ?? 0n) / 1e9), Ports: ports(r.Config.ExposedPorts),
        Labels: r.Config.Labels ?? {}, State: r.State.Status, Status: statusText(r.State),
        HostConfig: { NetworkMode: c.host.NetworkMode }, NetworkSettings: { Networks: networkSettings(c.host, 0).Networks }, Mounts: r.MountPoints,
      };
      if (opts.size) {
        summary.SizeRw = await this.images.size(c.id).catch(() => 0);
        summary.SizeRootFs = summary.SizeRw + (await this.imageSize(r.Image));
      }
      out.push(summary);
      if (opts.limit > 0 && out.length >= opts.limit) break;
    }
    return out;
  }

  // ---------------------------------------------------------------- exec

  async createExec(ref: string, body: ExecCreateBody): Promise<{ Id: string }> {
    const c = this.get(ref);
    const cmd = Array.isArray(body.Cmd) ? body.Cmd : typeof body.Cmd === 'string' ? [body.Cmd] : [];
    if (cmd.length === 0) throw invalid('Cmd', 'No exec command specified');
    if (!c.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `container ${c.id} is not running`);
    if (c.rec.State.Paused) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is paused, unpause the container before exec`);
    if (body.WorkingDir && !body.WorkingDir.startsWith('/')) throw invalid('WorkingDir', `the working directory '${body.WorkingDir}' is invalid, it needs to be an absolute path`);
    const detachKeys = body.DetachKeys ? body.DetachKeys : null;
    if (detachKeys) parseDetachKeys(detachKeys);
    const id = newId();
    const e: ExecRec = {
      id, containerId: c.id, cmd, user: body.User ?? '', privileged: body.Privileged === true, tty: body.Tty === true,
      env: Array.isArray(body.Env) ? body.Env : [], workingDir: body.WorkingDir ?? '', attachStdin: body.AttachStdin === true,
      attachStdout: body.AttachStdout === true, attachStderr: body.AttachStderr === true, detachKeys,
      consoleSize: Array.isArray(body.ConsoleSize) ? body.ConsoleSize : null, running: false, started: false, exitCode: null, pid: 0,
      socket: this.socketOf(id), exitFile: '', watch: null,
    };
    this.execs.set(id, e);
    c.execs.add(id);
    this.emit(c, `exec_create: ${cmd.join(' ')}`, { execID: id });
    return { Id: id };
  }

  private getExec(id: string): ExecRec {
    const e = this.execs.get(id);
    if (!e) throw new BerthError('BERTH_EXEC_NOT_FOUND', `No such exec instance: ${id}`, { details: { id } });
    return e;
  }

  private execProcess(c: Ctr, e: ExecRec, tty: boolean): OciProcess {
    const base = c.spec?.process ?? loadBundleSpec(this.bundleOf(c.id))?.process;
    if (!base) throw new BerthError('BERTH_INTERNAL', `container ${c.id} has no spec to exec in`);
    const env = [...(base.env ?? [])];
    for (const kv of e.env) {
      const k = kv.includes('=') ? kv.slice(0, kv.indexOf('=')) : kv;
      const i = env.findIndex((x) => x.startsWith(`${k}=`));
      if (i >= 0) env[i] = kv;
      else env.push(kv);
    }
    let user = base.user;
    if (e.user) {
      const rootfs = c.spec?.root?.path ?? loadBundleSpec(this.bundleOf(c.id))?.root?.path ?? '/';
      user = this.userOf(rootfs, e.user, []);
    }
    const all = this.availableCaps;
    const caps = e.privileged ? { bounding: all, effective: all, permitted: all, inheritable: [], ambient: [] } : base.capabilities;
    const proc: OciProcess = { ...base, args: e.cmd, env, cwd: e.workingDir || base.cwd, user, terminal: tty };
    if (caps) proc.capabilities = caps;
    if (tty && e.consoleSize && e.consoleSize[0] > 0 && e.consoleSize[1] > 0) proc.consoleSize = { height: e.consoleSize[0], width: e.consoleSize[1] };
    else delete proc.consoleSize;
    return proc;
  }

  async startExec(id: string, body: ExecStartBody): Promise<StreamSession | null> {
    const e = this.getExec(id);
    const c = this.containers.get(e.containerId);
    if (!c) throw new BerthError('BERTH_EXEC_NOT_FOUND', `No such exec instance: ${id}`);
    if (e.started) throw new BerthError('BERTH_CONTAINER_STATE', `Error: Exec command ${id} is already running`);
    if (!c.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `container ${c.id} is not running`);
    if (c.rec.State.Paused) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is paused, unpause the container before exec`);
    const detach = body.Detach === true;
    const tty = body.Tty ?? e.tty;
    if (Array.isArray(body.ConsoleSize)) e.consoleSize = body.ConsoleSize;
    e.started = true;
    e.running = true;
    this.emit(c, `exec_start: ${e.cmd.join(' ')}`, { execID: id });
    let failure: BerthError | null = null;
    try {
      const proc = this.execProcess(c, e, tty);
      rmSync(e.socket, { force: true });
      const started = await this.runtime.execProcess(c.id, id, proc, {
        socket: e.socket, tty, stdin: e.attachStdin && !detach, stdinOnce: !tty, hold: !detach,
      });
      e.pid = started.pid;
      e.exitFile = started.exitFile;
      const w = watchShim(e.socket, started.exitFile);
      e.watch = w;
      w.result.then(
        (code) => this.execExited(c, e, code),
        () => this.execExited(c, e, 255),
      );
    } catch (err) {
      const code = err instanceof BerthError && typeof err.details?.exitCode === 'number' ? err.details.exitCode : 126;
      e.running = false;
      e.exitCode = code;
      this.emit(c, 'exec_die', { execID: id, exitCode: String(code) });
      failure = err instanceof BerthError ? err : new BerthError('BERTH_INTERNAL', String(err), { cause: err });
      if (detach) throw failure;
    }
    if (detach) return null;
    const keys = parseDetachKeys(e.detachKeys);
    const streams: Streams = { stdin: e.attachStdin, stdout: e.attachStdout, stderr: e.attachStderr, closeStdin: !tty };
    return {
      tty,
      pipe: async (client) => {
        if (failure) {
          const text = `${failure.message}\r\n`;
          client.end(tty ? text : Buffer.concat([frameErr(text)]));
          return;
        }
        try {
          // docker exec asks for the exit code as soon as the stream ends: have it recorded by then.
          const exitKnown = (): Promise<unknown> =>
            Promise.race([e.watch?.result ?? Promise.resolve(), new Promise((r) => setTimeout(r, 2000).unref())]);
          await this.joinShim(e.socket, client, streams, keys, exitKnown);
        } catch (err) {
          this.log.debug({ err, execId: id }, 'exec attach failed');
          if (!client.destroyed) client.end();
        }
      },
    };
  }

  private execExited(c: Ctr, e: ExecRec, code: number): void {
    e.watch = null;
    if (e.exitCode === null) e.exitCode = code;
    e.running = false;
    rmSync(e.socket, { force: true });
    if (this.containers.has(c.id)) this.emit(c, 'exec_die', { execID: e.id, exitCode: String(code) });
  }

  async resizeExec(id: string, height: number, width: number): Promise<void> {
    const e = this.getExec(id);
    if (!e.running) throw new BerthError('BERTH_CONTAINER_STATE', `Exec ${id} is not running`);
    if (e.tty) await ShimClient.resize(e.socket, height, width);
  }

  async inspectExec(id: string): Promise<ExecInspect> {
    const e = this.getExec(id);
    const [entrypoint = '', ...args] = e.cmd;
    return {
      ID: e.id, Running: e.running, ExitCode: e.running || !e.started ? null : e.exitCode,
      ProcessConfig: { tty: e.tty, entrypoint, arguments: args, privileged: e.privileged, user: e.user },
      OpenStdin: e.attachStdin, OpenStderr: e.attachStderr, OpenStdout: e.attachStdout, CanRemove: false, ContainerID: e.containerId,
      DetachKeys: e.detachKeys === null ? null : Buffer.from(parseDetachKeys(e.detachKeys)).toString('base64'), Pid: e.pid,
    };
  }

  // ---------------------------------------------------------------- images

  async listImages(opts: { all: boolean; filters: Filters }): Promise<ImageSummary[]> {
    const list = await this.images.list(opts);
    for (const img of list) img.Containers = [...this.containers.values()].filter((c) => c.rec.Image === img.Id).length;
    return list;
  }

  inspectImage(ref: string): Promise<ImageInspect> {
    return this.images.inspect(ref);
  }

  async importImage(tar: Readable, opts: ImportOptions, progress: (msg: JsonMessage) => void): Promise<string> {
    const id = await this.images.importTar(tar, { repo: opts.repo, tag: opts.tag, message: opts.message, changes: opts.changes }, progress);
    const name = opts.repo ? (opts.tag ? `${opts.repo}:${opts.tag}` : opts.repo) : '';
    this.bus.publish('image', 'import', id, name ? { name } : {});
    if (name) this.bus.publish('image', 'tag', id, { name: name.includes(':') ? name : `${name}:latest` });
    return id;
  }

  async tagImage(ref: string, repo: string, tag: string): Promise<void> {
    await this.images.tag(ref, repo, tag);
    const img = await this.images.resolve(ref).catch(() => null);
    this.bus.publish('image', 'tag', img?.id ?? ref, { name: `${repo}:${tag || 'latest'}` });
  }

  async removeImage(ref: string, opts: { force: boolean; noprune: boolean }): Promise<ImageDeleteItem[]> {
    const items = await this.images.remove(ref, opts, (imageId) => {
      const c = [...this.containers.values()].find((x) => x.rec.Image === imageId);
      return c ? { id: c.id, running: c.rec.State.Running } : null;
    });
    for (const it of items) {
      if ('Untagged' in it) this.bus.publish('image', 'untag', ref, { name: it.Untagged });
      else this.bus.publish('image', 'delete', it.Deleted, { name: it.Deleted });
    }
    return items;
  }

  // ---------------------------------------------------------------- recovery, close

  private async recover(): Promise<void> {
    const { records, broken } = this.store.loadAll();
    for (const id of broken) {
      // A create that died half way: nothing of it is shown; its layer and files go.
      this.log.warn({ containerId: id }, 'removing a half-created container');
      await this.images.removeContainerLayer(id).catch(() => undefined);
      this.store.remove(id);
    }
    const restartable: Ctr[] = [];
    for (const { rec, host } of records) {
      const c = new Ctr(rec, host);
      this.containers.set(rec.Id, c);
      const s = rec.State;
      if (s.Status === 'removing') {
        await this.removeNow(c).catch((err: unknown) => this.log.warn({ err, containerId: rec.Id }, 'finishing removal failed'));
        continue;
      }
      if (!s.Running && s.Restarting) {
        // Waiting out a restart back-off when the daemon went down: the exit is recorded already.
        Object.assign(s, { Status: 'exited', Restarting: false });
        this.save(c);
      }
      if (!s.Running) {
        // A start cut short by the crash may have left runtime state, a cgroup or a mount.
        if (existsSync(join(this.opts.execRoot, 'runtime', rec.Id))) {
          await this.runtime.delete(rec.Id, true).catch(() => undefined);
          await this.rtCgroups.destroy(this.cgroupPathOf(c)).catch(() => undefined);
          await this.images.unmountContainerLayer(rec.Id).catch(() => undefined);
          rmSync(this.socketOf(rec.Id), { force: true });
        }
        if (s.Status === 'exited' && !rec.HasBeenManuallyStopped) restartable.push(c);
        continue;
      }
      let alive = false;
      if (s.Running) {
        try {
          const st = await ShimClient.status(this.socketOf(rec.Id));
          alive = st.status === 'running';
        } catch {
          alive = false;
        }
      }
      if (alive && this.liveRestore) {
        const frozen = this.rtCgroups.isFrozen(this.cgroupPathOf(c));
        Object.assign(s, { Paused: frozen, Status: frozen ? 'paused' : 'running' });
        this.save(c);
        this.watchExit(c);
        this.log.info({ containerId: rec.Id }, 're-adopted a running container');
        continue;
      }
      if (alive) {
        await this.runtime.kill(rec.Id, 9, true);
      }
      const code = (await readExitFile(this.runtime.exitFile(rec.Id))) ?? 255;
      await this.runtime.delete(rec.Id, true).catch(() => undefined);
      await this.rtCgroups.destroy(this.cgroupPathOf(c)).catch(() => undefined);
      rmSync(this.socketOf(rec.Id), { force: true });
      await this.images.unmountContainerLayer(rec.Id).catch(() => undefined);
      Object.assign(s, { Status: 'exited', Running: false, Paused: false, Restarting: false, Pid: 0, ExitCode: code, FinishedAt: rfc3339Nano(nowNanos()) });
      this.save(c);
      if (!rec.HasBeenManuallyStopped) restartable.push(c);
    }
    for (const c of restartable) {
      if (!shouldRestart(c.host.RestartPolicy, { exitCode: c.rec.State.ExitCode, restartCount: c.rec.RestartCount, manuallyStopped: c.rec.HasBeenManuallyStopped }))
        continue;
      if (c.host.RestartPolicy.Name === 'on-failure' && !c.rec.State.Running && c.rec.State.Status !== 'exited') continue;
      void c.locked(() => this.startLocked(c)).catch((err: unknown) => this.log.warn({ err, containerId: c.id }, 'restart at daemon start failed'));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.containers.values()) {
      c.watch?.cancel();
      c.watch = null;
      if (c.restartTimer) clearTimeout(c.restartTimer);
      for (const drop of [...c.pendingAttach.values()]) drop();
    }
    for (const e of this.execs.values()) e.watch?.cancel();
    for (const close of [...this.closers]) close();
  }
}

/**
 * Where shim control sockets live: `<execRoot>/s`, names of 32 hex digits (128 random bits), so
 * a path fits sun_path's 108 bytes; with an exec root too long even for that, a directory in
 * /tmp named after a hash of the exec root.
 */
export function shimSocketDir(execRoot: string): string {
  const dir = join(execRoot, 's');
  if (Buffer.byteLength(dir) + 1 + 32 + 5 < 108) return dir;
  return join('/tmp', `berth-s-${createHash('sha256').update(execRoot).digest('hex').slice(0, 16)}`);
}

function frameErr(text: string): Buffer {
  const payload = Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = 2;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

function loadBundleSpec(bundle: string): OciSpec | null {
  try {
    return JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as OciSpec;
  } catch {
    return null;
  }
}

function mountPoints(h: HostConfig): MountPoint[] {
  return (h.Binds ?? []).map((b, i) => {
    const bind = parseBind(b, `HostConfig.Binds[${i}]`);
    return { Type: 'bind', Source: bind.source, Destination: bind.destination, Mode: bind.mode, RW: !bind.readonly, Propagation: bind.propagation };
  });
}

function emptyEndpoint(): EndpointSettings {
  return {
    IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', DriverOpts: null, NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '',
    IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DNSNames: null,
  };
}

function networkSettings(h: HostConfig, pid: number): NetworkSettings {
  const nm = h.NetworkMode;
  const networks: Record<string, EndpointSettings> = {};
  if (nm === 'bridge' || nm === 'host' || nm === 'none') networks[nm] = emptyEndpoint();
  return {
    Bridge: '', SandboxID: '', SandboxKey: pid > 0 && nm !== 'host' ? `/proc/${pid}/ns/net` : '', Ports: {}, HairpinMode: false,
    LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0, SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, EndpointID: '',
    Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', MacAddress: '', Networks: networks,
  };
}

function ports(exposed: Record<string, unknown> | null | undefined): ContainerSummary['Ports'] {
  return Object.keys(exposed ?? {}).map((p) => {
    const [port, proto = 'tcp'] = p.split('/');
    return { PrivatePort: Number(port), Type: proto };
  });
}

function goArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
}

function readTrim(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

function readOr(p: string, fallback: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return fallback;
  }
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

void statSync;
void osArch;
void noSuchContainer;
void shortId;
void hostnameOf;

export async function createEngine(options: EngineOptions): Promise<Engine> {
  const engine = new BerthEngine(options);
  await engine.init();
  return engine;
}
