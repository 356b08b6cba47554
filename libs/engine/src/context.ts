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
import type { GraphDriver } from '@berth/plugin-api';
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
  /** Seams for tests: a prepared cgroup manager / runtime. */
  cgroupManager?: CgroupManager;
}

export class EngineContext {
  readonly log: Logger;
  readonly containers = new Map<string, Ctr>();
  readonly execs = new Map<string, ExecRec>();
  readonly bus = new EventBus(1000);
  readonly store: ContainerStore;
  images!: ImageStore;
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
    this.images = await ImageStore.open({ root: join(this.opts.dataRoot, 'image', this.opts.graphDriver.name), driver: this.opts.graphDriver, logger: this.log });
  }

  // ---------------------------------------------------------------- paths

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

  save(c: Ctr, withHost = false): void {
    this.store.save(c.rec, withHost ? c.host : undefined);
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
