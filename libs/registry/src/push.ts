import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { MediaType, sha256Of } from './manifest.js';
import type { PushBlobResult, Repository } from './repository.js';

export type LayerPushState = 'preparing' | 'waiting' | 'pushing' | 'exists' | 'mounted' | 'pushed';

/** Progress of a push; `diffId` names the layer, as Docker's push output does. */
export type PushEvent = { type: 'layer'; diffId: string; state: LayerPushState; current?: number; total?: number; from?: string };

export interface PushLayer {
  diffId: string;
  /** The uncompressed layer tar. */
  open(): Readable | Promise<Readable>;
}

export interface PushOptions {
  tag: string;
  /** The image config bytes, pushed unchanged (its digest is the image id). */
  config: Buffer;
  layers: readonly PushLayer[];
  tmpDir: string;
  /** Repositories of the same registry to try a cross-repository mount from. */
  mountFrom?: readonly string[];
  /** Upload in PATCH chunks of this size instead of one PUT. */
  chunkSize?: number;
  onEvent?: (e: PushEvent) => void;
  concurrency?: number;
}

export interface PushedImage {
  /** The manifest's digest and size, as `docker push` prints them. */
  digest: string;
  size: number;
  mediaType: string;
}

interface Compressed {
  file: string;
  digest: string;
  size: number;
}

async function gzipToFile(src: Readable, file: string): Promise<Compressed> {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  // Level 6 and no name or mtime in the header: the same tar gives the same blob, so a
  // second push of a layer finds it (HEAD) or mounts it.
  await pipeline(src, createGzip({ level: 6 }), tap, createWriteStream(file, { mode: 0o600 }));
  return { file, digest: `sha256:${hash.digest('hex')}`, size };
}

/**
 * Pushes an image as a Docker v2 schema 2 manifest: each layer gzip-compressed into
 * `tmpDir`, skipped when the registry has the blob, mounted from `mountFrom` when it can be,
 * else uploaded; then the config and the manifest under `tag`.
 */
export async function pushImage(repo: Repository, opts: PushOptions): Promise<PushedImage> {
  const files: string[] = [];
  const emit = (e: PushEvent): void => opts.onEvent?.(e);
  for (const l of opts.layers) emit({ type: 'layer', diffId: l.diffId, state: 'preparing' });
  // Docker says Waiting only for layers queued behind the concurrency limit.
  const n = Math.max(1, Math.min(opts.concurrency ?? 5, opts.layers.length));
  for (const l of opts.layers.slice(n)) emit({ type: 'layer', diffId: l.diffId, state: 'waiting' });
  try {
    const descriptors: { mediaType: string; size: number; digest: string }[] = new Array(opts.layers.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < opts.layers.length) {
        const i = next++;
        const l = opts.layers[i]!;
        const file = join(opts.tmpDir, `push-${l.diffId.slice(7, 19)}-${randomBytes(4).toString('hex')}.gz`);
        files.push(file);
        const c = await gzipToFile(await l.open(), file);
        descriptors[i] = { mediaType: MediaType.DockerLayerGzip, size: c.size, digest: c.digest };
        const pushOpts: Parameters<Repository['pushBlob']>[1] = {
          onProgress: (current, total) => emit({ type: 'layer', diffId: l.diffId, state: 'pushing', current, total }),
        };
        if (opts.mountFrom !== undefined) pushOpts.mountFrom = opts.mountFrom;
        if (opts.chunkSize !== undefined) pushOpts.chunkSize = opts.chunkSize;
        const r: { result: PushBlobResult; from?: string } = await repo.pushBlob(
          { digest: c.digest, size: c.size, open: (range) => createReadStream(c.file, range ?? {}) },
          pushOpts,
        );
        const done: PushEvent = { type: 'layer', diffId: l.diffId, state: r.result };
        if (r.from !== undefined) done.from = r.from;
        emit(done);
        await unlink(file).catch(() => undefined);
      }
    };
    const results = await Promise.allSettled(Array.from({ length: n }, worker));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;

    const configDigest = sha256Of(opts.config);
    await repo.pushBlob({ digest: configDigest, size: opts.config.length, open: () => Readable.from([opts.config]) });
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: { mediaType: MediaType.DockerConfig, size: opts.config.length, digest: configDigest },
      layers: descriptors,
    };
    const raw = Buffer.from(JSON.stringify(manifest, null, 3), 'utf8');
    const digest = await repo.putManifest(opts.tag, MediaType.DockerManifest, raw);
    return { digest, size: raw.length, mediaType: MediaType.DockerManifest };
  } finally {
    await Promise.all(files.map((f) => unlink(f).catch(() => undefined)));
  }
}
