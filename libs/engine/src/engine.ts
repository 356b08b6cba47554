/**
 * The container engine behind berthd: containers, exec, logs, events and images, with
 * Docker's semantics and texts (specs/engine-api.md). `BerthEngine` answers the `Engine`
 * contract and delegates each operation to the module of its concept; they share one
 * `EngineContext`.
 */
import type { Readable } from 'node:stream';
import type {
  ContainerCreateBody,
  ContainerCreateResponse,
  ContainerInspect,
  ContainerSummary,
  ExecCreateBody,
  ExecInspect,
  ExecStartBody,
  Filters,
  ImageDeleteItem,
  ImageInspect,
  ImageSummary,
  InfoResponse,
  JsonMessage,
  NetworkConnectRequest,
  NetworkCreateRequest,
  NetworkCreateResponse,
  NetworkResource,
  TopResponse,
  VersionResponse,
} from '@berth/api';
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
import { EngineContext, type EngineOptions } from './context.js';
import * as ops from './image-ops.js';
import { Builder, type BuildOptions } from './builder/builder.js';
import { sweepBuildContexts } from './builder/context.js';
import * as archive from './image-archive.js';
import type { CommitBody, ContainerChange, ContainerPathStat, ImageHistoryItem, ImagesPruneResponse, SystemDfResponse } from './contract.js';
import { createContainer } from './create.js';
import { createExec, inspectExec, resizeExec, startExec } from './exec.js';
import { waitContainer } from './exit.js';
import { exportContainer, importImage, inspectImage, listImages, removeImage, tagImage } from './images.js';
import * as registry from './registry.js';
import type { RegistryAuth } from './contract.js';
import { pauseContainer, unpauseContainer } from './pause.js';
import { connectNetwork, createNetwork, disconnectNetwork, inspectNetwork, listNetworks, pruneNetworks, removeNetwork } from './network.js';
import { recover } from './recovery.js';
import { sweepCpViews } from './cp-view.js';
import { pruneContainers, removeContainer } from './remove.js';
import { renameContainer } from './rename.js';
import { startContainer } from './start.js';
import { killContainer, restartContainer, stopContainer } from './stop.js';
import { attachContainer, containerLogs, resizeContainer } from './streams.js';
import { events, info, version } from './system.js';
import { topContainer } from './top.js';
import type { ContainerKernelView } from '@berth/api';
import { containerKernelView } from './kernel-view.js';
import { containerStats } from './stats.js';
import { updateContainer } from './update.js';
import { sweepCgroups } from './resources.js';
import { startOomWatch } from './oom.js';
import { suspendHealth } from './health.js';
import type { ContainerStatsJson, ContainerUpdateBody, ContainerUpdateResponse, StatsOptions } from './contract.js';
import { inspectContainer, inspectContainerJson, listContainers, listContainersJson } from './views.js';
import type { Volume, VolumeCreateRequest } from '@berth/api';
import { runningVolumeUsers } from './volumes-mounts.js';

export type { EngineOptions } from './context.js';

export class BerthEngine implements Engine {
  private readonly ctx: EngineContext;

  constructor(opts: EngineOptions) {
    this.ctx = new EngineContext(opts);
  }

  async init(): Promise<void> {
    await this.ctx.open();
    const { skipped } = await recover(this.ctx);
    await sweepCgroups(this.ctx);
    await sweepBuildContexts(this.ctx.opts.dataRoot);
    sweepCpViews(this.ctx);
    await startOomWatch(this.ctx);
    // A container whose record could not be read keeps its network: it may still run.
    await this.ctx.network?.reconcile((id) => this.ctx.containers.get(id)?.rec.State.Running === true || skipped.has(id));
    // Volumes of running containers stay mounted; a volume with options nobody runs with is unmounted.
    this.ctx.volumes.reconcile(runningVolumeUsers(this.ctx));
  }

  // system
  version(): VersionResponse {
    return version(this.ctx);
  }
  info(): Promise<InfoResponse> {
    return info(this.ctx);
  }
  events(opts: EventsOptions, signal: AbortSignal): EventSubscription {
    return events(this.ctx, opts, signal);
  }

  // networks
  createNetwork(req: NetworkCreateRequest): Promise<NetworkCreateResponse> {
    return createNetwork(this.ctx, req);
  }
  listNetworks(filters: Filters): NetworkResource[] {
    return listNetworks(this.ctx, filters);
  }
  inspectNetwork(ref: string): NetworkResource {
    return inspectNetwork(this.ctx, ref);
  }
  removeNetwork(ref: string): Promise<void> {
    return removeNetwork(this.ctx, ref);
  }
  pruneNetworks(filters: Filters): Promise<{ NetworksDeleted: string[] }> {
    return pruneNetworks(this.ctx, filters);
  }
  connectNetwork(ref: string, req: NetworkConnectRequest): Promise<void> {
    return connectNetwork(this.ctx, ref, req);
  }
  disconnectNetwork(ref: string, container: string, force: boolean): Promise<void> {
    return disconnectNetwork(this.ctx, ref, container, force);
  }

  // containers
  createContainer(name: string | undefined, body: ContainerCreateBody): Promise<ContainerCreateResponse> {
    return createContainer(this.ctx, name, body);
  }
  listContainers(opts: { all: boolean; limit: number; size: boolean; filters: Filters }): Promise<ContainerSummary[]> {
    return listContainers(this.ctx, opts);
  }
  inspectContainer(ref: string, opts?: { size: boolean }): Promise<ContainerInspect> {
    return inspectContainer(this.ctx, ref, opts);
  }
  listContainersJson(opts: { all: boolean; limit: number; size: boolean; filters: Filters; portRuns?: boolean }): Promise<Buffer> {
    return listContainersJson(this.ctx, opts);
  }
  inspectContainerJson(ref: string, opts?: { size: boolean }): Promise<Buffer> {
    return inspectContainerJson(this.ctx, ref, opts);
  }
  startContainer(ref: string): Promise<'started' | 'not-modified'> {
    return startContainer(this.ctx, ref);
  }
  stopContainer(ref: string, opts: StopOptions): Promise<'stopped' | 'not-modified'> {
    return stopContainer(this.ctx, ref, opts);
  }
  restartContainer(ref: string, opts: StopOptions): Promise<void> {
    return restartContainer(this.ctx, ref, opts);
  }
  killContainer(ref: string, signal?: string): Promise<void> {
    return killContainer(this.ctx, ref, signal);
  }
  removeContainer(ref: string, opts: { force: boolean; volumes: boolean }): Promise<void> {
    return removeContainer(this.ctx, ref, opts);
  }

  pruneContainers(filters: Filters): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    return pruneContainers(this.ctx, filters);
  }
  waitContainer(ref: string, condition: WaitCondition): Promise<WaitHandle> {
    return waitContainer(this.ctx, ref, condition);
  }
  attachContainer(ref: string, opts: AttachOptions): Promise<StreamSession> {
    return attachContainer(this.ctx, ref, opts);
  }
  resizeContainer(ref: string, height: number, width: number): Promise<void> {
    return resizeContainer(this.ctx, ref, height, width);
  }
  renameContainer(ref: string, newName: string): Promise<void> {
    return renameContainer(this.ctx, ref, newName);
  }
  topContainer(ref: string, psArgs: string): Promise<TopResponse> {
    return topContainer(this.ctx, ref, psArgs);
  }

  containerKernel(ref: string): Promise<ContainerKernelView> {
    return containerKernelView(this.ctx, ref);
  }
  pauseContainer(ref: string): Promise<void> {
    return pauseContainer(this.ctx, ref);
  }
  unpauseContainer(ref: string): Promise<void> {
    return unpauseContainer(this.ctx, ref);
  }
  containerLogs(ref: string, opts: LogsOptions): Promise<LogsStream> {
    return containerLogs(this.ctx, ref, opts);
  }
  exportContainer(ref: string): Promise<Readable> {
    return exportContainer(this.ctx, ref);
  }
  updateContainer(ref: string, body: ContainerUpdateBody): Promise<ContainerUpdateResponse> {
    return updateContainer(this.ctx, ref, body);
  }
  containerStats(ref: string, opts: StatsOptions, signal: AbortSignal): Promise<AsyncIterable<ContainerStatsJson>> {
    return containerStats(this.ctx, ref, opts, signal);
  }

  // exec
  createExec(ref: string, body: ExecCreateBody): Promise<{ Id: string }> {
    return createExec(this.ctx, ref, body);
  }
  startExec(id: string, body: ExecStartBody): Promise<StreamSession | null> {
    return startExec(this.ctx, id, body);
  }
  resizeExec(id: string, height: number, width: number): Promise<void> {
    return resizeExec(this.ctx, id, height, width);
  }
  inspectExec(id: string): Promise<ExecInspect> {
    return inspectExec(this.ctx, id);
  }

  // images
  listImages(opts: { all: boolean; filters: Filters }): Promise<ImageSummary[]> {
    return listImages(this.ctx, opts);
  }
  inspectImage(ref: string): Promise<ImageInspect> {
    return inspectImage(this.ctx, ref);
  }
  importImage(tar: Readable, opts: ImportOptions, progress: (msg: JsonMessage) => void): Promise<string> {
    return importImage(this.ctx, tar, opts, progress);
  }
  tagImage(ref: string, repo: string, tag: string): Promise<void> {
    return tagImage(this.ctx, ref, repo, tag);
  }
  removeImage(ref: string, opts: { force: boolean; noprune: boolean }): Promise<ImageDeleteItem[]> {
    return removeImage(this.ctx, ref, opts);
  }
  pullImage(ref: string, auth: RegistryAuth, progress: (msg: JsonMessage) => void): Promise<string> {
    return registry.pullImage(this.ctx, ref, auth, progress);
  }
  pushImage(name: string, tag: string, auth: RegistryAuth, progress: (msg: JsonMessage) => void): Promise<void> {
    return registry.pushImage(this.ctx, name, tag, auth, progress);
  }
  login(auth: RegistryAuth): Promise<{ Status: string; IdentityToken: string }> {
    return registry.login(this.ctx, auth);
  }
  saveImages(names: string[]): Promise<Readable> {
    return archive.saveImages(this.ctx, names);
  }
  loadImages(tar: Readable, opts: { quiet: boolean }, progress: (msg: JsonMessage) => void): Promise<void> {
    return archive.loadImages(this.ctx, tar, opts, progress);
  }

  // container images: diff, commit, cp, history, prune, df
  containerChanges(ref: string): Promise<ContainerChange[]> {
    return ops.containerChanges(this.ctx, ref);
  }
  commitContainer(ref: string, body: CommitBody): Promise<string> {
    return ops.commitContainer(this.ctx, ref, body);
  }
  statContainerPath(ref: string, path: string): Promise<ContainerPathStat> {
    return ops.statContainerArchive(this.ctx, ref, path);
  }
  getContainerArchive(ref: string, path: string): Promise<{ stat: ContainerPathStat; tar: Readable }> {
    return ops.getContainerArchive(this.ctx, ref, path);
  }
  putContainerArchive(ref: string, path: string, tar: Readable, opts: { noOverwriteDirNonDir: boolean }): Promise<void> {
    return ops.putContainerArchive(this.ctx, ref, path, tar, opts);
  }
  imageHistory(ref: string): Promise<ImageHistoryItem[]> {
    return ops.imageHistory(this.ctx, ref);
  }
  buildImage(context: Readable, opts: BuildOptions, progress: (msg: JsonMessage) => void): Promise<string> {
    return new Builder(this, this.ctx, opts, progress).build(context);
  }
  pruneImages(filters: Filters): Promise<ImagesPruneResponse> {
    return ops.pruneImages(this.ctx, filters);
  }
  async systemDf(): Promise<SystemDfResponse> {
    const df = await ops.systemDf(this.ctx);
    return { ...df, Volumes: await this.ctx.volumes.usage() };
  }

  // volumes
  async createVolume(req: VolumeCreateRequest): Promise<Volume> {
    return (await this.ctx.volumes.create(req)).volume;
  }
  listVolumes(filters: Filters): Promise<{ Volumes: Volume[]; Warnings: string[] }> {
    return this.ctx.volumes.listAll(filters);
  }
  inspectVolume(name: string): Promise<Volume> {
    return this.ctx.volumes.inspect(name);
  }
  removeVolume(name: string, opts: { force: boolean }): Promise<void> {
    return this.ctx.volumes.remove(name, opts);
  }
  pruneVolumes(filters: Filters, apiVersion: string): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    return this.ctx.volumes.prune(filters, apiVersion);
  }

  /** Stops serving: detaches from shims (containers keep running), closes event streams. */
  async close(): Promise<void> {
    const ctx = this.ctx;
    ctx.closed = true;
    for (const c of ctx.containers.values()) {
      c.watch?.cancel();
      c.watch = null;
      if (c.restartTimer) clearTimeout(c.restartTimer);
      suspendHealth(c);
      for (const drop of [...c.pendingAttach.values()]) drop();
    }
    for (const e of ctx.execs.values()) e.watch?.cancel();
    for (const close of [...ctx.closers]) close();
    // Endpoint deletions still running in the background get a moment; the next start finishes the rest.
    if (ctx.network) {
      await Promise.race([ctx.network.settled(), new Promise((r) => setTimeout(r, 2000).unref())]);
      ctx.network.close();
    }
  }
}

export async function createEngine(options: EngineOptions): Promise<Engine> {
  const engine = new BerthEngine(options);
  await engine.init();
  return engine;
}
