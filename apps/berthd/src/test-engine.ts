/**
 * A small in-memory Engine for berthd's route tests (not exported from the package). It keeps
 * just enough state to answer like the real engine and records what the routes asked.
 */
import { PassThrough, Readable, type Duplex } from 'node:stream';
import { BerthError } from '@berth/errors';
import { API_VERSION, MIN_API_VERSION, StreamType, frame } from '@berth/api/wire';
import type {
  ContainerCreateBody,
  ContainerCreateResponse,
  ContainerInspect,
  ContainerSummary,
  EventMessage,
  ExecCreateBody,
  ExecInspect,
  ExecStartBody,
  ImageDeleteItem,
  ImageInspect,
  ImageSummary,
  InfoResponse,
  JsonMessage,
  TopResponse,
  VersionResponse,
  WaitResponse,
  NetworkConnectRequest,
  NetworkCreateRequest,
  NetworkCreateResponse,
  NetworkResource,
} from '@berth/api/wire';
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
} from '@berth/engine';
import type { CommitBody, ContainerChange, ContainerPathStat, ImageHistoryItem, ImagesPruneResponse, SystemDfResponse } from '@berth/engine';
import type { RegistryAuth } from '@berth/engine';
import type { Volume, VolumeCreateRequest } from '@berth/engine';
import type { ContainerKernelView } from '@berth/api';
import type { ContainerStatsJson, ContainerUpdateBody, ContainerUpdateResponse, StatsOptions } from '@berth/engine';

interface FakeContainer {
  id: string;
  name: string;
  image: string;
  tty: boolean;
  running: boolean;
  paused: boolean;
}

export interface Call {
  method: string;
  args: unknown[];
}

const notFound = (ref: string): BerthError => new BerthError('BERTH_CONTAINER_NOT_FOUND', `No such container: ${ref}`);

/** A session that writes `hello` on stdout, echoes stdin on stdout until the client half-closes. */
export function echoSession(tty: boolean, log: Call[]): StreamSession {
  return {
    tty,
    pipe(client: Duplex): Promise<void> {
      log.push({ method: 'session.pipe', args: [tty] });
      const out = (b: Buffer | string): boolean => client.write(tty ? Buffer.from(b) : frame(StreamType.Stdout, b));
      out('hello\n');
      return new Promise((resolve) => {
        client.on('data', (d: Buffer) => out(d));
        client.on('end', () => {
          if (!tty) client.write(frame(StreamType.Stderr, 'bye\n'));
          resolve();
        });
        client.on('close', () => resolve());
        client.resume();
      });
    },
  };
}

export class TestEngine implements Engine {
  readonly calls: Call[] = [];
  readonly containers = new Map<string, FakeContainer>();
  readonly images = new Map<string, string>([['busybox:latest', 'sha256:' + 'b'.repeat(64)]]);
  /** Throw this from the next call of the named method. */
  readonly failNext = new Map<string, unknown>();
  readonly waits: { id: string; condition: WaitCondition; resolve: (r: WaitResponse) => void; cancelled: boolean }[] = [];
  readonly pastEvents: EventMessage[] = [];
  private readonly live = new Set<(e: EventMessage) => void>();
  private seq = 0;
  closed = false;

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const err = this.failNext.get(method);
    if (err !== undefined) {
      this.failNext.delete(method);
      throw err;
    }
  }

  private find(ref: string): FakeContainer {
    const r = ref.replace(/^\//, '');
    for (const c of this.containers.values()) if (c.id === r || c.name === r || (r.length >= 3 && c.id.startsWith(r))) return c;
    throw notFound(ref);
  }

  /** Adds a container directly (tests). */
  add(name: string, opts: { tty?: boolean; running?: boolean } = {}): FakeContainer {
    const id = (++this.seq).toString(16).padStart(2, '0').repeat(32);
    const c = { id, name, image: 'busybox', tty: opts.tty ?? false, running: opts.running ?? false, paused: false };
    this.containers.set(id, c);
    return c;
  }

  emit(e: EventMessage): void {
    for (const l of this.live) l(e);
  }

  get listeners(): number {
    return this.live.size;
  }

  version(): VersionResponse {
    return {
      Platform: { Name: 'Berth' },
      Components: [
        {
          Name: 'Engine',
          Version: '0.1.0-test',
          Details: { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, GitCommit: 'test', GoVersion: 'node20', Os: 'linux', Arch: 'amd64', BuildTime: '', KernelVersion: '6.0', Experimental: 'false' },
        },
      ],
      Version: '0.1.0-test',
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: 'test',
      GoVersion: 'node20',
      Os: 'linux',
      Arch: 'amd64',
      KernelVersion: '6.0',
      BuildTime: '',
    };
  }

  async info(): Promise<InfoResponse> {
    this.record('info');
    return { ID: 'test', Containers: this.containers.size, ContainersRunning: 0, ContainersPaused: 0, ContainersStopped: 0, Images: this.images.size, Driver: 'vfs', DriverStatus: [], ServerVersion: '0.1.0-test', Name: 'test' };
  }

  events(opts: EventsOptions, signal: AbortSignal): EventSubscription {
    this.record('events', opts);
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        for (const e of self.pastEvents) if (opts.since === undefined || e.time >= opts.since) yield e;
        const queue: EventMessage[] = [];
        let wake: (() => void) | undefined;
        const listener = (e: EventMessage): void => {
          queue.push(e);
          wake?.();
        };
        self.live.add(listener);
        const onAbort = (): void => wake?.();
        signal.addEventListener('abort', onAbort);
        try {
          while (!signal.aborted && !self.closed) {
            if (opts.until !== undefined && Date.now() / 1000 >= opts.until) return;
            if (queue.length) {
              yield queue.shift()!;
              continue;
            }
            const wait = opts.until === undefined ? undefined : Math.max(0, opts.until * 1000 - Date.now());
            await new Promise<void>((r) => {
              wake = r;
              if (wait !== undefined) setTimeout(r, wait);
            });
            wake = undefined;
          }
        } finally {
          self.live.delete(listener);
          signal.removeEventListener('abort', onAbort);
        }
      },
    };
  }

  async createContainer(name: string | undefined, body: ContainerCreateBody): Promise<ContainerCreateResponse> {
    this.record('createContainer', name, body);
    const image = body.Image ?? '';
    if (![...this.images.keys()].some((k) => k === image || k.split(':')[0] === image)) throw new BerthError('BERTH_IMAGE_NOT_FOUND', `No such image: ${image}`);
    const c = this.add(name ?? `c${this.seq + 1}`, { tty: body.Tty ?? false });
    return { Id: c.id, Warnings: [] };
  }

  async listContainers(opts: { all: boolean; limit: number; size: boolean }): Promise<ContainerSummary[]> {
    this.record('listContainers', opts);
    return [...this.containers.values()]
      .filter((c) => opts.all || c.running)
      .map((c) => ({
        Id: c.id,
        Names: ['/' + c.name],
        Image: c.image,
        ImageID: 'sha256:' + 'b'.repeat(64),
        Command: 'sh',
        Created: 1700000000,
        Ports: [],
        Labels: {},
        State: c.running ? 'running' : 'created',
        Status: c.running ? 'Up 1 second' : 'Created',
        HostConfig: { NetworkMode: 'bridge' },
        NetworkSettings: { Networks: {} },
        Mounts: [],
      }));
  }

  async inspectContainer(ref: string, opts?: { size: boolean }): Promise<ContainerInspect> {
    this.record('inspectContainer', ref, opts);
    const c = this.find(ref);
    return { Id: c.id, Name: '/' + c.name, State: { Status: c.running ? 'running' : 'created', Running: c.running }, Config: { Tty: c.tty } } as unknown as ContainerInspect;
  }

  async startContainer(ref: string): Promise<'started' | 'not-modified'> {
    this.record('startContainer', ref);
    const c = this.find(ref);
    if (c.running) return 'not-modified';
    c.running = true;
    return 'started';
  }

  async stopContainer(ref: string, opts: StopOptions): Promise<'stopped' | 'not-modified'> {
    this.record('stopContainer', ref, opts);
    const c = this.find(ref);
    if (!c.running) return 'not-modified';
    c.running = false;
    return 'stopped';
  }

  async restartContainer(ref: string, opts: StopOptions): Promise<void> {
    this.record('restartContainer', ref, opts);
    this.find(ref).running = true;
  }

  async killContainer(ref: string, signal?: string): Promise<void> {
    this.record('killContainer', ref, signal);
    const c = this.find(ref);
    if (!c.running) throw new BerthError('BERTH_CONTAINER_STATE', `cannot kill container: ${c.name}: container ${c.id} is not running`);
    c.running = false;
  }

  async removeContainer(ref: string, opts: { force: boolean; volumes: boolean }): Promise<void> {
    this.record('removeContainer', ref, opts);
    const c = this.find(ref);
    if (c.running && !opts.force)
      throw new BerthError('BERTH_CONTAINER_STATE', `cannot remove container "/${c.name}": container is running: stop the container before removing or force remove`);
    this.containers.delete(c.id);
  }

  async pruneContainers(filters: Map<string, Set<string>>): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    this.record('pruneContainers', Object.fromEntries([...filters].map(([k, v]) => [k, [...v]])));
    const gone = [...this.containers.values()].filter((c) => !c.running).map((c) => c.id);
    for (const id of gone) this.containers.delete(id);
    return { ContainersDeleted: gone, SpaceReclaimed: 0 };
  }

  async waitContainer(ref: string, condition: WaitCondition): Promise<WaitHandle> {
    this.record('waitContainer', ref, condition);
    const c = this.find(ref);
    let resolve!: (r: WaitResponse) => void;
    const result = new Promise<WaitResponse>((r) => (resolve = r));
    const w = { id: c.id, condition, resolve, cancelled: false };
    this.waits.push(w);
    return { result, cancel: () => void (w.cancelled = true) };
  }

  async attachContainer(ref: string, opts: AttachOptions): Promise<StreamSession> {
    this.record('attachContainer', ref, opts);
    return echoSession(this.find(ref).tty, this.calls);
  }

  async resizeContainer(ref: string, height: number, width: number): Promise<void> {
    this.record('resizeContainer', ref, height, width);
    this.find(ref);
  }

  async renameContainer(ref: string, newName: string): Promise<void> {
    this.record('renameContainer', ref, newName);
    this.find(ref).name = newName.replace(/^\//, '');
  }

  async topContainer(ref: string, psArgs: string): Promise<TopResponse> {
    this.record('topContainer', ref, psArgs);
    this.find(ref);
    return { Titles: ['PID', 'CMD'], Processes: [['1', 'sh']] };
  }

  async containerKernel(ref: string): Promise<ContainerKernelView> {
    this.record('containerKernel', ref);
    const c = this.find(ref);
    return {
      Id: c.id, Name: `/${c.name}`, Pid: 4242, Namespaces: [{ Type: 'net', Inode: 4026532001, SharedWith: '' }], Cgroups: [], Mounts: [], Network: null,
      Process: { Uid: '0\t0\t0\t0', Gid: '0\t0\t0\t0', Groups: '', NoNewPrivs: false, Seccomp: 'filter', SeccompFilters: 1, CapEff: ['CAP_CHOWN'], CapBnd: ['CAP_CHOWN'], Count: 1 },
    };
  }

  async pauseContainer(ref: string): Promise<void> {
    this.record('pauseContainer', ref);
    this.find(ref).paused = true;
  }

  async unpauseContainer(ref: string): Promise<void> {
    this.record('unpauseContainer', ref);
    this.find(ref).paused = false;
  }

  async containerLogs(ref: string, opts: LogsOptions): Promise<LogsStream> {
    this.record('containerLogs', ref, opts);
    const c = this.find(ref);
    if (opts.follow) {
      const body = new PassThrough();
      body.write(c.tty ? 'line1\n' : frame(StreamType.Stdout, 'line1\n'));
      return { tty: c.tty, body };
    }
    const chunks = c.tty ? [Buffer.from('line1\nline2\n')] : [frame(StreamType.Stdout, 'line1\n'), frame(StreamType.Stderr, 'line2\n')];
    return { tty: c.tty, body: Readable.from(chunks) };
  }

  async exportContainer(ref: string): Promise<Readable> {
    this.record('exportContainer', ref);
    this.find(ref);
    return Readable.from([Buffer.from('tar-bytes')]);
  }

  async updateContainer(ref: string, body: ContainerUpdateBody): Promise<ContainerUpdateResponse> {
    this.record('updateContainer', ref, body);
    this.find(ref);
    return { Warnings: [] };
  }

  async containerStats(ref: string, opts: StatsOptions, signal: AbortSignal): Promise<AsyncIterable<ContainerStatsJson>> {
    this.record('containerStats', ref, opts);
    const c = this.find(ref);
    const one = (n: number): ContainerStatsJson => ({
      read: `2026-01-01T00:00:0${n}.000000000Z`, preread: '0001-01-01T00:00:00Z', pids_stats: { current: 1 }, num_procs: 0, storage_stats: {},
      blkio_stats: { io_service_bytes_recursive: null, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null },
      cpu_stats: { cpu_usage: { total_usage: n, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
      precpu_stats: { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
      memory_stats: {}, name: `/${c.name}`, id: c.id,
    });
    async function* run(): AsyncGenerator<ContainerStatsJson> {
      for (let n = 1; n <= (opts.stream ? 3 : 1) && !signal.aborted; n++) yield one(n);
    }
    return run();
  }

  private execs = new Map<string, { container: string; tty: boolean }>();

  async createExec(ref: string, body: ExecCreateBody): Promise<{ Id: string }> {
    this.record('createExec', ref, body);
    const c = this.find(ref);
    if (!c.running) throw new BerthError('BERTH_CONTAINER_STATE', `container ${c.id} is not running`);
    const id = 'e'.repeat(63) + String(this.execs.size);
    this.execs.set(id, { container: c.id, tty: body.Tty ?? false });
    return { Id: id };
  }

  async startExec(id: string, body: ExecStartBody): Promise<StreamSession | null> {
    this.record('startExec', id, body);
    const e = this.execs.get(id);
    if (!e) throw new BerthError('BERTH_CONTAINER_NOT_FOUND', `No such exec instance: ${id}`);
    return body.Detach ? null : echoSession(e.tty, this.calls);
  }

  async resizeExec(id: string, height: number, width: number): Promise<void> {
    this.record('resizeExec', id, height, width);
    if (!this.execs.has(id)) throw new BerthError('BERTH_CONTAINER_NOT_FOUND', `No such exec instance: ${id}`);
  }

  async inspectExec(id: string): Promise<ExecInspect> {
    this.record('inspectExec', id);
    const e = this.execs.get(id);
    if (!e) throw new BerthError('BERTH_CONTAINER_NOT_FOUND', `No such exec instance: ${id}`);
    return { ID: id, Running: false, ExitCode: 0, ProcessConfig: { tty: e.tty, entrypoint: 'sh', arguments: [] }, OpenStdin: false, OpenStderr: true, OpenStdout: true, CanRemove: false, ContainerID: e.container, DetachKeys: null, Pid: 0 };
  }

  async listImages(opts: { all: boolean }): Promise<ImageSummary[]> {
    this.record('listImages', opts);
    return [...this.images].map(([ref, id]) => ({ Id: id, ParentId: '', RepoTags: [ref], RepoDigests: [], Created: 1700000000, Size: 1, SharedSize: -1, Labels: null, Containers: -1 }));
  }

  async inspectImage(ref: string): Promise<ImageInspect> {
    this.record('inspectImage', ref);
    const id = this.images.get(ref) ?? this.images.get(`${ref}:latest`);
    if (!id) throw new BerthError('BERTH_IMAGE_NOT_FOUND', `No such image: ${ref}`);
    return { Id: id, RepoTags: [ref], Size: 1 } as unknown as ImageInspect;
  }

  async importImage(tar: Readable, opts: ImportOptions, progress: (msg: JsonMessage) => void): Promise<string> {
    this.record('importImage', opts);
    const chunks: Buffer[] = [];
    for await (const c of tar) chunks.push(Buffer.from(c as Buffer));
    const body = Buffer.concat(chunks).toString();
    if (body === 'bad-early') throw new BerthError('BERTH_ARCHIVE_INVALID', 'archive/tar: invalid tar header');
    progress({ status: 'Importing', progressDetail: { current: body.length } });
    if (body === 'bad-late') throw new BerthError('BERTH_ARCHIVE_INVALID', 'unexpected EOF');
    const id = 'sha256:' + 'c'.repeat(64);
    if (opts.repo) this.images.set(opts.tag ? `${opts.repo}:${opts.tag}` : opts.repo, id);
    return id;
  }

  async pullImage(ref: string, auth: RegistryAuth, progress: (msg: JsonMessage) => void): Promise<string> {
    this.record('pullImage', ref, auth);
    const name = ref.replace(/^docker\.io\/library\//, '').replace(/[:@].*$/, '');
    if (name.startsWith('nosuch'))
      throw new BerthError('BERTH_REGISTRY_NOT_FOUND', `pull access denied for ${name}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`);
    progress({ status: 'Pulling from library/' + name, id: 'latest' });
    progress({ status: 'Pulling fs layer', progressDetail: {}, id: 'aaaaaaaaaaaa' });
    if (name === 'late-fail') throw new BerthError('BERTH_REGISTRY_PROTOCOL', 'filesystem layer verification failed for digest sha256:' + 'a'.repeat(64));
    progress({ status: 'Pull complete', progressDetail: {}, id: 'aaaaaaaaaaaa' });
    const id = 'sha256:' + 'e'.repeat(64);
    this.images.set(ref.includes(':') ? ref : `${ref}:latest`, id);
    return id;
  }

  async pushImage(name: string, tag: string, auth: RegistryAuth, progress: (msg: JsonMessage) => void): Promise<void> {
    this.record('pushImage', name, tag, auth);
    if (!this.images.has(`${name}:${tag || 'latest'}`)) throw new BerthError('BERTH_IMAGE_NOT_FOUND', `An image does not exist locally with the tag: ${name}`);
    progress({ status: `The push refers to repository [${name}]` });
    progress({ status: `${tag}: digest: sha256:${'f'.repeat(64)} size: 527` });
  }

  async login(auth: RegistryAuth): Promise<{ Status: string; IdentityToken: string }> {
    this.record('login', auth);
    if (auth.password !== 'good') throw new BerthError('BERTH_REGISTRY_UNAUTHORIZED', `login attempt to http://${auth.serveraddress ?? ''}/v2/ failed with status: 401 Unauthorized`);
    return { Status: 'Login Succeeded', IdentityToken: '' };
  }

  async saveImages(names: string[]): Promise<Readable> {
    this.record('saveImages', names);
    for (const n of names) await this.inspectImage(n);
    return Readable.from([Buffer.from(`tar of ${names.join(',')}`)]);
  }

  async loadImages(tar: Readable, opts: { quiet: boolean }, progress: (msg: JsonMessage) => void): Promise<void> {
    this.record('loadImages', opts);
    const chunks: Buffer[] = [];
    for await (const c of tar) chunks.push(Buffer.from(c as Buffer));
    const body = Buffer.concat(chunks).toString();
    if (body === 'bad-early') throw new BerthError('BERTH_ARCHIVE_INVALID', 'invalid archive: no manifest.json (docker-archive) or index.json (OCI layout) found');
    if (!opts.quiet) progress({ status: 'Loading layer', progressDetail: {}, id: 'aaaaaaaaaaaa' });
    if (body === 'bad-late') throw new BerthError('BERTH_ARCHIVE_INVALID', 'layer 1 (sha256:aa): content digest sha256:bb does not match');
    this.images.set('loaded:latest', 'sha256:' + 'd'.repeat(64));
    progress({ stream: 'Loaded image: loaded:latest\n' });
  }

  async tagImage(ref: string, repo: string, tag: string): Promise<void> {
    this.record('tagImage', ref, repo, tag);
    const img = await this.inspectImage(ref);
    this.images.set(`${repo}:${tag || 'latest'}`, img.Id);
  }

  async removeImage(ref: string, opts: { force: boolean; noprune: boolean }): Promise<ImageDeleteItem[]> {
    this.record('removeImage', ref, opts);
    const img = await this.inspectImage(ref);
    this.images.delete(ref);
    return [{ Untagged: ref }, { Deleted: img.Id }];
  }

  // container images (canned answers; route tests check the wire shapes)
  async containerChanges(ref: string): Promise<ContainerChange[]> {
    this.record('containerChanges', ref);
    return [{ Path: '/tmp', Kind: 0 }, { Path: '/tmp/x', Kind: 1 }];
  }
  async commitContainer(ref: string, body: CommitBody): Promise<string> {
    this.record('commitContainer', ref, body);
    return 'sha256:' + 'd'.repeat(64);
  }
  async statContainerPath(ref: string, path: string): Promise<ContainerPathStat> {
    this.record('statContainerPath', ref, path);
    return { name: 'hostname', size: 5, mode: 0o644, mtime: '2026-01-01T00:00:00Z', linkTarget: '' };
  }
  async getContainerArchive(ref: string, path: string): Promise<{ stat: ContainerPathStat; tar: Readable }> {
    this.record('getContainerArchive', ref, path);
    return { stat: await this.statContainerPath(ref, path), tar: Readable.from([Buffer.alloc(1024)]) };
  }
  async putContainerArchive(ref: string, path: string, tar: Readable, opts: { noOverwriteDirNonDir: boolean }): Promise<void> {
    // Refused before the body is read, as the engine refuses a read-only destination.
    if (path === '/read-only') throw new BerthError('BERTH_INVALID_ARGUMENT', 'container rootfs is marked read-only');
    let n = 0;
    for await (const c of tar) n += (c as Buffer).length;
    this.record('putContainerArchive', ref, path, n, opts);
  }
  async imageHistory(ref: string): Promise<ImageHistoryItem[]> {
    this.record('imageHistory', ref);
    return [{ Id: 'sha256:' + 'd'.repeat(64), Created: 0, CreatedBy: 'sh', Tags: [ref], Size: 0, Comment: '' }];
  }
  async pruneImages(filters: Map<string, Set<string>>): Promise<ImagesPruneResponse> {
    this.record('pruneImages', Object.fromEntries([...filters].map(([k, v]) => [k, [...v]])));
    return { ImagesDeleted: null, SpaceReclaimed: 0 };
  }
  async systemDf(): Promise<SystemDfResponse> {
    return { LayersSize: 0, Images: [], Containers: [], Volumes: [], BuildCache: [] };
  }

  // networks: an in-memory list, enough for the routes' tests
  readonly networks = new Map<string, NetworkResource>();
  async createNetwork(req: NetworkCreateRequest): Promise<NetworkCreateResponse> {
    this.record('createNetwork', req);
    if ([...this.networks.values()].some((n) => n.Name === req.Name)) throw new BerthError('BERTH_NETWORK_EXISTS', `network with name ${req.Name} already exists`);
    const Id = (++this.seq).toString(16).padStart(64, 'a');
    this.networks.set(Id, {
      Name: req.Name, Id, Created: '2026-01-01T00:00:00Z', Scope: 'local', Driver: req.Driver ?? 'bridge', EnableIPv6: req.EnableIPv6 === true,
      IPAM: { Driver: 'default', Options: null, Config: req.IPAM?.Config ?? [] }, Internal: req.Internal === true, Attachable: false, Ingress: false,
      ConfigFrom: { Network: '' }, ConfigOnly: false, Containers: {}, Options: req.Options ?? {}, Labels: req.Labels ?? {},
    });
    return { Id, Warning: '' };
  }
  listNetworks(filters: Map<string, Set<string>>): NetworkResource[] {
    this.record('listNetworks', Object.fromEntries([...filters].map(([k, v]) => [k, [...v]])));
    return [...this.networks.values()];
  }
  private network(ref: string): NetworkResource {
    const n = this.networks.get(ref) ?? [...this.networks.values()].find((x) => x.Name === ref || x.Id.startsWith(ref));
    if (!n) throw new BerthError('BERTH_NETWORK_NOT_FOUND', `network ${ref} not found`);
    return n;
  }
  inspectNetwork(ref: string): NetworkResource {
    this.record('inspectNetwork', ref);
    return this.network(ref);
  }
  async removeNetwork(ref: string): Promise<void> {
    this.record('removeNetwork', ref);
    this.networks.delete(this.network(ref).Id);
  }
  async pruneNetworks(filters: Map<string, Set<string>>): Promise<{ NetworksDeleted: string[] }> {
    this.record('pruneNetworks', Object.fromEntries([...filters].map(([k, v]) => [k, [...v]])));
    return { NetworksDeleted: [] };
  }
  async connectNetwork(ref: string, req: NetworkConnectRequest): Promise<void> {
    this.record('connectNetwork', ref, req);
    this.network(ref);
  }
  async disconnectNetwork(ref: string, container: string, force: boolean): Promise<void> {
    this.record('disconnectNetwork', ref, container, force);
    this.network(ref);
  }

  // volumes: a map with Docker's answers for the route tests (the store itself is tested in @berth/engine)
  readonly volumes = new Map<string, Volume>();
  async createVolume(req: VolumeCreateRequest): Promise<Volume> {
    this.record('createVolume', req);
    const name = req.Name || 'a'.repeat(64);
    const v: Volume = {
      CreatedAt: '2026-01-01T00:00:00Z', Driver: req.Driver || 'local', Labels: req.Labels ?? null, Mountpoint: `/var/lib/berth/volumes/${name}/_data`, Name: name,
      Options: req.DriverOpts ?? null, Scope: 'local',
    };
    if (!this.volumes.has(name)) this.volumes.set(name, v);
    return this.volumes.get(name)!;
  }
  async listVolumes(filters: Map<string, Set<string>>): Promise<{ Volumes: Volume[]; Warnings: string[] }> {
    this.record('listVolumes', Object.fromEntries([...filters].map(([k, v]) => [k, [...v]])));
    return { Volumes: [...this.volumes.values()], Warnings: [] };
  }
  async inspectVolume(name: string): Promise<Volume> {
    this.record('inspectVolume', name);
    const v = this.volumes.get(name);
    if (!v) throw new BerthError('BERTH_VOLUME_NOT_FOUND', `get ${name}: no such volume`);
    return v;
  }
  async removeVolume(name: string, opts: { force: boolean }): Promise<void> {
    this.record('removeVolume', name, opts);
    if (!this.volumes.delete(name) && !opts.force) throw new BerthError('BERTH_VOLUME_NOT_FOUND', `get ${name}: no such volume`);
  }
  async pruneVolumes(filters: Map<string, Set<string>>, apiVersion: string): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    this.record('pruneVolumes', Object.fromEntries([...filters].map(([k, v]) => [k, [...v]])), apiVersion);
    return { VolumesDeleted: [], SpaceReclaimed: 0 };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const l of this.live) l({ Type: 'daemon', Action: 'shutdown', Actor: { ID: '', Attributes: {} }, scope: 'local', time: 0, timeNano: 0 });
  }
}
