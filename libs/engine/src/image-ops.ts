/**
 * Container-image operations: diff, commit, cp (archive stat/get/put), history, image prune and
 * system df. Each resolves the container or image and hands the work to the image store.
 */
import type { Readable } from 'node:stream';
import type { ContainerConfig, ContainerSummary, Filters, ImageRuntimeConfig, ImageSummary } from '@berth/api';
import { BerthError } from '@berth/errors';
import {
  applyChanges,
  archiveContainerPath,
  extractToContainer as extractInto,
  statContainerPath,
  type ContainerChange,
  type ContainerPathStat,
  type ImageHistoryItem,
  type ImagesPruneResponse,
} from '@berth/image';
import type { Ctr } from './container.js';
import { checkWritable, openCpView, type CpView } from './cp-view.js';
import type { EngineContext } from './context.js';
import { untilOf } from './filters.js';
import type { CommitBody, SystemDfResponse } from './contract.js';
import { listContainers } from './views.js';

export async function containerChanges(ctx: EngineContext, ref: string): Promise<ContainerChange[]> {
  const c = ctx.get(ref);
  return ctx.images.changes(c.id);
}

/**
 * Runs `fn` with the container's processes frozen when it runs and is not paused already: no
 * process inside can change the filesystem meanwhile (a consistent commit; for cp, no symlink
 * swapped in between the resolution of a path and its use). Answers `fn`'s value and the thaw.
 */
async function frozen<T>(ctx: EngineContext, c: Ctr, fn: (thaw: () => Promise<void>) => Promise<T>): Promise<T> {
  let thawed = false;
  const h = c.rec.State.Running && !c.rec.State.Paused ? ctx.cgroups.open(ctx.cgroupPathOf(c)) : null;
  if (h) await h.freeze();
  const thaw = async (): Promise<void> => {
    if (thawed || !h) return;
    thawed = true;
    // Paused by the user meanwhile: it stays frozen.
    if (!c.rec.State.Paused) await h.thaw();
  };
  try {
    return await fn(thaw);
  } catch (err) {
    await thaw().catch(() => undefined);
    throw err;
  }
}

/** Docker's merge of a commit's config with the container's: what the user left unset is the container's. */
function mergeConfig(user: ImageRuntimeConfig, ctr: ContainerConfig): ImageRuntimeConfig {
  const out: ImageRuntimeConfig = { ...user };
  if (!out.User) out.User = ctr.User;
  if (ctr.ExposedPorts) out.ExposedPorts = { ...ctr.ExposedPorts, ...(out.ExposedPorts ?? {}) };
  const env = [...(out.Env ?? [])];
  for (const e of ctr.Env ?? []) {
    const k = e.split('=')[0]!;
    if (!env.some((x) => x.split('=')[0] === k)) env.push(e);
  }
  out.Env = env.length ? env : (out.Env ?? null);
  if (!out.Entrypoint || out.Entrypoint.length === 0) {
    if (!out.Cmd || out.Cmd.length === 0) out.Cmd = ctr.Cmd;
    if (out.Entrypoint == null) out.Entrypoint = ctr.Entrypoint;
  }
  if (!out.WorkingDir) out.WorkingDir = ctr.WorkingDir;
  if (ctr.Volumes) out.Volumes = { ...ctr.Volumes, ...(out.Volumes ?? {}) };
  else out.Volumes ??= null;
  if (ctr.Labels) out.Labels = { ...ctr.Labels, ...(out.Labels ?? {}) };
  else out.Labels ??= null;
  if (out.OnBuild == null) out.OnBuild = ctr.OnBuild ?? null;
  if (!out.StopSignal && ctr.StopSignal) out.StopSignal = ctr.StopSignal;
  if (!out.Shell && ctr.Shell) out.Shell = ctr.Shell;
  if (!out.Healthcheck && ctr.Healthcheck) out.Healthcheck = ctr.Healthcheck;
  return out;
}

function runtimeOf(cfg: ContainerConfig): ImageRuntimeConfig {
  const out: ImageRuntimeConfig = {
    User: cfg.User,
    Env: cfg.Env,
    Cmd: cfg.Cmd,
    Volumes: cfg.Volumes,
    WorkingDir: cfg.WorkingDir,
    Entrypoint: cfg.Entrypoint,
    OnBuild: cfg.OnBuild,
    Labels: cfg.Labels,
  };
  if (cfg.ExposedPorts) out.ExposedPorts = cfg.ExposedPorts;
  if (cfg.StopSignal) out.StopSignal = cfg.StopSignal;
  if (cfg.Shell) out.Shell = cfg.Shell;
  return out;
}

export async function commitContainer(ctx: EngineContext, ref: string, body: CommitBody): Promise<string> {
  const c = ctx.get(ref);
  const user = applyChanges((body.config ?? {}) as ImageRuntimeConfig, body.changes);
  const config = mergeConfig(user, c.rec.Config);
  const id = await c.locked(() =>
    (body.pause ? frozen : noFreeze)(ctx, c, async (thaw) => {
      try {
        return await ctx.images.commit(c.id, {
          imageId: c.rec.Image,
          config,
          containerConfig: runtimeOf(c.rec.Config),
          author: body.author,
          comment: body.comment,
          createdBy: (c.rec.Config.Cmd ?? []).join(' '),
          repo: body.repo,
          tag: body.tag,
        });
      } finally {
        await thaw();
      }
    }),
  );
  ctx.emit(c, 'commit', { comment: body.comment, imageID: id, imageRef: body.repo ? `${body.repo}:${body.tag || 'latest'}` : '' });
  return id;
}

async function noFreeze<T>(_ctx: EngineContext, _c: Ctr, fn: (thaw: () => Promise<void>) => Promise<T>): Promise<T> {
  return fn(async () => undefined);
}

// ---- cp ----

/**
 * The container's filesystem as cp sees it (its layer, mounted and counted, with its volumes,
 * binds and host files: cp-view.ts) for `fn`; released when `fn`'s release runs.
 */
async function withView<T>(ctx: EngineContext, c: Ctr, fn: (root: string, release: () => Promise<void>, view: CpView) => Promise<T>): Promise<T> {
  const layer = await ctx.images.mountContainerLayer(c.id);
  let view: CpView;
  try {
    view = await openCpView(ctx, c, layer);
  } catch (err) {
    await ctx.images.unmountContainerLayer(c.id).catch(() => undefined);
    throw err;
  }
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    try {
      await view.release();
    } finally {
      await ctx.images.unmountContainerLayer(c.id);
    }
  };
  try {
    return await fn(view.root, release, view);
  } catch (err) {
    await release().catch(() => undefined);
    throw err;
  }
}

export async function statContainerArchive(ctx: EngineContext, ref: string, path: string): Promise<ContainerPathStat> {
  const c = ctx.get(ref);
  checkPath(path);
  return frozen(ctx, c, (thaw) =>
    withView(ctx, c, async (root, release) => {
      try {
        return (await statContainerPath(root, path, c.id)).stat;
      } finally {
        await release();
        await thaw();
      }
    }),
  );
}

export async function getContainerArchive(ctx: EngineContext, ref: string, path: string): Promise<{ stat: ContainerPathStat; tar: Readable }> {
  const c = ctx.get(ref);
  checkPath(path);
  // Frozen until the whole tar is read: the walk follows no link a process inside could swap in.
  return frozen(ctx, c, (thaw) =>
    withView(ctx, c, (root, release) =>
      archiveContainerPath(root, path, c.id, async () => {
        await release();
        await thaw();
      }),
    ),
  );
}

export async function putContainerArchive(ctx: EngineContext, ref: string, path: string, tar: Readable, opts: { noOverwriteDirNonDir: boolean }): Promise<void> {
  const c = ctx.get(ref);
  checkPath(path);
  await frozen(ctx, c, (thaw) =>
    withView(ctx, c, async (root, release, view) => {
      try {
        await checkWritable(c, view, path);
        await extractInto(root, path, c.id, tar, { fs: ctx.sys(), noOverwriteDirNonDir: opts.noOverwriteDirNonDir });
      } finally {
        await release();
        await thaw();
      }
    }),
  );
  ctx.emit(c, 'extract-to-dir');
}

function checkPath(path: string): void {
  if (path === '') throw new BerthError('BERTH_INVALID_ARGUMENT', 'path is required', { details: { field: 'path' } });
}

// ---- images ----

export async function imageHistory(ctx: EngineContext, ref: string): Promise<ImageHistoryItem[]> {
  return ctx.images.history(ref);
}

function oneBool(filters: Filters, key: string): boolean | undefined {
  const v = filters.get(key);
  if (v === undefined || v.size === 0) return undefined;
  const s = [...v][0]!.toLowerCase();
  if (!['true', 'false', '1', '0'].includes(s)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid filter '${key}=${s}'`, { details: { field: `filters.${key}` } });
  return s === 'true' || s === '1';
}

export async function pruneImages(ctx: EngineContext, filters: Filters): Promise<ImagesPruneResponse> {
  for (const key of filters.keys())
    if (!['dangling', 'until', 'label', 'label!'].includes(key)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid filter '${key}'`, { details: { field: `filters.${key}` } });
  const dangling = oneBool(filters, 'dangling') ?? true;
  const until = filters.get('until');
  const res = await ctx.images.prune(
    {
      all: !dangling,
      until: until && until.size > 0 ? Math.min(...[...until].map(untilOf)) : undefined,
      labels: [...(filters.get('label') ?? [])],
      notLabels: [...(filters.get('label!') ?? [])],
    },
    (imageId) => {
      const c = [...ctx.containers.values()].find((x) => x.rec.Image === imageId);
      return c ? { id: c.id, running: c.rec.State.Running } : null;
    },
  );
  for (const it of res.ImagesDeleted ?? []) {
    if ('Untagged' in it) ctx.bus.publish('image', 'untag', it.Untagged, { name: it.Untagged });
    else ctx.bus.publish('image', 'delete', it.Deleted, { name: it.Deleted });
  }
  ctx.bus.publish('image', 'prune', '', { reclaimed: String(res.SpaceReclaimed) });
  return res;
}

export async function systemDf(ctx: EngineContext): Promise<SystemDfResponse> {
  const usage = await ctx.images.diskUsage();
  const images: ImageSummary[] = usage.Images.map((img) => ({
    ...img,
    Containers: [...ctx.containers.values()].filter((c) => c.rec.Image === img.Id).length,
  }));
  const containers: ContainerSummary[] = await listContainers(ctx, { all: true, limit: -1, size: true, filters: new Map() });
  return { LayersSize: usage.LayersSize, Images: images, Containers: containers, Volumes: [], BuildCache: [] };
}
