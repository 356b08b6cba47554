/**
 * `docker save`: images as one tar, in docker-archive form as dockerd 20.10 writes it
 * (`manifest.json`, `repositories`, `<id>.json`, `<layer>/{VERSION,json,layer.tar}`) and, in the
 * same tar, the OCI image layout docker 25+ adds (`oci-layout`, `index.json`, `blobs/sha256/`),
 * whose layer blobs are symlinks to the layer.tar files (one copy of each layer). Streamed: one
 * layer at a time, never a whole layer in memory. Entries carry mtime 0, so saving the same
 * images twice gives the same bytes.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { encodeHeader, type TarHeader } from '@berth/archive';
import { BerthError } from '@berth/errors';
import { chainIdOf, sha256Digest } from './chain.js';
import { COALESCE, coalesce } from './chunks.js';
import type { ImageParts } from './parts.js';
import { familiarName, familiarString, fullString, idPrefixOf, asFullImageId, parseNormalizedReference } from './reference.js';
import type { ImageStore } from './store.js';

export interface SaveImage {
  parts: ImageParts;
  /** Familiar `repo:tag` names written for the image (RepoTags). */
  tags: string[];
}

const hex = (d: string): string => d.replace(/^sha256:/, '');

/**
 * Docker's name rules, resolved before any byte is written (a missing image is a 404, not a
 * broken stream): an id or id prefix saves the image without tags, `repo:tag` that tag,
 * `repo@digest` that image, and a bare repository name every tag of that repository.
 */
export async function planSave(store: ImageStore, names: string[]): Promise<SaveImage[]> {
  const out = new Map<string, SaveImage>();
  const add = async (ref: string, tag: string | null): Promise<void> => {
    const parts = await store.imageParts(ref);
    const e = out.get(parts.id) ?? { parts, tags: [] };
    if (tag !== null && !e.tags.includes(tag)) e.tags.push(tag);
    out.set(parts.id, e);
  };
  let listed: { Id: string; RepoTags: string[] }[] | null = null;
  for (const name of names) {
    if (asFullImageId(name) !== null) {
      await add(name, null);
      continue;
    }
    let r;
    try {
      r = parseNormalizedReference(name);
    } catch (err) {
      if (idPrefixOf(name) === null) throw err;
      await add(name, null);
      continue;
    }
    if (r.digest !== undefined) await add(name, null);
    else if (r.tag !== undefined) await add(name, familiarString(r));
    else {
      listed ??= await store.list({ all: true });
      const repo = familiarName(r);
      const tags = listed.flatMap((i) => i.RepoTags.filter((t) => familiarName(parseNormalizedReference(t)) === repo).map((t) => ({ id: i.Id, t })));
      if (tags.length === 0) {
        // Not a repository with tags: an id prefix, or `repo` meaning repo:latest (which then is missing).
        await add(idPrefixOf(name) !== null ? name : `${name}:latest`, idPrefixOf(name) !== null ? null : `${name}:latest`);
        continue;
      }
      for (const { id, t } of tags) await add(id, t);
    }
  }
  return [...out.values()];
}

/** A layer's tar as a file-backed or streamed source with its size and digest. */
interface LayerSource {
  size: number;
  digest: string;
  open(): Promise<Readable>;
  cleanup(): Promise<void>;
}

async function layerSource(store: ImageStore, chainId: string, diffId: string): Promise<LayerSource> {
  const size = await store.layerTarSize(chainId);
  if (size !== null) return { size, digest: diffId, open: () => store.layerTar(chainId), cleanup: async () => undefined };
  // No recorded split (a layer stored by an older berth): the driver's diff, spooled to learn
  // its size; its digest may differ from the diffID.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-save-'));
  const file = path.join(dir, 'layer.tar');
  const hash = createHash('sha256');
  let st: { size: number };
  try {
    const src = await store.layerTar(chainId);
    src.on('data', (b: Buffer) => hash.update(b));
    await pipeline(src, createWriteStream(file));
    st = await fs.stat(file);
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  return {
    size: st.size,
    digest: `sha256:${hash.digest('hex')}`,
    open: async () => createReadStream(file),
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

const emptyHeader = (name: string, type: TarHeader['type'], size: number, mode: number, linkname = ''): TarHeader => ({
  name,
  type,
  mode,
  uid: 0,
  gid: 0,
  size,
  mtime: 0,
  linkname,
  devmajor: 0,
  devminor: 0,
  xattrs: new Map(),
});

/** The docker-archive tar of planned images, streamed. Errors end the stream with that error. */
export function writeSave(store: ImageStore, images: SaveImage[]): Readable {
  return Readable.from(coalesce(saveMembers(store, images)), { objectMode: false, highWaterMark: 2 * COALESCE });
}

async function* saveMembers(store: ImageStore, images: SaveImage[]): AsyncGenerator<Buffer> {
  const dirs = new Set<string>();
  function* dir(name: string): Generator<Buffer> {
    if (dirs.has(name)) return;
    dirs.add(name);
    yield encodeHeader(emptyHeader(`${name}/`, 'dir', 0, 0o755));
  }
  function* file(name: string, data: Buffer | string): Generator<Buffer> {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    yield encodeHeader(emptyHeader(name, 'file', b.length, 0o644));
    yield b;
    yield padding(b.length);
  }

  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const index: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[] = [];
  const blobs = new Map<string, Buffer | { link: string }>();
  const written = new Map<string, { dir: string; digest: string; size: number }>();
  yield* file('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const img of images) {
    const config = img.parts.config;
    const parsed = JSON.parse(config.toString('utf8')) as { created?: string; os?: string; architecture?: string };
    yield* file(`${hex(img.parts.id)}.json`, config);
    blobs.set(hex(img.parts.id), config);
    const layerPaths: string[] = [];
    const ociLayers: { mediaType: string; digest: string; size: number }[] = [];
    let parentV1 = '';
    let chain: string | null = null;
    for (const [i, l] of img.parts.layers.entries()) {
      chain = chainIdOf(chain, l.diffId);
      // Docker's v1 layer ids depend on the image; ours on the chain alone, so shared layers share a dir.
      const v1 = hex(sha256Digest(`${parentV1} ${chain}`));
      let w = written.get(v1);
      if (w === undefined) {
        const src = await layerSource(store, l.chainId, l.diffId);
        try {
          yield* dir(v1);
          yield* file(`${v1}/VERSION`, '1.0');
          const json: Record<string, unknown> = { id: v1, created: parsed.created ?? '0001-01-01T00:00:00Z', os: parsed.os ?? 'linux' };
          if (parentV1 !== '') json.parent = parentV1;
          if (i === img.parts.layers.length - 1) json.architecture = parsed.architecture;
          yield* file(`${v1}/json`, JSON.stringify(json));
          yield encodeHeader(emptyHeader(`${v1}/layer.tar`, 'file', src.size, 0o644));
          const input = await src.open();
          let sent = 0;
          try {
            for await (const chunk of input) {
              const b = chunk as Buffer;
              sent += b.length;
              if (sent > src.size) throw new BerthError('BERTH_STORAGE', `save: layer ${l.diffId} is larger than its recorded ${src.size} bytes`);
              yield b;
            }
          } finally {
            input.destroy();
          }
          if (sent !== src.size) throw new BerthError('BERTH_STORAGE', `save: layer ${l.diffId} is ${sent} bytes, ${src.size} recorded`);
          yield padding(src.size);
        } finally {
          await src.cleanup();
        }
        w = { dir: v1, digest: src.digest, size: src.size };
        written.set(v1, w);
        blobs.set(hex(src.digest), { link: `../../${v1}/layer.tar` });
      }
      layerPaths.push(`${v1}/layer.tar`);
      ociLayers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: w.digest, size: w.size });
      parentV1 = v1;
    }
    manifest.push({ Config: `${hex(img.parts.id)}.json`, RepoTags: img.tags.length > 0 ? img.tags : null, Layers: layerPaths });
    for (const t of img.tags) {
      const r = parseNormalizedReference(t);
      if (parentV1 !== '' && r.tag !== undefined) (repositories[familiarName(r)] ??= {})[r.tag] = parentV1;
    }
    const ociManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: img.parts.id, size: config.length },
        layers: ociLayers,
      }),
    );
    const mDigest = sha256Digest(ociManifest);
    blobs.set(hex(mDigest), ociManifest);
    const base = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: mDigest, size: ociManifest.length };
    if (img.tags.length === 0) index.push(base);
    for (const t of img.tags) {
      const r = parseNormalizedReference(t);
      index.push({ ...base, annotations: { 'io.containerd.image.name': fullString(r), 'org.opencontainers.image.ref.name': r.tag ?? 'latest' } });
    }
  }
  yield* dir('blobs');
  yield* dir('blobs/sha256');
  for (const [h, b] of blobs) {
    if (Buffer.isBuffer(b)) yield* file(`blobs/sha256/${h}`, b);
    else yield encodeHeader(emptyHeader(`blobs/sha256/${h}`, 'symlink', 0, 0o777, b.link));
  }
  yield* file('index.json', JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index }));
  yield* file('manifest.json', JSON.stringify(manifest));
  yield* file('repositories', JSON.stringify(repositories));
  yield END_BLOCKS;
}

const END_BLOCKS = Buffer.alloc(1024);
const padding = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);
