import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { isZstd, zstdDecompress } from '@berth/archive';
import type { Filters, ImageDeleteItem, ImageInspect, ImageRuntimeConfig, ImageSummary, JsonMessage } from '@berth/api';
import { BerthError, isNotFound } from '@berth/errors';
import type { Logger } from '@berth/log';
import type { GraphDriver } from '@berth/plugin-api';
import { applyChanges } from './changes.js';
import { GUNZIP_OPTIONS, asBuffer } from './chunks.js';
import { chainIdOf, sha256Digest } from './chain.js';
import { tarTree } from './export.js';
import { commitContainer, containerChanges, imageDiskUsage, imageHistory, pruneImages, type StoreAccess } from './container-ops.js';
import type { CommitOptions, ContainerChange, ImageDiskUsage, ImageHistoryItem, ImagesPruneResponse, PruneImagesOptions } from './ops-types.js';
import {
  addImage,
  commitRecord,
  dropStaged,
  imageParts,
  layerTar,
  layerTarSize,
  stageLayer,
  stagedTar,
  startSplit,
  type AddImageInput,
  type ImageParts,
  type StagedLayer,
  type StoreInternals,
} from './parts.js';
import { atomicRecordDir, atomicWrite, randomId, readdirOrEmpty, readTextOrNull } from './fsutil.js';
import {
  asFullImageId,
  familiarName,
  familiarString,
  fullString,
  idPrefixOf,
  isValidTag,
  parseNormalizedReference,
  parseTaggedReference,
  shortId,
  type Reference,
} from './reference.js';
import type { ImageConfig, ImageInUse, ImportTarOptions, RemoveImageOptions, ResolvedImage } from './types.js';

export interface ImageStoreOptions {
  /** Image root, e.g. /var/lib/berth/image/vfs: imagedb/, layerdb/, repositories.json. */
  root: string;
  driver: GraphDriver;
  logger: Logger;
}

interface ImageRecord {
  id: string;
  config: ImageConfig;
  lastTagTime: string | null;
}

interface LayerRecord {
  chainId: string;
  diffId: string;
  parent: string | null;
  size: number;
  cacheId: string;
}

interface MountRecord {
  containerId: string;
  mountId: string;
  /** Chain id of the image's top layer, or null. */
  parent: string | null;
}

const hex = (id: string): string => (id.startsWith('sha256:') ? id.slice(7) : id);

function storageError(what: string, cause: unknown): BerthError {
  const inner = cause instanceof Error ? cause.message : String(cause);
  return new BerthError('BERTH_STORAGE', `image store: ${what}: ${inner}`, { cause });
}

function notFound(ref: string): BerthError {
  return new BerthError('BERTH_IMAGE_NOT_FOUND', `No such image: ${ref}`, { details: { reference: ref } });
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** Docker's default keys of an image's runtime config, for inspect output. */
function fullRuntimeConfig(c: ImageRuntimeConfig | undefined): ImageRuntimeConfig {
  return {
    User: '',
    Env: null,
    Cmd: null,
    Volumes: null,
    WorkingDir: '',
    Entrypoint: null,
    OnBuild: null,
    Labels: null,
    ...(c ?? {}),
  };
}

/**
 * Images, layers and container layers over one GraphDriver, in Docker's on-disk layout:
 * `imagedb/content/sha256/<id>` (config bytes), `layerdb/sha256/<chainID>/{diff,size,cache-id,parent}`,
 * `layerdb/mounts/<container>/{mount-id,parent}`, `repositories.json`.
 */
export class ImageStore {
  private readonly images = new Map<string, ImageRecord>();
  private readonly layers = new Map<string, LayerRecord>();
  private readonly mounts = new Map<string, MountRecord>();
  /** Full reference string (docker.io/library/busybox:latest) -> image id. */
  private readonly refs = new Map<string, string>();
  /** Chain ids an operation in flight relies on (load, save): never released while listed. */
  private readonly pins = new Map<string, number>();
  private readonly driver: GraphDriver;
  private readonly log: Logger;
  private readonly root: string;
  /** Serialises mutations of the in-memory maps and their files. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(opts: ImageStoreOptions) {
    this.root = opts.root;
    this.driver = opts.driver;
    this.log = opts.logger;
  }

  /** Opens (creating if needed) the store at `opts.root`, loading images, layers and mounts. */
  static async open(opts: ImageStoreOptions): Promise<ImageStore> {
    const s = new ImageStore(opts);
    try {
      await s.load();
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw storageError(`open ${opts.root}`, err);
    }
    return s;
  }

  private p(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  private async load(): Promise<void> {
    for (const d of ['imagedb/content/sha256', 'imagedb/metadata/sha256', 'layerdb/sha256', 'layerdb/mounts']) await fs.mkdir(this.p(d), { recursive: true });
    // Leftovers of interrupted record writes.
    await fs.rm(this.p('layerdb/tmp'), { recursive: true, force: true });
    for (const h of await readdirOrEmpty(this.p('layerdb/sha256'))) {
      const dir = this.p('layerdb/sha256', h);
      const [diff, size, cacheId, parent] = await Promise.all(
        ['diff', 'size', 'cache-id', 'parent'].map((f) => readTextOrNull(path.join(dir, f))),
      );
      if (diff === null || cacheId === null) {
        this.log.warn({ layerId: h }, 'incomplete layer record ignored');
        continue;
      }
      this.layers.set(`sha256:${h}`, { chainId: `sha256:${h}`, diffId: diff.trim(), parent: parent?.trim() || null, size: Number(size ?? 0), cacheId: cacheId.trim() });
    }
    for (const h of await readdirOrEmpty(this.p('imagedb/content/sha256'))) {
      if (h.startsWith('.')) continue;
      const raw = await fs.readFile(this.p('imagedb/content/sha256', h));
      if (createHash('sha256').update(raw).digest('hex') !== h) {
        this.log.warn({ image: h }, 'image config does not match its id; ignored');
        continue;
      }
      const lastTagTime = (await readTextOrNull(this.p('imagedb/metadata/sha256', h, 'lastUpdated')))?.trim() || null;
      this.images.set(`sha256:${h}`, { id: `sha256:${h}`, config: JSON.parse(raw.toString('utf8')) as ImageConfig, lastTagTime });
    }
    for (const c of await readdirOrEmpty(this.p('layerdb/mounts'))) {
      const dir = this.p('layerdb/mounts', c);
      const mountId = (await readTextOrNull(path.join(dir, 'mount-id')))?.trim();
      if (mountId === undefined || mountId === '') continue;
      const parent = (await readTextOrNull(path.join(dir, 'parent')))?.trim() || null;
      this.mounts.set(c, { containerId: c, mountId, parent });
    }
    const reposRaw = await readTextOrNull(this.p('repositories.json'));
    if (reposRaw !== null) {
      const repos = (JSON.parse(reposRaw) as { Repositories?: Record<string, Record<string, string>> }).Repositories ?? {};
      for (const byRef of Object.values(repos))
        for (const [ref, id] of Object.entries(byRef)) {
          if (!this.images.has(id)) continue;
          try {
            this.refs.set(fullString(parseNormalizedReference(ref)), id);
          } catch {
            this.log.warn({ reference: ref }, 'invalid reference in repositories.json ignored');
          }
        }
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async saveRepositories(): Promise<void> {
    const repos: Record<string, Record<string, string>> = {};
    for (const [full, id] of [...this.refs].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const r = parseNormalizedReference(full);
      (repos[familiarName(r)] ??= {})[familiarString(r)] = id;
    }
    await atomicWrite(this.p('repositories.json'), JSON.stringify({ Repositories: repos }));
  }

  // ---- lookups ----

  private refsOf(id: string): Reference[] {
    const out: Reference[] = [];
    for (const [full, target] of this.refs) if (target === id) out.push(parseNormalizedReference(full));
    return out.sort((a, b) => (familiarString(a) < familiarString(b) ? -1 : 1));
  }

  private repoTags(id: string): string[] {
    return this.refsOf(id)
      .filter((r) => r.digest === undefined)
      .map(familiarString);
  }

  private repoDigests(id: string): string[] {
    return this.refsOf(id)
      .filter((r) => r.digest !== undefined)
      .map(familiarString);
  }

  private topLayerOf(img: ImageRecord): string | null {
    let chain: string | null = null;
    for (const d of img.config.rootfs?.diff_ids ?? []) chain = chainIdOf(chain, d);
    return chain;
  }

  private imageSize(img: ImageRecord): number {
    let size = 0;
    for (let c = this.topLayerOf(img); c !== null; c = this.layers.get(c)?.parent ?? null) size += this.layers.get(c)?.size ?? 0;
    return size;
  }

  /** Docker's lookup: a full id, then a reference, then a unique id prefix. */
  private lookup(ref: string): ImageRecord {
    const full = asFullImageId(ref);
    if (full !== null && this.images.has(full)) return this.images.get(full)!;
    let parseErr: unknown = null;
    // Docker names what it did not find as it read it: `sha256:<hex>` for an id, else the
    // familiar reference with its tag (`nope:latest`, `quay.io/x/y:latest`).
    let shown = full ?? ref;
    try {
      const r = parseTaggedReference(ref);
      if (full === null) shown = familiarString(r);
      const id = this.refs.get(fullString(r));
      if (id !== undefined && this.images.has(id)) return this.images.get(id)!;
    } catch (err) {
      parseErr = err;
    }
    const prefix = idPrefixOf(ref);
    if (prefix !== null) {
      const hits = [...this.images.keys()].filter((id) => hex(id).startsWith(prefix));
      if (hits.length === 1) return this.images.get(hits[0]!)!;
    }
    if (parseErr !== null && prefix === null) throw parseErr;
    throw notFound(shown);
  }

  /** Name, `sha256:<id>`, or id prefix -> the image. Throws BERTH_IMAGE_NOT_FOUND `No such image: <ref>` in Docker's words (`nope:latest`). */
  async resolve(ref: string): Promise<ResolvedImage> {
    const img = this.lookup(ref);
    return { id: img.id, config: structuredClone(img.config), topLayer: this.topLayerOf(img), repoTags: this.repoTags(img.id) };
  }

  /** Number of images (for `docker info`). */
  count(): number {
    return this.images.size;
  }

  // ---- image parts (load, save, pull, push; see parts.ts) ----

  private internals(): StoreInternals {
    return {
      root: this.root,
      driver: this.driver,
      log: this.log,
      layers: this.layers,
      images: this.images,
      pins: this.pins,
      serial: (fn) => this.serial(fn),
      setTag: (ref, id) => this.setTag(ref, id),
      releaseUnusedLayers: () => this.releaseUnusedLayers(),
      lookupId: (ref) => this.lookup(ref).id,
      repoTags: (id) => this.repoTags(id),
    };
  }

  /** Stores an image from its config bytes and layer tars, verifying every digest; answers its id. */
  addImage(input: AddImageInput): Promise<string> {
    return addImage(this.internals(), input);
  }

  /** Applies a layer before its image is known (load); addImage takes it over via AddImageLayer.staged. */
  stageLayer(parent: StagedLayer | null, src: Readable, what: string): Promise<StagedLayer> {
    return stageLayer(this.internals(), parent, src, what);
  }

  /** Removes the staged layers addImage did not take over. */
  dropStaged(layers: readonly StagedLayer[]): Promise<void> {
    return dropStaged(this.internals(), layers);
  }

  /** A staged layer's tar, to apply it elsewhere. */
  stagedTar(layer: StagedLayer): Promise<Readable> {
    return stagedTar(this.internals(), layer);
  }

  /** The uncompressed tar of a stored layer (hashes to its diffID when its split was recorded). */
  layerTar(chainId: string): Promise<Readable> {
    return layerTar(this.internals(), chainId);
  }

  /** Byte size of layerTar's tar; null when the layer has no recorded split. */
  layerTarSize(chainId: string): Promise<number | null> {
    return layerTarSize(this.internals(), chainId);
  }

  /** The image's id, exact config bytes, tags and layers (diffID, chainID, size), bottom first. */
  imageParts(ref: string): Promise<ImageParts> {
    return imageParts(this.internals(), ref);
  }

  // ---- import ----

  /**
   * Imports a rootfs tarball (plain or gzip) as a one-layer image; answers `sha256:<id>`.
   * Progress gets `Importing` messages with the bytes read; the final `{status: id}` line is the caller's.
   */
  async importTar(src: Readable, opts: ImportTarOptions, progress?: (msg: JsonMessage) => void): Promise<string> {
    // Everything that can be refused is checked before the body is read.
    let ref: Reference | null = null;
    if (opts.repo !== '') {
      ref = parseNormalizedReference(opts.repo);
      if (ref.digest !== undefined) throw new BerthError('BERTH_REFERENCE_INVALID', `cannot import to a digest reference: ${opts.repo}`, { details: { reference: opts.repo } });
      if (opts.tag !== '') {
        if (!isValidTag(opts.tag)) throw new BerthError('BERTH_REFERENCE_INVALID', `invalid tag format: ${JSON.stringify(opts.tag)}`, { details: { reference: opts.tag } });
        ref.tag = opts.tag;
      }
      ref.tag ??= 'latest';
    }
    const runtimeConfig = applyChanges({}, opts.changes);
    const created = (opts.created ?? new Date()).toISOString().replace(/\.000Z$/, 'Z');
    const comment = opts.message === '' ? 'Imported from -' : opts.message;

    const cacheId = randomId();
    const hash = createHash('sha256');
    // The tar's split, so save and push give back the same bytes (parts.ts).
    const split = await startSplit(this.root);
    let read = 0;
    let lastReport = 0;
    const counted = async function* (input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      for await (const chunk of input) {
        hash.update(chunk);
        await split.push(chunk);
        read += chunk.length;
        if (progress && read - lastReport >= 1 << 20) {
          lastReport = read;
          progress({ status: 'Importing', progressDetail: { current: read } });
        }
        yield chunk;
      }
    };
    let layerMade = false;
    try {
      await this.driver.create(cacheId, '');
      layerMade = true;
      const size = await this.driver.applyDiff(cacheId, '', Readable.from(counted(decompressed(src))));
      await split.finish();
      const diffId = `sha256:${hash.digest('hex')}`;
      const chainId = chainIdOf(null, diffId);
      const config: ImageConfig = {
        architecture: GOARCH[process.arch] ?? process.arch,
        comment,
        config: runtimeConfig,
        created,
        history: [{ created, comment }],
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [diffId] },
      };
      const raw = Buffer.from(JSON.stringify(config));
      const id = sha256Digest(raw);
      return await this.serial(async () => {
        if (this.layers.has(chainId)) {
          // Same content already stored: keep the old layer.
          await this.driver.remove(cacheId);
          layerMade = false;
          await split.abort();
        } else {
          const rec: LayerRecord = { chainId, diffId, parent: null, size, cacheId };
          await commitRecord(this.root, split.tmpDir, rec);
          this.layers.set(chainId, rec);
          layerMade = false; // owned by the record now
        }
        if (!this.images.has(id)) {
          await atomicWrite(this.p('imagedb/content/sha256', hex(id)), raw);
          this.images.set(id, { id, config, lastTagTime: null });
        }
        if (ref !== null) await this.setTag(ref, id);
        this.log.info({ image: id, layerId: chainId, bytes: read }, 'image imported');
        return id;
      });
    } catch (err) {
      if (layerMade) await this.driver.remove(cacheId).catch(() => undefined);
      await split.abort();
      if (err instanceof BerthError) throw err;
      throw storageError('import', err);
    }
  }

  private async setTag(ref: Reference, id: string): Promise<void> {
    this.refs.set(fullString(ref), id);
    await this.saveRepositories();
    const now = new Date().toISOString();
    await atomicWrite(this.p('imagedb/metadata/sha256', hex(id), 'lastUpdated'), now);
    this.images.get(id)!.lastTagTime = now;
  }

  // ---- list, inspect, tag ----

  async list(opts: { all?: boolean; filters?: Filters } = {}): Promise<ImageSummary[]> {
    const filters = opts.filters ?? new Map<string, Set<string>>();
    for (const key of filters.keys())
      if (!['dangling', 'label', 'reference', 'before', 'since'].includes(key))
        throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid filter '${key}'`, { details: { field: `filters.${key}` } });
    const dangling = filters.get('dangling');
    let wantDangling: boolean | null = null;
    if (dangling !== undefined && dangling.size > 0) {
      const v = [...dangling][0]!.toLowerCase();
      if (v !== 'true' && v !== 'false' && v !== '1' && v !== '0')
        throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid filter 'dangling=${v}'`, { details: { field: 'filters.dangling' } });
      wantDangling = v === 'true' || v === '1';
    }
    const createdOf = (img: ImageRecord): number => Math.floor(new Date(img.config.created ?? 0).getTime() / 1000);
    const before = filters.get('before');
    const since = filters.get('since');
    const beforeT = before && before.size > 0 ? Math.min(...[...before].map((r) => createdOf(this.lookup(r)))) : null;
    const sinceT = since && since.size > 0 ? Math.max(...[...since].map((r) => createdOf(this.lookup(r)))) : null;
    const children = new Set([...this.images.values()].map((i) => i.config.parent).filter((p): p is string => !!p));

    const out: ImageSummary[] = [];
    for (const img of this.images.values()) {
      const tags = this.repoTags(img.id);
      const digests = this.repoDigests(img.id);
      const isDangling = tags.length === 0 && digests.length === 0;
      if (!opts.all && isDangling && children.has(img.id)) continue; // intermediate build image
      if (wantDangling !== null && wantDangling !== isDangling) continue;
      const labels = img.config.config?.Labels ?? null;
      const labelFilter = filters.get('label');
      if (labelFilter && labelFilter.size > 0) {
        const ok = [...labelFilter].every((f) => {
          const i = f.indexOf('=');
          return i === -1 ? labels !== null && f in labels : labels !== null && labels[f.slice(0, i)] === f.slice(i + 1);
        });
        if (!ok) continue;
      }
      let shownTags = tags;
      const refFilter = filters.get('reference');
      if (refFilter && refFilter.size > 0) {
        shownTags = tags.filter((t) => [...refFilter].some((pat) => matchReference(pat, t)));
        const digestHit = digests.some((t) => [...refFilter].some((pat) => matchReference(pat, t)));
        if (shownTags.length === 0 && !digestHit) continue;
      }
      const created = createdOf(img);
      if (beforeT !== null && created >= beforeT) continue;
      if (sinceT !== null && created <= sinceT) continue;
      out.push({
        Id: img.id,
        ParentId: img.config.parent ?? '',
        RepoTags: shownTags,
        RepoDigests: digests,
        Created: created,
        Size: this.imageSize(img),
        SharedSize: -1,
        Labels: labels,
        Containers: -1,
      });
    }
    return out.sort((a, b) => b.Created - a.Created || (a.Id < b.Id ? -1 : 1));
  }

  async inspect(ref: string): Promise<ImageInspect> {
    const img = this.lookup(ref);
    const top = this.topLayerOf(img);
    let data: Record<string, string> | null = null;
    if (top !== null) {
      const layer = this.layers.get(top);
      if (layer !== undefined) {
        const md = await this.driver.getMetadata(layer.cacheId).catch(() => ({}));
        data = Object.keys(md).length === 0 ? null : md;
      }
    }
    const c = img.config;
    const out: ImageInspect = {
      Id: img.id,
      RepoTags: this.repoTags(img.id),
      RepoDigests: this.repoDigests(img.id),
      Parent: c.parent ?? '',
      Comment: c.comment ?? '',
      Created: c.created ?? '',
      DockerVersion: c.docker_version ?? '',
      Author: c.author ?? '',
      Config: fullRuntimeConfig(c.config),
      Architecture: c.architecture,
      Os: c.os,
      Size: this.imageSize(img),
      GraphDriver: { Name: this.driver.name, Data: data },
      RootFS: { Type: 'layers', Layers: [...(c.rootfs?.diff_ids ?? [])] },
      Metadata: { LastTagTime: img.lastTagTime ?? '0001-01-01T00:00:00Z' },
    };
    if (c.variant !== undefined) out.Variant = c.variant;
    return out;
  }

  async tag(ref: string, repo: string, tag: string): Promise<void> {
    const r = parseNormalizedReference(repo);
    if (r.digest !== undefined)
      throw new BerthError('BERTH_REFERENCE_INVALID', `refusing to create a tag with a digest reference: ${repo}`, { details: { reference: repo } });
    if (tag !== '') {
      if (!isValidTag(tag)) throw new BerthError('BERTH_REFERENCE_INVALID', `invalid tag format: ${JSON.stringify(tag)}`, { details: { reference: tag } });
      r.tag = tag;
    }
    r.tag ??= 'latest';
    const img = this.lookup(ref);
    await this.serial(() => this.setTag(r, img.id));
  }

  // ---- remove ----

  /** `docker rmi`: Docker's rules for untagging, conflicts and deletion. */
  async remove(ref: string, opts: RemoveImageOptions, isInUse: ImageInUse): Promise<ImageDeleteItem[]> {
    return this.serial(async () => {
      const img = this.lookup(ref);
      const id = img.id;
      const records: ImageDeleteItem[] = [];
      const use = isInUse(id);
      const user = use === null ? null : typeof use === 'string' ? { id: use, running: false } : use;
      let repoRefs = this.refsOf(id);
      const byId = !isRefByName(ref, id);
      let removedRepositoryRef = false;

      if (!byId) {
        const parsed = parseTaggedReference(ref);
        if (!opts.force && isSingleReference(repoRefs) && user !== null)
          throw conflict(
            `conflict: unable to remove repository reference "${ref}" (must force) - container ${shortId(user.id)} is using its referenced image ${shortId(id)}`,
            ref,
          );
        this.refs.delete(fullString(parsed));
        records.push({ Untagged: familiarString(parsed) });
        // A tag removed and only digest references of the same repository left: drop those too.
        repoRefs = this.refsOf(id);
        if (parsed.tag !== undefined && repoRefs.length > 0 && repoRefs.every((r) => r.digest !== undefined && familiarName(r) === familiarName(parsed))) {
          for (const r of repoRefs) {
            this.refs.delete(fullString(r));
            records.push({ Untagged: familiarString(r) });
          }
          repoRefs = [];
        }
        await this.saveRepositories();
        if (repoRefs.length > 0) return records;
        removedRepositoryRef = true;
      } else if (isSingleReference(repoRefs)) {
        const c = this.deleteConflict(id, user, opts.force ? 'hard' : 'all-but-references');
        if (c !== null) throw c;
        for (const r of repoRefs) {
          this.refs.delete(fullString(r));
          records.push({ Untagged: familiarString(r) });
        }
        await this.saveRepositories();
      }

      const c = this.deleteConflict(id, user, opts.force ? 'hard' : 'all');
      if (c !== null) {
        // Untagging by name already happened; the image stays while something still uses it.
        if (removedRepositoryRef && (this.refsOf(id).length > 0 || user !== null)) return records;
        throw c;
      }
      for (const r of this.refsOf(id)) {
        this.refs.delete(fullString(r));
        records.push({ Untagged: familiarString(r) });
      }
      await this.saveRepositories();
      this.images.delete(id);
      await fs.rm(this.p('imagedb/content/sha256', hex(id)), { force: true });
      await fs.rm(this.p('imagedb/metadata/sha256', hex(id)), { recursive: true, force: true });
      records.push({ Deleted: id });
      for (const chainId of await this.releaseUnusedLayers()) records.push({ Deleted: chainId });
      this.log.info({ image: id }, 'image deleted');
      void opts.noprune; // imported images have no parents to prune
      return records;
    });
  }

  private deleteConflict(id: string, user: { id: string; running: boolean } | null, mask: 'hard' | 'all' | 'all-but-references'): BerthError | null {
    const mk = (hard: boolean, message: string): BerthError =>
      conflict(`conflict: unable to delete ${shortId(id)} (${hard ? 'cannot be forced' : 'must be forced'}) - ${message}`, id);
    if ([...this.images.values()].some((i) => i.config.parent === id)) return mk(true, 'image has dependent child images');
    if (user?.running) return mk(true, `image is being used by running container ${shortId(user.id)}`);
    if (mask === 'hard') return null;
    if (mask === 'all' && this.refsOf(id).length > 0) return mk(false, 'image is referenced in multiple repositories');
    if (user !== null && !user.running) return mk(false, `image is being used by stopped container ${shortId(user.id)}`);
    return null;
  }

  /** Removes layers no image and no container layer needs; answers their chain ids. */
  private async releaseUnusedLayers(): Promise<string[]> {
    const used = new Set<string>();
    const mark = (c: string | null): void => {
      for (; c !== null && !used.has(c); c = this.layers.get(c)?.parent ?? null) used.add(c);
    };
    for (const img of this.images.values()) mark(this.topLayerOf(img));
    for (const m of this.mounts.values()) mark(m.parent);
    for (const c of this.pins.keys()) mark(c);
    const removed: string[] = [];
    for (const layer of [...this.layers.values()]) {
      if (used.has(layer.chainId)) continue;
      // Record first: a crash after this leaves an orphan driver dir, never a record without data.
      await fs.rm(this.p('layerdb/sha256', hex(layer.chainId)), { recursive: true, force: true });
      this.layers.delete(layer.chainId);
      await this.driver.remove(layer.cacheId);
      removed.push(layer.chainId);
    }
    return removed;
  }

  // ---- container layers ----

  private mountOf(containerId: string): MountRecord {
    const m = this.mounts.get(containerId);
    if (m === undefined) throw new BerthError('BERTH_LAYER_NOT_FOUND', `no container layer for ${containerId}`, { details: { containerId } });
    return m;
  }

  /**
   * A read-write layer for the container on top of the image's layers. `volatile`: the layer
   * goes with the container when it ends (`--rm`), so the driver may skip syncing it.
   */
  async createContainerLayer(containerId: string, imageId: string, opts: { volatile?: boolean; storageOpt?: Record<string, string> } = {}): Promise<void> {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId))
      throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid container id ${JSON.stringify(containerId)}`, { details: { containerId } });
    await this.serial(async () => {
      if (this.mounts.has(containerId)) throw new BerthError('BERTH_STORAGE', `container layer for ${containerId} already exists`, { details: { containerId } });
      const img = this.lookup(imageId);
      const top = this.topLayerOf(img);
      const parentCache = top === null ? '' : this.layers.get(top)?.cacheId;
      if (parentCache === undefined) throw new BerthError('BERTH_LAYER_NOT_FOUND', `layer ${top} of image ${shortId(img.id)} is missing`, { details: { layerId: top } });
      const mountId = randomId();
      const createOpts = { ...(opts.volatile === true ? { volatile: true } : {}), ...(opts.storageOpt && Object.keys(opts.storageOpt).length > 0 ? { storageOpt: opts.storageOpt } : {}) };
      await this.driver.createReadWrite(mountId, parentCache, Object.keys(createOpts).length > 0 ? createOpts : undefined);
      try {
        const files: Record<string, string> = { 'mount-id': mountId };
        if (top !== null) files.parent = top;
        await atomicRecordDir(this.p('layerdb/tmp'), this.p('layerdb/mounts', containerId), files);
      } catch (err) {
        await this.driver.remove(mountId).catch(() => undefined);
        throw storageError(`record container layer ${containerId}`, err);
      }
      this.mounts.set(containerId, { containerId, mountId, parent: top });
    });
  }

  /** Mounts (counted) and answers the container's rootfs path. */
  async mountContainerLayer(containerId: string): Promise<string> {
    return this.driver.get(this.mountOf(containerId).mountId);
  }

  async unmountContainerLayer(containerId: string): Promise<void> {
    await this.driver.put(this.mountOf(containerId).mountId);
  }

  async removeContainerLayer(containerId: string): Promise<void> {
    await this.serial(async () => {
      const m = this.mountOf(containerId);
      // Record first, then data: a crash in between leaves only an orphan driver dir.
      await fs.rm(this.p('layerdb/mounts', containerId), { recursive: true, force: true });
      this.mounts.delete(containerId);
      await this.driver.remove(m.mountId);
      // A layer kept only for this container (its image was force-removed) goes now.
      await this.releaseUnusedLayers();
    });
  }

  /** A tar of the container's merged filesystem (docker export); the mount is released when the stream ends. */
  async exportContainer(containerId: string): Promise<Readable> {
    const m = this.mountOf(containerId);
    const root = await this.driver.get(m.mountId);
    return tarTree(root, () => this.driver.put(m.mountId));
  }

  /** SizeRw: bytes of the container's own changes. */
  async size(containerId: string): Promise<number> {
    const m = this.mountOf(containerId);
    const parentCache = m.parent === null ? '' : (this.layers.get(m.parent)?.cacheId ?? '');
    return this.driver.diffSize(m.mountId, parentCache);
  }

  /** GraphDriver name and data for container inspect. */
  async containerGraphDriver(containerId: string): Promise<{ Name: string; Data: Record<string, string> | null }> {
    const m = this.mountOf(containerId);
    const md = await this.driver.getMetadata(m.mountId).catch((err: unknown) => {
      if (isNotFound(err)) return {};
      throw err;
    });
    return { Name: this.driver.name, Data: Object.keys(md).length === 0 ? null : md };
  }

  // ---- diff, commit, history, prune, df (see container-ops.ts) ----

  private access(): StoreAccess {
    return {
      driver: this.driver,
      log: this.log,
      images: this.images,
      layers: this.layers,
      mounts: this.mounts,
      p: (...parts) => this.p(...parts),
      serial: (fn) => this.serial(fn),
      lookup: (ref) => this.lookup(ref),
      topLayerOf: (img) => this.topLayerOf(img as ImageRecord),
      repoTags: (id) => this.repoTags(id),
      isDangling: (id) => this.refsOf(id).length === 0,
      setTag: (ref, id) => this.setTag(ref, id),
      remove: (ref, opts, inUse) => this.remove(ref, opts, inUse),
      list: () => this.list({ all: true }),
    };
  }

  /** `docker diff`: the container layer's changes, sorted by path. */
  changes(containerId: string): Promise<ContainerChange[]> {
    return containerChanges(this.access(), containerId);
  }

  /** `docker commit`: a new image from the container layer; answers its id. */
  commit(containerId: string, opts: CommitOptions): Promise<string> {
    return commitContainer(this.access(), containerId, opts);
  }

  /** `docker history`, newest first. */
  async history(ref: string): Promise<ImageHistoryItem[]> {
    return imageHistory(this.access(), ref);
  }

  /** `docker image prune`. */
  prune(opts: PruneImagesOptions, isInUse: ImageInUse): Promise<ImagesPruneResponse> {
    return pruneImages(this.access(), opts, isInUse);
  }

  /** The image part of `docker system df`. */
  diskUsage(): Promise<ImageDiskUsage> {
    return imageDiskUsage(this.access());
  }
}

function conflict(message: string, ref: string): BerthError {
  return new BerthError('BERTH_IMAGE_CONFLICT', message, { details: { reference: ref } });
}

/** Whether `ref` names the image by a reference rather than by (a prefix of) its id. */
function isRefByName(ref: string, id: string): boolean {
  const prefix = idPrefixOf(ref);
  if (prefix !== null && hex(id).startsWith(prefix)) {
    // A hex string that is also a tag name still counts as an id when it is one.
    return false;
  }
  return true;
}

/** Docker's isSingleReference: one tag (and digests of that same repository) at most. */
function isSingleReference(refs: Reference[]): boolean {
  if (refs.length <= 1) return refs.length === 1;
  let single: Reference | null = null;
  const canonical = new Set<string>();
  for (const r of refs) {
    if (r.digest !== undefined) canonical.add(familiarName(r));
    else if (single === null) single = r;
    else return false;
  }
  const s = single ?? refs[0]!;
  return canonical.size === 1 && canonical.has(familiarName(s));
}

/** Docker's reference filter: a glob on the familiar name or name:tag. */
function matchReference(pattern: string, tagged: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
  );
  const name = tagged.replace(/[:@][^/:@]*$/, '');
  return re.test(tagged) || re.test(name);
}

/** The uncompressed bytes of an import: gzip and zstd are detected by their magic; xz and bzip2 are refused. */
async function* decompressed(src: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  // Enough bytes for the longest magic (xz, 6), however the stream is chunked.
  let head = Buffer.alloc(0);
  let first = await it.next();
  while (!first.done) {
    head = Buffer.concat([head, Buffer.from(first.value as Buffer)]);
    if (head.length >= 6) break;
    first = await it.next();
  }
  if (head.length === 0) throw new BerthError('BERTH_ARCHIVE_INVALID', 'import: empty archive');
  const ended = first.done === true;
  const rest = (async function* () {
    yield head;
    if (ended) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield asBuffer(r.value);
  })();
  if (head[0] === 0x1f && head[1] === 0x8b) {
    // pipe() does not forward a source error: without this, a client that goes away mid-import
    // is an unhandled 'error' (the daemon dies) or a gunzip that waits forever.
    const gunzip = createGunzip(GUNZIP_OPTIONS);
    yield* Readable.from(rest).on('error', (err) => gunzip.destroy(err)).pipe(gunzip) as AsyncIterable<Buffer>;
    return;
  }
  if (isZstd(head)) {
    yield* zstdDecompress(rest, 'import');
    return;
  }
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) || head.subarray(0, 3).toString('latin1') === 'BZh')
    throw new BerthError('BERTH_ARCHIVE_INVALID', 'import: xz and bzip2 archives are not supported; use plain tar or gzip');
  yield* rest;
}
