import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { unlink } from 'node:fs/promises';
import { BerthError } from '@berth/errors';
import { hostPlatform, layerCompression, pickPlatform, type Descriptor, type FetchedManifestImage, type Platform } from './manifest.js';
import type { Repository } from './repository.js';

export type LayerPullState = 'waiting' | 'exists' | 'downloading' | 'verifying' | 'downloaded';

/** Progress of a pull; `id` is the layer's (compressed) digest, as Docker shows it. */
export type PullEvent =
  | { type: 'manifest'; digest: string; mediaType: string; layers: Descriptor[] }
  | { type: 'layer'; digest: string; state: LayerPullState; current?: number; total?: number };

export interface PullOptions {
  /** A tag or a `sha256:` digest. */
  reference: string;
  /** Directory for downloaded blobs (same filesystem as the store helps nothing: layers are applied, not moved). */
  tmpDir: string;
  platform?: Platform;
  /** True when the caller already has the layer with this diffID below the same parent chain. */
  have?: (index: number, diffIds: readonly string[]) => boolean | Promise<boolean>;
  /** True when the caller already has the image with this config digest: no layer is looked at. */
  haveImage?: (configDigest: string) => boolean | Promise<boolean>;
  onEvent?: (e: PullEvent) => void;
  /** Parallel downloads (Docker: 3). */
  concurrency?: number;
}

export interface PulledLayer {
  digest: string;
  mediaType: string;
  size: number;
  compression: 'gzip' | 'zstd' | 'none';
  diffId: string;
  /** The downloaded blob; undefined when `have` said the caller has the layer. */
  file: string | undefined;
}

export interface PulledImage {
  /** Digest of the manifest the reference named (the index's when it named one). */
  digest: string;
  /** Digest of the image manifest that was used. */
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  layers: PulledLayer[];
  /** Removes the downloaded files. */
  cleanup(): Promise<void>;
}

function protocol(message: string): BerthError {
  return new BerthError('BERTH_REGISTRY_PROTOCOL', message, {});
}

function diffIdsOf(config: Buffer, where: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(config.toString('utf8'));
  } catch {
    throw protocol(`image config of ${where} is not JSON`);
  }
  const ids = (parsed as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && /^sha256:[a-f0-9]{64}$/.test(d)))
    throw protocol(`image config of ${where} has no valid rootfs.diff_ids`);
  return ids as string[];
}

/**
 * Resolves a reference to an image manifest (an index picks the platform), fetches the
 * config and downloads the layers the caller lacks into `tmpDir`, each checked against its
 * digest. Nothing is stored: the caller registers the result, then calls `cleanup()`.
 */
export async function pullImage(repo: Repository, opts: PullOptions): Promise<PulledImage> {
  const where = `${repo.domain}/${repo.name}:${opts.reference}`;
  let top = await repo.getManifest(opts.reference);
  const digest = top.digest;
  if (top.parsed.kind === 'index') {
    const picked = pickPlatform(top.parsed.index, opts.platform ?? hostPlatform());
    top = await repo.getManifest(picked.digest);
    if (top.parsed.kind !== 'image') throw protocol(`${where}: the index entry ${picked.digest} is an index itself`);
  }
  const manifest = (top as FetchedManifestImage).parsed.manifest;
  opts.onEvent?.({ type: 'manifest', digest, mediaType: top.mediaType, layers: manifest.layers });
  const config = await repo.readBlob(manifest.config.digest);
  const diffIds = diffIdsOf(config, where);
  if (diffIds.length !== manifest.layers.length)
    throw protocol(`${where}: the manifest lists ${manifest.layers.length} layers, the image config ${diffIds.length}`);
  const layers: PulledLayer[] = manifest.layers.map((d, i) => {
    const compression = layerCompression(d.mediaType);
    if (compression === undefined) throw protocol(`${where}: layer ${d.digest} has an unsupported media type ${JSON.stringify(d.mediaType)}`);
    return { digest: d.digest, mediaType: d.mediaType, size: d.size, compression, diffId: diffIds[i]!, file: undefined };
  });
  const files: string[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.all(files.map((f) => unlink(f).catch(() => undefined)));
  };
  try {
    const todo: number[] = [];
    // Docker lists no layers for an image it has (`Image is up to date`).
    const whole = opts.haveImage !== undefined && (await opts.haveImage(manifest.config.digest));
    for (let i = 0; i < layers.length && !whole; i++) {
      if (opts.have !== undefined && (await opts.have(i, diffIds))) opts.onEvent?.({ type: 'layer', digest: layers[i]!.digest, state: 'exists' });
      else {
        todo.push(i);
        opts.onEvent?.({ type: 'layer', digest: layers[i]!.digest, state: 'waiting' });
      }
    }
    // The same blob listed twice is downloaded once.
    const byDigest = new Map<string, Promise<string>>();
    const fetchOne = (l: PulledLayer): Promise<string> => {
      const known = byDigest.get(l.digest);
      if (known !== undefined) return known;
      const file = join(opts.tmpDir, `pull-${l.digest.slice(7, 19)}-${randomBytes(4).toString('hex')}`);
      files.push(file);
      const p = repo
        .downloadBlob(l.digest, file, {
          size: l.size,
          onProgress: (current, total) => opts.onEvent?.({ type: 'layer', digest: l.digest, state: 'downloading', current, total }),
        })
        .then(() => {
          opts.onEvent?.({ type: 'layer', digest: l.digest, state: 'verifying' });
          opts.onEvent?.({ type: 'layer', digest: l.digest, state: 'downloaded' });
          return file;
        });
      byDigest.set(l.digest, p);
      return p;
    };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const l = layers[todo[next++]!]!;
        l.file = await fetchOne(l);
      }
    };
    const n = Math.max(1, Math.min(opts.concurrency ?? 3, todo.length));
    const results = await Promise.allSettled(Array.from({ length: n }, worker));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { digest, manifestDigest: top.digest, config, configDigest: manifest.config.digest, layers, cleanup };
}
