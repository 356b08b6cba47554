/**
 * The store's operations on container layers and whole-store views: changes (docker diff),
 * commit, history, prune and disk usage. They work on the store's maps through `StoreAccess`
 * (store.ts hands it out), so the store file keeps only the delegating methods.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ImageDeleteItem, ImageSummary } from '@berth/api';
import { BerthError, isNotFound } from '@berth/errors';
import type { Logger } from '@berth/log';
import type { GraphDriver } from '@berth/plugin-api';
import { chainIdOf, sha256Digest } from './chain.js';
import { commitRecord, startSplit } from './parts.js';
import { atomicRecordDir, atomicWrite, randomId } from './fsutil.js';
import { isValidTag, parseNormalizedReference, shortId, type Reference } from './reference.js';
import type { CommitOptions, ContainerChange, ImageDiskUsage, ImageHistoryItem, ImagesPruneResponse, PruneImagesOptions } from './ops-types.js';
import type { ImageConfig, ImageHistory, ImageInUse } from './types.js';

export interface AccessImage {
  id: string;
  config: ImageConfig;
  lastTagTime: string | null;
}
export interface AccessLayer {
  chainId: string;
  diffId: string;
  parent: string | null;
  size: number;
  cacheId: string;
}
export interface AccessMount {
  containerId: string;
  mountId: string;
  parent: string | null;
}

/** What the operations here reach inside an ImageStore. */
export interface StoreAccess {
  driver: GraphDriver;
  log: Logger;
  images: Map<string, AccessImage>;
  layers: Map<string, AccessLayer>;
  mounts: Map<string, AccessMount>;
  /** A path under the store's root. */
  p(...parts: string[]): string;
  serial<T>(fn: () => Promise<T>): Promise<T>;
  lookup(ref: string): AccessImage;
  topLayerOf(img: AccessImage): string | null;
  repoTags(id: string): string[];
  isDangling(id: string): boolean;
  setTag(ref: Reference, id: string): Promise<void>;
  remove(ref: string, opts: { force: boolean; noprune: boolean }, isInUse: ImageInUse): Promise<ImageDeleteItem[]>;
  list(): Promise<ImageSummary[]>;
}

const hex = (id: string): string => (id.startsWith('sha256:') ? id.slice(7) : id);

function mountOf(s: StoreAccess, containerId: string): AccessMount {
  const m = s.mounts.get(containerId);
  if (m === undefined) throw new BerthError('BERTH_LAYER_NOT_FOUND', `no container layer for ${containerId}`, { details: { containerId } });
  return m;
}

function parentCacheOf(s: StoreAccess, m: AccessMount): string {
  if (m.parent === null) return '';
  const l = s.layers.get(m.parent);
  if (l === undefined) throw new BerthError('BERTH_LAYER_NOT_FOUND', `layer ${m.parent} under container ${m.containerId} is missing`, { details: { layerId: m.parent } });
  return l.cacheId;
}

/** `docker diff`: the container layer's changes against its image, sorted by path. */
export async function containerChanges(s: StoreAccess, containerId: string): Promise<ContainerChange[]> {
  const m = mountOf(s, containerId);
  const list = await s.driver.changes(m.mountId, parentCacheOf(s, m));
  return list.map((c) => ({ Path: c.path, Kind: c.kind })).sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
}

/** Diff ids of a layer chain, bottom first. */
function diffIdsOf(s: StoreAccess, top: string | null): string[] {
  const out: string[] = [];
  for (let c = top; c !== null; c = s.layers.get(c)?.parent ?? null) {
    const l = s.layers.get(c);
    if (l === undefined) throw new BerthError('BERTH_LAYER_NOT_FOUND', `layer ${c} is missing`, { details: { layerId: c } });
    out.unshift(l.diffId);
  }
  return out;
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/**
 * `docker commit`: the container layer's diff becomes a new layer on the image's layers (none
 * when nothing changed: an empty-layer history entry, as Docker), the config is the one given,
 * history and rootfs.diff_ids extend the base image's. The caller keeps the container still.
 */
export async function commitContainer(s: StoreAccess, containerId: string, opts: CommitOptions): Promise<string> {
  let ref: Reference | null = null;
  if (opts.repo !== '') {
    ref = parseNormalizedReference(opts.repo);
    if (ref.digest !== undefined) throw new BerthError('BERTH_REFERENCE_INVALID', `cannot commit to a digest reference: ${opts.repo}`, { details: { reference: opts.repo } });
    if (opts.tag !== '') {
      if (!isValidTag(opts.tag)) throw new BerthError('BERTH_REFERENCE_INVALID', `invalid tag format: ${JSON.stringify(opts.tag)}`, { details: { reference: opts.tag } });
      ref.tag = opts.tag;
    }
    ref.tag ??= 'latest';
  } else if (opts.tag !== '') {
    throw new BerthError('BERTH_INVALID_ARGUMENT', 'tag is specified without repository', { details: { field: 'tag' } });
  }
  const m = mountOf(s, containerId);
  const parentCache = parentCacheOf(s, m);
  const base = s.images.get(opts.imageId) ?? null;
  const baseDiffIds = diffIdsOf(s, m.parent);
  const changes = await s.driver.changes(m.mountId, parentCache);

  let layer: AccessLayer | null = null;
  let cacheId: string | null = null;
  let split: Awaited<ReturnType<typeof startSplit>> | null = null;
  if (changes.length > 0) {
    cacheId = randomId();
    const hash = createHash('sha256');
    const diff = await s.driver.diff(m.mountId, parentCache);
    // The tar's split, so save and push give back the bytes of this diffID (parts.ts).
    split = await startSplit(s.p());
    const rec = split;
    const hashed = async function* (): AsyncGenerator<Buffer> {
      for await (const chunk of diff as AsyncIterable<Buffer>) {
        hash.update(chunk);
        await rec.push(chunk);
        yield chunk;
      }
    };
    try {
      await s.driver.create(cacheId, parentCache);
      const size = await s.driver.applyDiff(cacheId, parentCache, Readable.from(hashed()));
      await split.finish();
      const diffId = `sha256:${hash.digest('hex')}`;
      layer = { chainId: chainIdOf(m.parent, diffId), diffId, parent: m.parent, size, cacheId };
    } catch (err) {
      diff.destroy();
      await split.abort();
      await s.driver.remove(cacheId).catch(() => undefined);
      if (err instanceof BerthError) throw err;
      throw new BerthError('BERTH_STORAGE', `commit ${containerId}: ${(err as Error).message}`, { cause: err });
    }
  }

  const created = new Date().toISOString();
  const entry: ImageHistory = { created, created_by: opts.createdBy };
  if (opts.author !== '') entry.author = opts.author;
  if (opts.comment !== '') entry.comment = opts.comment;
  if (layer === null) entry.empty_layer = true;
  const config: ImageConfig & { container?: string } = {
    architecture: base?.config.architecture ?? GOARCH[process.arch] ?? process.arch,
    ...(opts.author !== '' ? { author: opts.author } : {}),
    ...(opts.comment !== '' ? { comment: opts.comment } : {}),
    config: opts.config,
    container: containerId,
    ...(opts.containerConfig ? { container_config: opts.containerConfig } : {}),
    created,
    history: [...(base?.config.history ?? []), entry],
    os: base?.config.os ?? 'linux',
    ...(base !== null ? { parent: base.id } : {}),
    rootfs: { type: 'layers', diff_ids: layer === null ? baseDiffIds : [...baseDiffIds, layer.diffId] },
  };
  if (base?.config.variant !== undefined) config.variant = base.config.variant;
  const raw = Buffer.from(JSON.stringify(config));
  const id = sha256Digest(raw);
  return s.serial(async () => {
    try {
      if (layer !== null) {
        if (s.layers.has(layer.chainId)) {
          await s.driver.remove(layer.cacheId);
          await split?.abort();
        } else {
          await commitRecord(s.p(), split!.tmpDir, layer);
          s.layers.set(layer.chainId, layer);
        }
        cacheId = null;
      }
      if (!s.images.has(id)) {
        await atomicWrite(s.p('imagedb/content/sha256', hex(id)), raw);
        s.images.set(id, { id, config, lastTagTime: null });
      }
      if (ref !== null) await s.setTag(ref, id);
    } catch (err) {
      if (cacheId !== null) await s.driver.remove(cacheId).catch(() => undefined);
      await split?.abort();
      throw err;
    }
    s.log.info({ image: id, containerId, layerId: layer?.chainId ?? null }, 'container committed');
    return id;
  });
}

/** `docker history`: one row per history entry, newest first; ids along the local parent chain. */
export function imageHistory(s: StoreAccess, ref: string): ImageHistoryItem[] {
  const img = s.lookup(ref);
  const diffIds = img.config.rootfs?.diff_ids ?? [];
  let history: ImageHistory[] = img.config.history ?? [];
  if (history.length === 0) history = diffIds.map(() => ({ created: img.config.created ?? '' }));
  const rows: ImageHistoryItem[] = [];
  let chain: string | null = null;
  let n = 0;
  for (const h of history) {
    let size = 0;
    if (!h.empty_layer && n < diffIds.length) {
      chain = chainIdOf(chain, diffIds[n++]!);
      size = s.layers.get(chain)?.size ?? 0;
    }
    rows.push({
      Id: '<missing>',
      Created: h.created ? Math.floor(new Date(h.created).getTime() / 1000) : 0,
      CreatedBy: h.created_by ?? '',
      Tags: null,
      Size: size,
      Comment: h.comment ?? '',
    });
  }
  rows.reverse();
  let cur: AccessImage | undefined = img;
  for (const row of rows) {
    if (cur === undefined) break;
    row.Id = cur.id;
    const tags = s.repoTags(cur.id);
    if (tags.length > 0) row.Tags = tags;
    cur = cur.config.parent ? s.images.get(cur.config.parent) : undefined;
  }
  return rows;
}

function labelMatch(labels: Record<string, string> | null | undefined, f: string): boolean {
  const i = f.indexOf('=');
  if (labels == null) return false;
  return i === -1 ? f in labels : labels[f.slice(0, i)] === f.slice(i + 1);
}

/**
 * `docker image prune`: dangling images without children (or every image with `all`) that no
 * container uses, each removed as `rmi` would (untag, then delete); layers go when unused.
 */
export async function pruneImages(s: StoreAccess, opts: PruneImagesOptions, isInUse: ImageInUse): Promise<ImagesPruneResponse> {
  const totalSize = (): number => [...s.layers.values()].reduce((a, l) => a + l.size, 0);
  const before = totalSize();
  const deleted: ImageDeleteItem[] = [];
  // Passes until nothing more goes: a parent is considered once its children are gone (Docker
  // reaches the same end by pruning the parents of each deleted image).
  for (let progress = true; progress; ) {
    progress = false;
    const parents = new Set([...s.images.values()].map((i) => i.config.parent).filter((p): p is string => !!p && s.images.has(p)));
    for (const img of [...s.images.values()]) {
      if (!s.images.has(img.id) || parents.has(img.id)) continue;
      if (!opts.all && !s.isDangling(img.id)) continue;
      if (isInUse(img.id) !== null) continue;
      const createdAt = new Date(img.config.created ?? 0).getTime() / 1000;
      if (opts.until !== undefined && !(createdAt < opts.until)) continue;
      const labels = img.config.config?.Labels;
      if ((opts.labels ?? []).some((f) => !labelMatch(labels, f))) continue;
      if ((opts.notLabels ?? []).some((f) => labelMatch(labels, f))) continue;
      try {
        if (opts.all) for (const t of s.repoTags(img.id)) if (s.images.has(img.id)) deleted.push(...(await s.remove(t, { force: false, noprune: false }, isInUse)));
        if (s.images.has(img.id)) deleted.push(...(await s.remove(img.id, { force: false, noprune: false }, isInUse)));
        progress = true;
      } catch (err) {
        // A digest reference or a race with a new container: left, as Docker does.
        if (isNotFound(err)) continue;
        if ((err as { code?: string }).code === 'BERTH_IMAGE_CONFLICT') {
          s.log.debug({ image: shortId(img.id), err }, 'prune: image kept');
          continue;
        }
        throw err;
      }
    }
  }
  return { ImagesDeleted: deleted.length === 0 ? null : deleted, SpaceReclaimed: Math.max(0, before - totalSize()) };
}

/** The image part of `docker system df`: total layer bytes, and each image with its shared bytes. */
export async function imageDiskUsage(s: StoreAccess): Promise<ImageDiskUsage> {
  const users = new Map<string, number>();
  for (const img of s.images.values())
    for (let c = s.topLayerOf(img); c !== null; c = s.layers.get(c)?.parent ?? null) users.set(c, (users.get(c) ?? 0) + 1);
  const images = await s.list();
  for (const sum of images) {
    const img = s.images.get(sum.Id);
    let shared = 0;
    if (img !== undefined)
      for (let c = s.topLayerOf(img); c !== null; c = s.layers.get(c)?.parent ?? null) if ((users.get(c) ?? 0) > 1) shared += s.layers.get(c)?.size ?? 0;
    sum.SharedSize = shared;
  }
  return { LayersSize: [...s.layers.values()].reduce((a, l) => a + l.size, 0), Images: images };
}
