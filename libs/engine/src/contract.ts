/**
 * What berthd's routes call: one method per Engine API operation, in wire terms (libs/api
 * types), with no HTTP in it. Routes parse and validate the request, call one method, and
 * write the answer; every error is a BerthError whose kind berthd maps to a status.
 *
 * References (`ref`) are what a user types: a full id, a unique id prefix, or a name with or
 * without the leading slash. Unknown references throw NotFound `No such container: <ref>`.
 */
import type { Duplex, Readable } from 'node:stream';
import type { ContainerKernelView } from '@berth/api';
import type {
  ContainerConfig,
  ContainerCreateBody,
  ContainerCreateResponse,
  ContainerInspect,
  ContainerSummary,
  EventMessage,
  ExecCreateBody,
  ExecInspect,
  ExecStartBody,
  Filters,
  ImageDeleteItem,
  ImageInspect,
  ImageSummary,
  InfoResponse,
  NetworkConnectRequest,
  NetworkCreateRequest,
  NetworkCreateResponse,
  NetworkResource,
  JsonMessage,
  TopResponse,
  VersionResponse,
  WaitResponse,
} from '@berth/api';
import type { ContainerChange, ContainerPathStat, ImageHistoryItem, ImagesPruneResponse } from '@berth/image';
import type { Volume, VolumeCreateRequest } from '@berth/api';

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

/** A registered wait: registration is synchronous with the call, the result comes later. */
export interface WaitHandle {
  result: Promise<WaitResponse>;
  /** The client went away: forget the waiter. */
  cancel(): void;
}

export interface AttachOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Stream live output (else only replay logs when `logs`). */
  stream: boolean;
  /** Replay the json-file log first. */
  logs: boolean;
  /** Docker's detach key spec, e.g. `ctrl-p,ctrl-q`; undefined means the default. */
  detachKeys?: string | undefined;
}

/**
 * A stream session for attach and exec start. `tty` tells raw vs multiplexed framing (the
 * engine writes bytes already framed: berthd only picks the Content-Type). `pipe` joins the
 * client's hijacked socket to the container and resolves when the session ends (process
 * exit, detach keys, or client close); it never rejects after it has started writing: an
 * error after the start is written in-band.
 */
export interface StreamSession {
  tty: boolean;
  pipe(client: Duplex): Promise<void>;
}

export interface LogsOptions {
  follow: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Unix seconds (fractional allowed); 0 = from the start. */
  since: number;
  /** Unix seconds; 0 = no bound. */
  until: number;
  timestamps: boolean;
  /** `--details`: the log attributes before each line (dockerd prints a space where there are none). */
  details?: boolean;
  /** Number of lines from the end, or 'all'. */
  tail: number | 'all';
}

/** Bytes to send as the logs body (framed unless tty), ending when the logs end. */
export interface LogsStream {
  tty: boolean;
  body: Readable;
}

export interface StopOptions {
  /** Seconds before SIGKILL; undefined = the container's StopTimeout or 10. */
  timeout?: number | undefined;
  /** Signal name or number; undefined = the container's StopSignal or SIGTERM. */
  signal?: string | undefined;
}

export interface ImportOptions {
  /** `repo[:tag]` to tag the image with, or empty. */
  repo: string;
  tag: string;
  message: string;
  /** Dockerfile instructions (`CMD ["sh"]`, `ENV A=b`, ...) applied to the config. */
  changes: string[];
}

export interface EventsOptions {
  since?: number | undefined;
  until?: number | undefined;
  filters: Filters;
}

/** Yields past events (since) then live ones until `until` or the signal aborts. */
export type EventSubscription = AsyncIterable<EventMessage>;

export interface Engine {
  // system
  version(): VersionResponse;
  info(): Promise<InfoResponse>;
  events(opts: EventsOptions, signal: AbortSignal): EventSubscription;

  // containers
  createContainer(name: string | undefined, body: ContainerCreateBody): Promise<ContainerCreateResponse>;
  listContainers(opts: { all: boolean; limit: number; size: boolean; filters: Filters }): Promise<ContainerSummary[]>;
  inspectContainer(ref: string, opts?: { size: boolean }): Promise<ContainerInspect>;
  /**
   * The same answers as JSON bytes (a trailing newline, as Docker writes them), for berthd to
   * send as they are: the port maps of a container with a range of thousands come from a cache
   * of their JSON (bench/network). Optional: without them berthd serialises the objects.
   * `portRuns` (Berth's own `berthPortRuns=1`, sent by `berth ps`, never by Docker's clients):
   * each item's Ports with consecutive ports as one entry with a `Count` (docs/network.md).
   */
  listContainersJson?(opts: { all: boolean; limit: number; size: boolean; filters: Filters; portRuns?: boolean }): Promise<Buffer>;
  inspectContainerJson?(ref: string, opts?: { size: boolean }): Promise<Buffer>;
  /** 'not-modified' when it already runs (HTTP 304). */
  startContainer(ref: string): Promise<'started' | 'not-modified'>;
  /** 'not-modified' when it is not running (HTTP 304). */
  stopContainer(ref: string, opts: StopOptions): Promise<'stopped' | 'not-modified'>;
  restartContainer(ref: string, opts: StopOptions): Promise<void>;
  killContainer(ref: string, signal?: string): Promise<void>;
  removeContainer(ref: string, opts: { force: boolean; volumes: boolean }): Promise<void>;
  /** Removes every container that is not running; filters `until`, `label`, `label!`. */
  pruneContainers(filters: Filters): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }>;
  waitContainer(ref: string, condition: WaitCondition): Promise<WaitHandle>;
  attachContainer(ref: string, opts: AttachOptions): Promise<StreamSession>;
  resizeContainer(ref: string, height: number, width: number): Promise<void>;
  renameContainer(ref: string, newName: string): Promise<void>;
  topContainer(ref: string, psArgs: string): Promise<TopResponse>;
  /** What the container's run made in the kernel, read back from it (kernel-view.ts; a Berth extension). */
  containerKernel(ref: string): Promise<ContainerKernelView>;
  pauseContainer(ref: string): Promise<void>;
  unpauseContainer(ref: string): Promise<void>;
  containerLogs(ref: string, opts: LogsOptions): Promise<LogsStream>;
  exportContainer(ref: string): Promise<Readable>;
  /** `POST /containers/{id}/update`: merged into HostConfig, written live into a running container's cgroup. */
  updateContainer(ref: string, body: ContainerUpdateBody): Promise<ContainerUpdateResponse>;
  /** `GET /containers/{id}/stats`: rejects (404) before the first object; the iterable ends when `signal` aborts (stream) or after one object. */
  containerStats(ref: string, opts: StatsOptions, signal: AbortSignal): Promise<AsyncIterable<ContainerStatsJson>>;

  // exec
  createExec(ref: string, body: ExecCreateBody): Promise<{ Id: string }>;
  /** null when detached (the process was started); a session otherwise. */
  startExec(id: string, body: ExecStartBody): Promise<StreamSession | null>;
  resizeExec(id: string, height: number, width: number): Promise<void>;
  inspectExec(id: string): Promise<ExecInspect>;

  // images
  listImages(opts: { all: boolean; filters: Filters }): Promise<ImageSummary[]>;
  inspectImage(ref: string): Promise<ImageInspect>;
  /** The progress stream of an import; resolves with the image id once done. */
  importImage(tar: Readable, opts: ImportOptions, progress: (msg: JsonMessage) => void): Promise<string>;
  tagImage(ref: string, repo: string, tag: string): Promise<void>;
  removeImage(ref: string, opts: { force: boolean; noprune: boolean }): Promise<ImageDeleteItem[]>;
  /** `POST /images/create?fromImage=`: pulls with Docker's progress messages; resolves with the image id. */
  pullImage(ref: string, auth: RegistryAuth, progress: (msg: JsonMessage) => void): Promise<string>;
  /** `POST /images/{name}/push?tag=`: pushes one tag (all of the repository's when empty). */
  pushImage(name: string, tag: string, auth: RegistryAuth, progress: (msg: JsonMessage) => void): Promise<void>;
  /** `POST /auth`: checks the credentials against the registry (Docker's login); answers `{Status: 'Login Succeeded'}`. */
  login(auth: RegistryAuth): Promise<{ Status: string; IdentityToken: string }>;
  /** `GET /images/get?names=`: every name resolved first (404 before any byte), then the docker-archive tar. */
  saveImages(names: string[]): Promise<Readable>;
  /** `POST /images/load`: docker-archive or OCI archive; `{stream: 'Loaded image: ...\n'}` messages as images land. */
  loadImages(tar: Readable, opts: { quiet: boolean }, progress: (msg: JsonMessage) => void): Promise<void>;

  /**
   * `POST /build`: the classic builder on a context tar (plain or gzip); progress gets dockerd's
   * stream messages. Rejects before the first message for what Docker answers with a 400 (bad
   * tag, missing Dockerfile, parse error); resolves with the image id. Optional: without it
   * berthd answers 501.
   */
  buildImage?(context: Readable, opts: BuildOptions, progress: (msg: JsonMessage) => void): Promise<string>;

  // container images: diff, commit, cp, history, prune, df (image-ops.ts)
  containerChanges(ref: string): Promise<ContainerChange[]>;
  /** Answers the new image's id. */
  commitContainer(ref: string, body: CommitBody): Promise<string>;
  statContainerPath(ref: string, path: string): Promise<ContainerPathStat>;
  getContainerArchive(ref: string, path: string): Promise<{ stat: ContainerPathStat; tar: Readable }>;
  putContainerArchive(ref: string, path: string, tar: Readable, opts: { noOverwriteDirNonDir: boolean }): Promise<void>;
  imageHistory(ref: string): Promise<ImageHistoryItem[]>;
  pruneImages(filters: Filters): Promise<ImagesPruneResponse>;
  systemDf(): Promise<SystemDfResponse>;

  // networks
  createNetwork(req: NetworkCreateRequest): Promise<NetworkCreateResponse>;
  listNetworks(filters: Filters): NetworkResource[];
  inspectNetwork(ref: string): NetworkResource;
  removeNetwork(ref: string): Promise<void>;
  pruneNetworks(filters: Filters): Promise<{ NetworksDeleted: string[] }>;
  connectNetwork(ref: string, req: NetworkConnectRequest): Promise<void>;
  disconnectNetwork(ref: string, container: string, force: boolean): Promise<void>;

  // volumes (volumes.ts): names by Docker's rule, the `local` driver
  /** `POST /volumes/create`: an existing volume of that name and driver is answered as it is; no Name = anonymous. */
  createVolume(req: VolumeCreateRequest): Promise<Volume>;
  /** `GET /volumes`: filters `dangling`, `driver`, `label`, `name`. */
  listVolumes(filters: Filters): Promise<{ Volumes: Volume[]; Warnings: string[] }>;
  inspectVolume(name: string): Promise<Volume>;
  /** 409 while a container references it (force does not change that); `force`: a missing volume is no error (and a failing plugin's volume is purged). */
  removeVolume(name: string, opts: { force: boolean }): Promise<void>;
  /** `POST /volumes/prune`: unused volumes; from API 1.42 only anonymous ones unless the filter `all=true`. */
  pruneVolumes(filters: Filters, apiVersion: string): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }>;

  /** Stops serving: detaches from shims (containers keep running), closes event streams. */
  close(): Promise<void>;
}

export type { ContainerChange, ContainerPathStat, ImageHistoryItem, ImagesPruneResponse } from '@berth/image';
export type { AuthConfig as RegistryAuth } from '@berth/registry';
import type { BuildOptions } from './builder/builder.js';
export type { BuildOptions } from './builder/builder.js';
import type { AuthConfig as RegistryAuth } from '@berth/registry';

/** `POST /commit`: the query's fields and the body's config overrides. */
export interface CommitBody {
  repo: string;
  tag: string;
  comment: string;
  author: string;
  /** Freeze the container while its layer is read (default true). */
  pause: boolean;
  /** Dockerfile instructions applied to the config (`CMD ["sh"]`, `ENV A=b`). */
  changes: string[];
  /** Config overrides (the request body); unset fields come from the container. */
  config?: Partial<ContainerConfig> | null;
}

/** `GET /system/df`. */
export interface SystemDfResponse {
  LayersSize: number;
  Images: ImageSummary[];
  Containers: ContainerSummary[];
  Volumes: unknown[];
  BuildCache: unknown[];
}

/** `POST /containers/{id}/update` body: Docker's Resources plus RestartPolicy; zero/empty fields leave the value unchanged. */
export interface ContainerUpdateBody {
  CpuShares?: number;
  Memory?: number;
  NanoCpus?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpuRealtimePeriod?: number;
  CpuRealtimeRuntime?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  BlkioWeight?: number;
  MemoryReservation?: number;
  MemorySwap?: number;
  MemorySwappiness?: number | null;
  KernelMemory?: number;
  KernelMemoryTCP?: number;
  OomKillDisable?: boolean | null;
  /** Present = set; 0 or -1 = unlimited. */
  PidsLimit?: number | null;
  RestartPolicy?: { Name: string; MaximumRetryCount?: number };
  [key: string]: unknown;
}

export interface ContainerUpdateResponse {
  Warnings: string[];
}

export interface StatsOptions {
  /** One object a second until the client goes (Docker's default), else one object. */
  stream: boolean;
  /** With stream=false: one sample, precpu_stats left empty (API 1.41+). */
  oneShot: boolean;
}

interface BlkioStatEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

/** Docker's StatsJSON (Linux fields). */
export interface ContainerStatsJson {
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: {
    io_service_bytes_recursive: BlkioStatEntry[] | null;
    io_serviced_recursive: BlkioStatEntry[] | null;
    io_queue_recursive: BlkioStatEntry[] | null;
    io_service_time_recursive: BlkioStatEntry[] | null;
    io_wait_time_recursive: BlkioStatEntry[] | null;
    io_merged_recursive: BlkioStatEntry[] | null;
    io_time_recursive: BlkioStatEntry[] | null;
    sectors_recursive: BlkioStatEntry[] | null;
  };
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: ContainerCpuStats;
  precpu_stats: ContainerCpuStats;
  memory_stats: { usage?: number; max_usage?: number; stats?: Record<string, number>; failcnt?: number; limit?: number };
  name: string;
  id: string;
  networks?: Record<string, { rx_bytes: number; rx_packets: number; rx_errors: number; rx_dropped: number; tx_bytes: number; tx_packets: number; tx_errors: number; tx_dropped: number }>;
}

export interface ContainerCpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}
