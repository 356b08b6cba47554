/**
 * What every part of the engine works on: the options, the containers and exec records in
 * memory, the record store, the event bus and the runtime, cgroup and image collaborators
 * (the latter opened by `open`, before recovery).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ImageStore } from '@berth/image';
import type { Logger } from '@berth/log';
import { isDriverSkip, type GraphDriver, type IpamDriver, type IpamDriverDescriptor, type NetworkDriver, type NetworkDriverDescriptor } from '@berth/plugin-api';
import { NetworkController } from '@berth/network';
import { PluginRegistry } from '@berth/plugin';
import { Runtime, runtimeCgroups, type RuntimeCgroups } from '@berth/runtime';
import { createCgroupManager, type CgroupManager } from '@berth/cgroups';
import { realSyscalls, type Syscalls } from '@berth/native';
import type { Ctr } from './container.js';
import { EventBus } from './events.js';
import type { ExecRec } from './exec.js';
import { readTrim } from './host-files.js';
import { capabilitiesOfMask } from './oci-spec.js';
import { resolveReference } from './references.js';
import { SeccompProfiles } from './seccomp.js';
import { ContainerStore } from './store.js';
import { VolumeStore } from './volumes.js';
import { volumeRefs } from './volumes-mounts.js';

export interface EngineOptions {
  dataRoot: string;
  execRoot: string;
  logger: Logger;
  graphDriver: GraphDriver;
  /** `insecure-registries`: host[:port] or CIDR reachable over plain HTTP (loopback always is). */
  insecureRegistries?: string[];
  /** Keep containers running across daemon restarts (default true). */
  liveRestore?: boolean;
  version?: string;
  /** Docker's default seccomp profile; /usr/share/containers/seccomp.json by default. */
  seccompProfile?: string;
  /**
   * Networking (CNM): the network and IPAM drivers to bind, and the default bridge. Without it,
   * `bridge` mode is a private network namespace with only lo (tests of other subsystems).
   */
  network?: {
    drivers: readonly NetworkDriverDescriptor[];
    ipams: readonly IpamDriverDescriptor[];
    defaultBridge?: { name?: string; subnet?: string; gateway?: string; mtu?: number; icc?: boolean };
    /** Options for each driver by name (daemon.json: iptables, userland-proxy...). */
    driverOptions?: Record<string, Record<string, string>>;
  };
  /** Seams for tests: a prepared cgroup manager / runtime. */
  cgroupManager?: CgroupManager;
  /** The daemon's authorization plugins (--authorization-plugin), shown by info; berthd runs them. */
  authorizationPlugins?: readonly string[];
}

export class EngineContext {
  readonly log: Logger;
  readonly containers = new Map<string, Ctr>();
  readonly execs = new Map<string, ExecRec>();
  readonly bus = new EventBus(1000);
  readonly store: ContainerStore;
  /** Named and anonymous volumes (`<dataRoot>/volumes`), loaded by `open`. */
  readonly volumes: VolumeStore;
  private volumePlugins: PluginRegistry | undefined;
  images!: ImageStore;
  network: NetworkController | undefined;
  runtime!: Runtime;
  cgroups!: CgroupManager;
  rtCgroups!: RuntimeCgroups;
  private syscalls: Syscalls | undefined;
  readonly seccomp: SeccompProfiles;
  closed = false;
  /** The daemon's bounding set: what --privileged and --cap-add ALL can give. */
  readonly availableCaps: string[] = capabilitiesOfMask(/^CapBnd:\s*([0-9a-f]+)$/m.exec(readTrim('/proc/self/status'))?.[1] ?? 'ffffffffff');
  readonly liveRestore: boolean;
  private readonly shimDir: string;
  private readonly bundleRoot: string;
  readonly id = randomBytes(16).toString('hex');
  /** Ends the open event streams at close. */
  readonly closers = new Set<() => void>();

  constructor(readonly opts: EngineOptions) {
    this.log = opts.logger;
    this.liveRestore = opts.liveRestore ?? true;
    this.store = new ContainerStore(join(opts.dataRoot, 'containers'));
    this.shimDir = shimSocketDir(opts.execRoot);
    this.bundleRoot = join(opts.execRoot, 'containers');
    this.seccomp = new SeccompProfiles(opts.seccompProfile ?? '/usr/share/containers/seccomp.json');
    this.volumes = new VolumeStore({
      root: join(opts.dataRoot, 'volumes'), logger: this.log.child({ component: 'volumes' }),
      refs: (name) => volumeRefs(this, name),
      emit: (action, id, attrs) => this.bus.publish('volume', action, id, attrs),
      mounter: () => (this.syscalls ??= realSyscalls()),
      // Any driver other than local is a v1 plugin in the plugin directories.
      plugin: (name) => this.pluginRegistry().volume(name),
      plugins: async () => {
        const registry = this.pluginRegistry();
        return Promise.all((await registry.all('VolumeDriver')).map((a) => registry.volume(a.spec.name)));
      },
    });
  }

  /** The v1 plugins of the plugin directories, for volume drivers (an unknown name fails after ~2 s). */
  private pluginRegistry(): PluginRegistry {
    return (this.volumePlugins ??= new PluginRegistry({ retry: { timeoutMs: 2000 }, logger: this.log.child({ component: 'plugins' }) }));
  }

  /** Makes the exec root's directories and opens the cgroup manager, the runtime and the image store. */
  async open(): Promise<void> {
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
    if (this.opts.network) this.network = await this.openNetwork(this.opts.network);
    this.volumes.load();
    this.images = await ImageStore.open({ root: join(this.opts.dataRoot, 'image', this.opts.graphDriver.name), driver: this.opts.graphDriver, logger: this.log });
  }

  /** Binds each driver (a skip is logged, not fatal) and opens the controller over them. */
  private async openNetwork(o: NonNullable<EngineOptions['network']>): Promise<NetworkController> {
    const root = join(this.opts.dataRoot, 'network');
    const drivers = new Map<string, NetworkDriver>();
    const ipams = new Map<string, IpamDriver>();
    const bind = async <T>(d: { name: string; create(deps: { stateDir: string; logger: Logger; options?: Record<string, string> }): Promise<T | { skip: string }> }, into: Map<string, T>, kind: string): Promise<void> => {
      const logger = this.log.child({ component: 'network', driver: d.name });
      const stateDir = join(root, kind, d.name);
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      const made = await d.create({ stateDir, logger, options: o.driverOptions?.[d.name] ?? {} });
      if (isDriverSkip(made)) logger.warn({ reason: made.skip }, `${kind} driver ${d.name} skipped`);
      else into.set(d.name, made as T);
    };
    for (const d of o.ipams) await bind(d, ipams, 'ipam');
    for (const d of o.drivers) await bind(d, drivers, 'drivers');
    // Any other driver name is a v1 plugin found in the plugin directories; an unknown name fails
    // after about a second (Docker waits ~15 s for a socket that may still appear).
    const registry = new PluginRegistry({ retry: { timeoutMs: 2000 }, logger: this.log.child({ component: 'plugins' }) });
    return NetworkController.open({
      plugins: { network: (name) => registry.network(name), ipam: (name) => registry.ipam(name) },
      stateDir: root, netnsDir: join(this.opts.execRoot, 'netns'), logger: this.log.child({ component: 'network' }), drivers, ipams,
      ...(o.defaultBridge ? { defaultBridge: o.defaultBridge } : {}),
    });
  }

  // ---------------------------------------------------------------- paths

  /** The kernel calls of the native layer (mounts the engine makes on the host itself). */
  sys(): Syscalls {
    return (this.syscalls ??= realSyscalls());
  }

  socketOf(id: string): string {
    return join(this.shimDir, `${id.slice(0, 32)}.sock`);
  }
  bundleOf(id: string): string {
    return join(this.bundleRoot, id);
  }
  cgroupPathOf(c: Ctr): string {
    return c.host.CgroupParent ? `${c.host.CgroupParent.replace(/\/+$/, '')}/${c.id}` : `berth/${c.id}`;
  }

  // ---------------------------------------------------------------- lookup, events, records

  get(ref: string): Ctr {
    const named = resolveReference(ref, [...this.containers.values()].map((c) => ({ id: c.id, name: c.name, c })));
    return named.c;
  }

  private attrs(c: Ctr, extra: Record<string, string> = {}): Record<string, string> {
    return { ...(c.rec.Config.Labels ?? {}), image: c.rec.Config.Image, name: c.name, ...extra };
  }

  emit(c: Ctr, action: string, extra: Record<string, string> = {}): void {
    this.bus.publish('container', action, c.id, this.attrs(c, extra));
  }

  /** Saves the record (and the HostConfig with `withHost`); fsynced unless `durable` is false. */
  save(c: Ctr, withHost = false, durable = true): void {
    this.store.save(c.rec, withHost ? c.host : undefined, durable);
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
