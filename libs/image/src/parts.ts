/**
 * An image from its parts and back: the primitives under load, save, pull and push.
 *
 *   store.addImage(input: AddImageInput): Promise<string>            // -> 'sha256:<image id>'
 *     AddImageInput = {
 *       config: Buffer;                       // the image config's exact bytes (id = their sha256)
 *       layers: { diffId?: string; open(): Promise<Readable> }[];  // bottom first, one per rootfs.diff_ids
 *       tags: string[];                       // references to point at the image ('busybox:1', 'x@sha256:..')
 *     }
 *   store.layerTar(chainId: string): Promise<Readable>                // uncompressed layer tar
 *   store.layerTarSize(chainId: string): Promise<number | null>       // its byte size, null when unknown
 *   store.imageParts(ref: string): Promise<ImageParts>
 *     ImageParts = { id: string; config: Buffer; repoTags: string[];
 *                    layers: { diffId: string; chainId: string; size: number }[] }
 *
 * addImage checks everything before it changes anything it cannot undo: the config must be JSON
 * with `rootfs.type` "layers" and sha256 diff_ids, one layer per diff_id (a given `diffId` must be
 * the config's), every tag a valid reference (BERTH_REFERENCE_INVALID). Layers are applied in
 * order on the graph driver, each on its parent's chain; a layer whose chainID is already stored
 * is reused and its `open()` never called (a puller skips the download). `open()` answers a tar,
 * plain or gzip. Each applied layer's digest must equal its diff_id, else BERTH_ARCHIVE_INVALID
 * naming the layer. A failure removes the half-written layer and every layer this call stored
 * that no image uses; images, tags and pre-existing layers stay as they were.
 *
 * layerTar answers the tar that hashes to the layer's diffID (reassembled from the split
 * recorded when the layer was applied; for a layer stored without one, the driver's diff).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { isZstd, zstdDecompress } from '@berth/archive';
import { BerthError } from '@berth/errors';
import type { Logger } from '@berth/log';
import type { GraphDriver } from '@berth/plugin-api';
import { chainIdOf, sha256Digest } from './chain.js';
import { COALESCE, GUNZIP_OPTIONS, asBuffer, coalesce } from './chunks.js';
import { atomicWrite, randomId, syncDir } from './fsutil.js';
import { parseNormalizedReference, type Reference } from './reference.js';
import { TarSplitter, assembleTar, splitTarSize } from './tarsplit.js';
import type { ImageConfig } from './types.js';

export const TAR_SPLIT_FILE = 'tar-split.json.gz';

export interface AddImageLayer {
  /** When known, must equal the config's diff_id at this position. */
  diffId?: string;
  /**
   * The layer already applied by stageLayer: taken over as it is when it sits on this
   * position's parent, else `open()` is used (which may read it back with stagedTar).
   */
  staged?: StagedLayer;
  /** The layer tar (plain or gzip); called only when the layer is not stored yet. */
  open(): Promise<Readable>;
}

export interface AddImageInput {
  config: Buffer;
  layers: AddImageLayer[];
  tags: string[];
}

export interface ImageParts {
  id: string;
  config: Buffer;
  repoTags: string[];
  layers: { diffId: string; chainId: string; size: number }[];
}

/** The store's state these primitives work on (ImageStore hands it over; not exported). */
export interface StoreInternals {
  root: string;
  driver: GraphDriver;
  log: Logger;
  layers: Map<string, { chainId: string; diffId: string; parent: string | null; size: number; cacheId: string }>;
  images: Map<string, { id: string; config: ImageConfig; lastTagTime: string | null }>;
  /** Chain ids an operation in flight relies on: never released while listed. */
  pins: Map<string, number>;
  serial<T>(fn: () => Promise<T>): Promise<T>;
  setTag(ref: Reference, id: string): Promise<void>;
  releaseUnusedLayers(): Promise<string[]>;
  lookupId(ref: string): string;
  repoTags(id: string): string[];
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const hex = (id: string): string => (id.startsWith('sha256:') ? id.slice(7) : id);

function invalid(message: string, details: Record<string, unknown> = {}): BerthError {
  return new BerthError('BERTH_ARCHIVE_INVALID', message, { details });
}

/** The config's diff ids, after the checks addImage promises. */
export function parseImageConfig(raw: Buffer): { config: ImageConfig; diffIds: string[] } {
  let config: unknown;
  try {
    config = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw invalid(`invalid image config: ${(err as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw invalid('invalid image config: not a JSON object');
  const rootfs = (config as { rootfs?: { type?: unknown; diff_ids?: unknown } }).rootfs;
  if (rootfs === undefined || rootfs === null || rootfs.type !== 'layers') throw invalid('invalid image config: rootfs.type must be "layers"');
  const ids = rootfs.diff_ids ?? [];
  if (!Array.isArray(ids) || !ids.every((d): d is string => typeof d === 'string' && DIGEST.test(d)))
    throw invalid('invalid image config: rootfs.diff_ids must be sha256 digests');
  return { config: config as ImageConfig, diffIds: ids };
}

/** Reference strings -> references with a tag or digest (latest when neither). Throws BERTH_REFERENCE_INVALID. */
export function parseTags(tags: readonly string[]): Reference[] {
  return tags.map((t) => {
    const r = parseNormalizedReference(t);
    if (r.tag === undefined && r.digest === undefined) r.tag = 'latest';
    return r;
  });
}

/** The tar bytes of a layer stream: gzip and zstd are detected by their magic; xz and bzip2 are refused. */
async function* plainTar(src: AsyncIterable<Buffer | string>, what: string): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let r = await it.next();
  while (!r.done && head.length < 6) {
    head = Buffer.concat([head, Buffer.from(r.value as Buffer)]);
    if (head.length >= 6) break;
    r = await it.next();
  }
  if (head.length === 0) throw invalid(`${what}: empty layer`);
  const rest = (async function* () {
    yield head;
    if (r.done) return;
    for (let n = await it.next(); !n.done; n = await it.next()) yield asBuffer(n.value);
  })();
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = createGunzip(GUNZIP_OPTIONS);
    const piped = Readable.from(rest).on('error', (err) => gunzip.destroy(err));
    piped.pipe(gunzip);
    try {
      yield* gunzip as AsyncIterable<Buffer>;
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw invalid(`${what}: corrupt gzip data: ${(err as Error).message}`);
    }
    return;
  }
  if (isZstd(head)) {
    yield* zstdDecompress(rest, what);
    return;
  }
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) || head.subarray(0, 3).toString('latin1') === 'BZh')
    throw invalid(`${what}: xz and bzip2 layers are not supported`);
  yield* rest;
}

function pin(s: StoreInternals, chain: string): void {
  s.pins.set(chain, (s.pins.get(chain) ?? 0) + 1);
}
function unpin(s: StoreInternals, chain: string): void {
  const n = (s.pins.get(chain) ?? 1) - 1;
  if (n <= 0) s.pins.delete(chain);
  else s.pins.set(chain, n);
}

/** A layer's split being recorded into a temporary record dir under `layerdb/tmp`. */
export interface SplitRecording {
  tmpDir: string;
  push(chunk: Buffer): Promise<void>;
  /** Completes the split file; the dir can then become a layer record (commitRecord). */
  finish(): Promise<void>;
  /** Drops the dir. */
  abort(): Promise<void>;
}

export async function startSplit(root: string): Promise<SplitRecording> {
  const tmpDir = path.join(root, 'layerdb/tmp', randomBytes(8).toString('hex'));
  await fs.mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const gz = createGzip({ level: 1 });
  const file = createWriteStream(path.join(tmpDir, TAR_SPLIT_FILE), { mode: 0o600 });
  file.on('error', (err) => gz.destroy(err));
  gz.pipe(file);
  const splitter = new TarSplitter(gz);
  return {
    tmpDir,
    push: (chunk) => splitter.push(chunk),
    async finish() {
      await splitter.finish();
      gz.end();
      await finished(file);
    },
    async abort() {
      gz.destroy();
      file.destroy();
      await fs.rm(tmpDir, { recursive: true, force: true });
    },
  };
}

/**
 * Applies one layer tar on `parentCache`, hashing and splitting it on the way; answers the
 * digest, size and the temporary record dir that holds the split.
 */
async function applyOne(
  s: StoreInternals,
  cacheId: string,
  parentCache: string,
  src: Readable,
  what: string,
): Promise<{ diffId: string; size: number; tmpDir: string }> {
  const rec = await startSplit(s.root);
  const hash = createHash('sha256');
  const it = plainTar(src, what)[Symbol.asyncIterator]();
  let done = false;
  // An error of the source (a digest check at its end, a broken gzip) is the layer's error,
  // whatever the driver made of the stream it saw fail.
  let failed: { err: unknown } | null = null;
  const next = async (): Promise<IteratorResult<Buffer>> => {
    try {
      return await it.next();
    } catch (err) {
      failed ??= { err };
      throw err;
    }
  };
  const feed = async (b: Buffer): Promise<void> => {
    hash.update(b);
    await rec.push(b);
  };
  // Not a for-await: a driver that stops reading early must not close the source, whose rest
  // still counts for the digest.
  const through = async function* (): AsyncGenerator<Buffer> {
    for (;;) {
      const r = await next();
      if (r.done) {
        done = true;
        return;
      }
      await feed(r.value);
      yield r.value;
    }
  };
  try {
    let size: number;
    try {
      size = await s.driver.applyDiff(cacheId, parentCache, Readable.from(through()));
    } catch (caught) {
      throw layerError(what, (failed as { err: unknown } | null)?.err ?? caught);
    }
    while (!done && (failed as { err: unknown } | null) === null) {
      const r = await next().catch((err: unknown) => {
        throw layerError(what, err);
      });
      if (r.done) done = true;
      else await feed(r.value);
    }
    const f = failed as { err: unknown } | null;
    if (f !== null) throw layerError(what, f.err);
    await rec.finish();
    return { diffId: `sha256:${hash.digest('hex')}`, size, tmpDir: rec.tmpDir };
  } catch (err) {
    await it.return?.(undefined).catch(() => undefined);
    await rec.abort();
    throw err;
  }
}

/**
 * A layer applied before the image it belongs to is known (load reads layers before the
 * manifest that names them): a driver layer on `parent`, its digest and split recorded. addImage
 * takes it over when it lands on the same parent; dropStaged removes the rest.
 */
export interface StagedLayer {
  cacheId: string;
  parent: StagedLayer | null;
  diffId: string;
  size: number;
  /** The temporary record dir with the split (moved into layerdb when taken over). */
  tmpDir: string;
  state: 'staged' | 'adopted' | 'dropped';
}

export async function stageLayer(s: StoreInternals, parent: StagedLayer | null, src: Readable, what: string): Promise<StagedLayer> {
  if (parent !== null && parent.state !== 'staged') throw new BerthError('BERTH_INTERNAL', `stage ${what}: parent layer is no longer staged`);
  const cacheId = randomId();
  const parentCache = parent?.cacheId ?? '';
  await s.driver.create(cacheId, parentCache);
  try {
    const applied = await applyOne(s, cacheId, parentCache, src, what);
    return { cacheId, parent, diffId: applied.diffId, size: applied.size, tmpDir: applied.tmpDir, state: 'staged' };
  } catch (err) {
    await s.driver.remove(cacheId).catch(() => undefined);
    throw err;
  }
}

/** Removes staged layers not taken over, children first. */
export async function dropStaged(s: StoreInternals, layers: readonly StagedLayer[]): Promise<void> {
  for (const l of [...layers].reverse()) {
    if (l.state !== 'staged') continue;
    l.state = 'dropped';
    await s.driver.remove(l.cacheId).catch((err: unknown) => s.log.warn({ err, layerId: l.cacheId }, 'remove staged layer'));
    await fs.rm(l.tmpDir, { recursive: true, force: true });
  }
}

/** A staged layer's tar again (the bytes it was applied from), for applying it on another parent. */
export async function stagedTar(s: StoreInternals, l: StagedLayer): Promise<Readable> {
  if (l.state !== 'staged') throw new BerthError('BERTH_INTERNAL', `staged layer ${l.diffId} is ${l.state}`);
  const root = await s.driver.get(l.cacheId);
  const src = Readable.from(coalesce(assembleTar(path.join(l.tmpDir, TAR_SPLIT_FILE), root, l.diffId)), { objectMode: false, highWaterMark: 2 * COALESCE });
  let released = false;
  src.on('close', () => {
    if (released) return;
    released = true;
    void s.driver.put(l.cacheId).catch((err: unknown) => s.log.warn({ err, layerId: l.cacheId }, 'release staged layer'));
  });
  return src;
}

function layerError(what: string, err: unknown): BerthError {
  if (err instanceof BerthError) return new BerthError(err.code, `${what}: ${err.message}`, { cause: err, details: { layer: what } });
  return new BerthError('BERTH_STORAGE', `image store: apply ${what}: ${(err as Error).message}`, { cause: err });
}

/** Moves a finished temp record (with its split file) into layerdb. */
export async function commitRecord(root: string, tmpDir: string, rec: { chainId: string; diffId: string; parent: string | null; size: number; cacheId: string }): Promise<void> {
  const files: Record<string, string> = { diff: rec.diffId, size: String(rec.size), 'cache-id': rec.cacheId };
  if (rec.parent !== null) files.parent = rec.parent;
  for (const [name, content] of Object.entries(files)) {
    const fh = await fs.open(path.join(tmpDir, name), 'w', 0o600);
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  const dest = path.join(root, 'layerdb/sha256', hex(rec.chainId));
  await fs.rename(tmpDir, dest);
  await syncDir(path.dirname(dest));
}

export async function addImage(s: StoreInternals, input: AddImageInput): Promise<string> {
  const { config, diffIds } = parseImageConfig(input.config);
  if (input.layers.length !== diffIds.length)
    throw invalid(`image config lists ${diffIds.length} layers, ${input.layers.length} given`, { layers: input.layers.length });
  input.layers.forEach((l, i) => {
    if (l.diffId !== undefined && l.diffId !== diffIds[i])
      throw invalid(`layer ${i + 1} (${l.diffId}): the image config says ${diffIds[i]}`, { layer: l.diffId });
  });
  const refs = parseTags(input.tags);
  const id = sha256Digest(input.config);

  const pinned: string[] = [];
  const mine: string[] = [];
  let parent: string | null = null;
  let parentCache = '';
  try {
    for (const [i, layer] of input.layers.entries()) {
      const diffId = diffIds[i]!;
      const chainId = chainIdOf(parent, diffId);
      const what = `layer ${i + 1} (${diffId})`;
      const existing = await s.serial(async () => {
        const rec = s.layers.get(chainId);
        if (rec !== undefined) {
          pin(s, chainId);
          pinned.push(chainId);
        }
        return rec;
      });
      if (existing !== undefined) {
        parent = chainId;
        parentCache = existing.cacheId;
        continue;
      }
      const st = layer.staged;
      let cacheId: string;
      let applied: { diffId: string; size: number; tmpDir: string };
      if (st !== undefined && st.state === 'staged' && (st.parent?.cacheId ?? '') === parentCache) {
        // Applied already, on this very parent: taken over (dropStaged removes it otherwise).
        if (st.diffId !== diffId) throw invalid(`${what}: content digest ${st.diffId} does not match`, { layer: diffId, actual: st.diffId });
        cacheId = st.cacheId;
        applied = { diffId: st.diffId, size: st.size, tmpDir: st.tmpDir };
        st.state = 'adopted';
      } else {
        cacheId = randomId();
        await s.driver.create(cacheId, parentCache);
        try {
          const src = await layer.open();
          applied = await applyOne(s, cacheId, parentCache, src, what);
          if (applied.diffId !== diffId) {
            await fs.rm(applied.tmpDir, { recursive: true, force: true });
            throw invalid(`${what}: content digest ${applied.diffId} does not match`, { layer: diffId, actual: applied.diffId });
          }
        } catch (err) {
          await s.driver.remove(cacheId).catch(() => undefined);
          throw err;
        }
      }
      const fromStaged = st !== undefined && st.cacheId === cacheId;
      const use = await s.serial(async () => {
        const other = s.layers.get(chainId);
        if (other !== undefined) {
          // Stored meanwhile by someone else: theirs is as good as ours.
          pin(s, chainId);
          pinned.push(chainId);
          return { keep: false, cacheId: other.cacheId };
        }
        const rec = { chainId, diffId, parent, size: applied.size, cacheId };
        try {
          await commitRecord(s.root, applied.tmpDir, rec);
        } catch (err) {
          if (fromStaged) st.state = 'staged';
          else await fs.rm(applied.tmpDir, { recursive: true, force: true });
          throw err;
        }
        s.layers.set(chainId, rec);
        pin(s, chainId);
        pinned.push(chainId);
        mine.push(chainId);
        return { keep: true, cacheId };
      });
      if (!use.keep) {
        // A staged layer stays for dropStaged: staged children may sit on it.
        if (fromStaged) st.state = 'staged';
        else {
          await fs.rm(applied.tmpDir, { recursive: true, force: true });
          await s.driver.remove(cacheId).catch(() => undefined);
        }
      }
      parent = chainId;
      parentCache = use.cacheId;
      s.log.debug({ layerId: chainId }, use.keep ? 'layer stored' : 'layer already stored');
    }
    return await s.serial(async () => {
      if (!s.images.has(id)) {
        const file = path.join(s.root, 'imagedb/content/sha256', hex(id));
        await atomicWrite(file, input.config);
        s.images.set(id, { id, config, lastTagTime: null });
      }
      for (const r of refs) await s.setTag(r, id);
      s.log.info({ image: id, layers: diffIds.length, stored: mine.length }, 'image added');
      return id;
    });
  } catch (err) {
    for (const c of pinned.splice(0)) unpin(s, c);
    if (mine.length > 0) await s.serial(() => s.releaseUnusedLayers()).catch(() => undefined);
    if (err instanceof BerthError) throw err;
    throw new BerthError('BERTH_STORAGE', `image store: add image: ${(err as Error).message}`, { cause: err });
  } finally {
    for (const c of pinned) unpin(s, c);
  }
}

export async function layerTar(s: StoreInternals, chainId: string): Promise<Readable> {
  // Look up and pin in one serial section, so no release can drop the layer meanwhile.
  const rec = await s.serial(async () => {
    const r = s.layers.get(chainId);
    if (r === undefined) throw new BerthError('BERTH_LAYER_NOT_FOUND', `no layer ${chainId}`, { details: { layerId: chainId } });
    pin(s, chainId);
    return r;
  });
  let root: string;
  let split: string;
  try {
    const parentCache = rec.parent === null ? '' : (s.layers.get(rec.parent)?.cacheId ?? '');
    split = path.join(s.root, 'layerdb/sha256', hex(chainId), TAR_SPLIT_FILE);
    const hasSplit = await fs
      .access(split)
      .then(() => true)
      .catch(() => false);
    if (!hasSplit) {
      const diff = await s.driver.diff(rec.cacheId, parentCache);
      let done = false;
      const unpinOnce = (): void => {
        if (done) return;
        done = true;
        unpin(s, chainId);
      };
      diff.on('close', unpinOnce);
      if (diff.destroyed) unpinOnce();
      return diff;
    }
    root = await s.driver.get(rec.cacheId);
  } catch (err) {
    unpin(s, chainId);
    throw err;
  }
  const out = new PassThrough();
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    unpin(s, chainId);
    void s.driver.put(rec.cacheId).catch((err: unknown) => s.log.warn({ err, layerId: chainId }, 'release layer after tar'));
  };
  const src = Readable.from(coalesce(assembleTar(split, root, rec.diffId)), { objectMode: false, highWaterMark: 2 * COALESCE });
  src.on('error', (err) => {
    out.destroy(err);
    release();
  });
  src.on('end', release);
  out.on('close', () => {
    if (!src.destroyed) src.destroy();
    release();
  });
  src.pipe(out);
  return out;
}

export async function imageParts(s: StoreInternals, ref: string): Promise<ImageParts> {
  const id = s.lookupId(ref);
  const img = s.images.get(id)!;
  const config = await fs.readFile(path.join(s.root, 'imagedb/content/sha256', hex(id)));
  let parent: string | null = null;
  const layers = (img.config.rootfs?.diff_ids ?? []).map((diffId) => {
    parent = chainIdOf(parent, diffId);
    return { diffId, chainId: parent, size: s.layers.get(parent)?.size ?? 0 };
  });
  return { id, config, repoTags: s.repoTags(id), layers };
}

/** The size of the tar layerTar gives, from the split record; null for a layer stored without one. */
export async function layerTarSize(s: StoreInternals, chainId: string): Promise<number | null> {
  if (!s.layers.has(chainId)) throw new BerthError('BERTH_LAYER_NOT_FOUND', `no layer ${chainId}`, { details: { layerId: chainId } });
  const split = path.join(s.root, 'layerdb/sha256', hex(chainId), TAR_SPLIT_FILE);
  try {
    return await splitTarSize(split);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
