/**
 * `docker load`: a docker-archive (manifest.json, as `docker save` writes it, legacy or docker
 * 25+ layout) or an OCI image layout in a tar (oci-archive: index.json -> manifest -> config +
 * layers; nested indexes pick this host's platform), plain or gzip. The archive is read once,
 * never trusting its names (members come in any order): layers are applied as they arrive
 * (readArchive), small members are held in memory, anything else is spooled to a private temp
 * dir under sanitised names; symlinks and hard links are kept as a table and resolved inside
 * the archive. Every image is then stored with addImage, which checks the diffIDs; OCI blobs are
 * also checked against their digests. Layers no image takes are removed at the end.
 */
import { createHash } from 'node:crypto';
import * as fsSync from 'node:fs';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { isZstd, readTar, zstdDecompress } from '@berth/archive';
import type { JsonMessage } from '@berth/api';
import { BerthError } from '@berth/errors';
import { parseTags } from './parts.js';
import { GUNZIP_OPTIONS, asBuffer } from './chunks.js';
import { familiarString, fullString, parseNormalizedReference } from './reference.js';
import type { StagedLayer } from './parts.js';
import type { ImageStore } from './store.js';

const MAX_JSON = 16 << 20;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

function invalid(message: string): BerthError {
  return new BerthError('BERTH_ARCHIVE_INVALID', message);
}

/**
 * A read archive: the names of its regular files (small ones held in `mem`, layers applied as
 * they came in `staged`, anything else spooled under `dir`), links as a table.
 */
export interface Extracted {
  dir: string;
  files: Set<string>;
  links: Map<string, { target: string; hard: boolean }>;
  mem?: Map<string, Buffer>;
  staged?: Map<string, StagedMember>;
}

/** A member applied as a layer while the archive was read. */
export interface StagedMember {
  /** Null when applying it failed: `error` says why (only an error if an image uses it). */
  layer: StagedLayer | null;
  error?: unknown;
  /** sha256 of the member's bytes as stored (compressed or not), for OCI blob checks. */
  rawDigest: string | null;
}

/** A member name made relative and clean; null for names that leave the archive or are the root. */
export function cleanName(name: string): string | null {
  const n = path.posix.normalize(`/${name}`).slice(1).replace(/\/+$/, '');
  if (n === '' || n === '.' || n.startsWith('../') || n === '..') return null;
  return n;
}

/** Resolves a member through the archive's links; null when it is not a file of the archive. */
export function resolveMember(x: Extracted, name: string): string | null {
  let cur = cleanName(name);
  for (let hops = 0; cur !== null && hops < 40; hops++) {
    if (x.files.has(cur)) return cur;
    const l = x.links.get(cur);
    if (l === undefined) {
      // A link on a directory of the path (blobs -> elsewhere/blobs).
      const parts = cur.split('/');
      let replaced: string | null = null;
      for (let i = parts.length - 1; i > 0 && replaced === null; i--) {
        const prefix = parts.slice(0, i).join('/');
        const dl = x.links.get(prefix);
        if (dl !== undefined && !dl.hard) {
          const base = dl.target.startsWith('/') ? dl.target : path.posix.join(path.posix.dirname(prefix), dl.target);
          replaced = cleanName(`${base}/${parts.slice(i).join('/')}`);
        }
      }
      return replaced === null ? null : resolveMember(x, replaced);
    }
    cur = l.hard || l.target.startsWith('/') ? cleanName(l.target) : cleanName(path.posix.join(path.posix.dirname(cur), l.target));
  }
  return null;
}

async function* plain(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  // Enough bytes for the magic numbers, however the stream is chunked.
  let head = Buffer.alloc(0);
  let first = await it.next();
  while (!first.done) {
    head = Buffer.concat([head, Buffer.from(first.value)]);
    if (head.length >= 4) break;
    first = await it.next();
  }
  if (head.length === 0) return;
  const ended = first.done === true;
  const rest = (async function* () {
    yield head;
    if (ended) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield asBuffer(r.value);
  })();
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const g = createGunzip(GUNZIP_OPTIONS);
    Readable.from(rest)
      .on('error', (e) => g.destroy(e))
      .pipe(g);
    yield* g as AsyncIterable<Buffer>;
  } else if (isZstd(head)) yield* zstdDecompress(rest, 'load');
  else yield* rest;
}

/** What may be held in memory while an archive is read; the rest is spooled to disk. */
const MEM_TOTAL = 64 << 20;
const MEM_MEMBERS = 10_000;
/** Layers applied while reading (an image has at most 128 here); later ones are spooled to disk. */
const MAX_STAGED = 1000;

/** The first bytes of a member (at least `n`, or all of it), and the rest as a generator. */
async function peek(body: AsyncGenerator<Buffer>, n: number): Promise<{ head: Buffer; rest: AsyncGenerator<Buffer> }> {
  const parts: Buffer[] = [];
  let len = 0;
  let done = false;
  while (len < n) {
    const r = await body.next();
    if (r.done) {
      done = true;
      break;
    }
    parts.push(r.value);
    len += r.value.length;
  }
  const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts, len);
  const rest = (async function* () {
    if (head.length > 0) yield head;
    if (!done) yield* body;
  })();
  return { head, rest };
}

/** A layer's first bytes: gzip, zstd, or a tar header whose checksum holds. */
function looksLikeLayer(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
  if (isZstd(head)) return true;
  if (head.length < 512) return false;
  let sum = 8 * 32;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += head[i]!;
  const want = head.subarray(148, 156).toString('latin1').replace(/[\0 ].*$/s, '').trim();
  return want !== '' && /^[0-7]+$/.test(want) && parseInt(want, 8) === sum;
}

const V1_LAYER = /^([^/]+)\/layer\.tar$/;

/**
 * Reads the archive once: a member that is a layer (tar, gzip or zstd by its first bytes) is
 * applied right away with store.stageLayer, on the layer its legacy `<id>/json` names as parent,
 * else on the layer staged before it (docker save's order); small members stay in memory;
 * anything else is spooled under `x.dir`. Where a guess of the parent was wrong, addImage
 * applies the layer again from the staged copy. Docker extracts the whole archive to disk first;
 * reading it once is most of why a load here costs about what an import does (bench/storage).
 */
async function readArchive(
  store: ImageStore,
  src: AsyncIterable<Buffer>,
  x: Extracted,
  all: StagedLayer[],
  quiet: boolean,
  progress: (msg: JsonMessage) => void,
): Promise<void> {
  const mem = (x.mem ??= new Map());
  const staged = (x.staged ??= new Map());
  const made = new Set<string>(['.']);
  let memBytes = 0;
  let count = 0;
  let last: StagedLayer | null = null;
  const parentOf = (name: string): StagedLayer | null => {
    const v1 = V1_LAYER.exec(name)?.[1];
    if (v1 !== undefined) {
      const json = mem.get(`${v1}/json`);
      if (json !== undefined) {
        try {
          const p = (JSON.parse(json.toString('utf8')) as { parent?: unknown }).parent;
          if (typeof p !== 'string' || p === '') return null;
          const l = staged.get(`${p}/layer.tar`)?.layer;
          if (l !== undefined && l !== null) return l;
        } catch {
          // not the legacy json: guess as for any other member
        }
      }
    }
    return last !== null && last.state === 'staged' ? last : null;
  };
  try {
    for await (const { header: h, body } of readTar(plain(src))) {
      const name = cleanName(h.name);
      if (++count > 1_000_000) throw invalid('archive has too many members');
      if (name === null) continue;
      if (h.type === 'symlink' || h.type === 'link') {
        x.links.set(name, { target: h.linkname, hard: h.type === 'link' });
        continue;
      }
      if (h.type !== 'file') continue;
      x.links.delete(name);
      mem.delete(name);
      const { head, rest } = await peek(body, 512);
      if (h.size > 0 && all.length < MAX_STAGED && looksLikeLayer(head)) {
        // The digest of the stored bytes: the diffID for a plain tar, hashed apart for a compressed one.
        const compressed = isZstd(head) || (head[0] === 0x1f && head[1] === 0x8b);
        const raw = compressed ? createHash('sha256') : null;
        const pid = /[a-f0-9]{12}/.exec(name)?.[0] ?? name;
        let current = 0;
        let reported = -1;
        const counted = (async function* () {
          for await (const b of rest) {
            raw?.update(b);
            current += b.length;
            if (!quiet && (current - reported >= 1 << 20 || current === h.size)) {
              reported = current;
              progress({ status: 'Loading layer', progressDetail: { current, total: h.size }, id: pid });
            }
            yield b;
          }
        })();
        try {
          const layer = await store.stageLayer(parentOf(name), Readable.from(counted, { objectMode: false }), `archive member ${JSON.stringify(h.name)}`);
          all.push(layer);
          last = layer;
          staged.set(name, { layer, rawDigest: raw === null ? layer.diffId : `sha256:${raw.digest('hex')}` });
        } catch (err) {
          // A disk that fails is the load's failure; a member that does not apply is an error
          // only if an image uses it (the outer tar's own errors surface at the next member).
          if (err instanceof BerthError && err.code === 'BERTH_STORAGE') throw err;
          staged.set(name, { layer: null, error: err, rawDigest: null });
        }
        x.files.add(name);
        continue;
      }
      staged.delete(name);
      if (h.size <= MAX_JSON && memBytes + h.size <= MEM_TOTAL && mem.size < MEM_MEMBERS) {
        const parts: Buffer[] = [];
        for await (const b of rest) parts.push(b);
        const buf = Buffer.concat(parts);
        memBytes += buf.length;
        mem.set(name, buf);
        x.files.add(name);
        continue;
      }
      const parent = path.posix.dirname(name);
      if (!made.has(parent)) {
        fsSync.mkdirSync(path.join(x.dir, parent), { recursive: true, mode: 0o700 });
        made.add(parent);
      }
      // Names are clean and no link exists on disk: the file lands inside `dir`. A member
      // repeated, or a file where a directory was, is an error of the archive.
      let fd: number;
      try {
        fd = fsSync.openSync(path.join(x.dir, name), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW, 0o600);
      } catch (err) {
        throw diskError(err as NodeJS.ErrnoException, h.name) ?? invalid(`archive member ${JSON.stringify(h.name)}: ${(err as Error).message}`);
      }
      try {
        for await (const chunk of rest) {
          let off = 0;
          while (off < chunk.length) off += fsSync.writeSync(fd, chunk, off, chunk.length - off);
        }
      } finally {
        fsSync.closeSync(fd);
      }
      x.files.add(name);
    }
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw diskError(err as NodeJS.ErrnoException, null) ?? invalid(`invalid archive: ${(err as Error).message}`);
  }
}

/** A failed write of ours (a full disk, a read-only or failing one) is not the archive's fault. */
function diskError(err: NodeJS.ErrnoException, member: string | null): BerthError | null {
  if (err.syscall === undefined || err.code === undefined) return null;
  const where = member === null ? '' : ` member ${JSON.stringify(member)}`;
  return new BerthError('BERTH_STORAGE', `load: cannot store the archive${where}: ${err.message}`, { cause: err, details: { errno: err.code } });
}

async function readMember(x: Extracted, name: string, what: string): Promise<Buffer> {
  const m = resolveMember(x, name);
  if (m === null) throw invalid(`${what}: ${JSON.stringify(name)} is not in the archive`);
  const held = x.mem?.get(m);
  if (held !== undefined) return held;
  if (x.staged?.has(m)) throw invalid(`${what}: ${name} is a layer, not a JSON document`);
  const st = await fs.stat(path.join(x.dir, m));
  if (st.size > MAX_JSON) throw invalid(`${what}: ${name} is too large (${st.size} bytes)`);
  return fs.readFile(path.join(x.dir, m));
}

function parseJson(raw: Buffer, what: string): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw invalid(`${what}: invalid JSON: ${(err as Error).message}`);
  }
}

/** A member's stream, checked against `digest` when given (the error comes at its end). */
function memberStream(x: Extracted, member: string, digest: string | null, onBytes?: (n: number) => void): Readable {
  const src = Readable.from(
    (async function* () {
      const fh = await fs.open(path.join(x.dir, member), fsc.O_RDONLY | fsc.O_NOFOLLOW);
      const hash = digest === null ? null : createHash('sha256');
      try {
        for await (const chunk of fh.createReadStream({ autoClose: false, highWaterMark: 1 << 20 })) {
          hash?.update(chunk as Buffer);
          onBytes?.((chunk as Buffer).length);
          yield chunk as Buffer;
        }
      } finally {
        await fh.close();
      }
      if (hash !== null) {
        const got = `sha256:${hash.digest('hex')}`;
        if (got !== digest) throw invalid(`blob ${digest}: content digest ${got} does not match`);
      }
    })(),
  );
  return src;
}

/** One image of an archive, ready for addImage. */
export interface ArchiveImage {
  config: Buffer;
  /** Archive members of the layers, bottom first, with the digest to check (OCI) or null. */
  layers: { member: string; digest: string | null }[];
  tags: string[];
}

/** manifest.json (docker-archive) -> images. */
export async function dockerArchiveImages(x: Extracted): Promise<ArchiveImage[]> {
  const m = parseJson(await readMember(x, 'manifest.json', 'manifest.json'), 'manifest.json');
  if (!Array.isArray(m)) throw invalid('manifest.json: not a list of images');
  const out: ArchiveImage[] = [];
  for (const [i, e] of m.entries()) {
    const what = `manifest.json entry ${i + 1}`;
    if (typeof e !== 'object' || e === null) throw invalid(`${what}: not an object`);
    const { Config, RepoTags, Layers } = e as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
    if (typeof Config !== 'string') throw invalid(`${what}: Config must be a string`);
    if (!Array.isArray(Layers) || !Layers.every((l): l is string => typeof l === 'string')) throw invalid(`${what}: Layers must be a list of paths`);
    if (RepoTags !== null && RepoTags !== undefined && (!Array.isArray(RepoTags) || !RepoTags.every((t): t is string => typeof t === 'string')))
      throw invalid(`${what}: RepoTags must be a list of names`);
    const layers = Layers.map((l) => {
      const member = resolveMember(x, l);
      if (member === null) throw invalid(`${what}: layer ${JSON.stringify(l)} is not in the archive`);
      return { member, digest: null };
    });
    out.push({ config: await readMember(x, Config, what), layers, tags: (RepoTags as string[] | null | undefined) ?? [] });
  }
  return out;
}

const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string };
}

async function blob(x: Extracted, d: Descriptor, what: string): Promise<Buffer> {
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) throw invalid(`${what}: invalid digest ${JSON.stringify(d.digest)}`);
  const raw = await readMember(x, `blobs/sha256/${d.digest.slice(7)}`, what);
  const got = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
  if (got !== d.digest) throw invalid(`${what}: blob ${d.digest}: content digest ${got} does not match`);
  return raw;
}

/** The name an OCI index entry asks for: containerd's annotation, else a ref.name that is a full reference. */
function nameOf(d: Descriptor): string | null {
  const a = d.annotations ?? {};
  const c = a['io.containerd.image.name'];
  if (c !== undefined && c !== '') return c;
  const r = a['org.opencontainers.image.ref.name'];
  if (r !== undefined && r.includes(':')) {
    try {
      const ref = parseNormalizedReference(r);
      if (ref.tag !== undefined || ref.digest !== undefined) return r;
    } catch {
      return null;
    }
  }
  return null;
}

/** index.json (OCI image layout) -> images. */
export async function ociLayoutImages(x: Extracted): Promise<ArchiveImage[]> {
  const idx = parseJson(await readMember(x, 'index.json', 'index.json'), 'index.json') as { manifests?: Descriptor[] };
  if (typeof idx !== 'object' || idx === null || !Array.isArray(idx.manifests)) throw invalid('index.json: no manifests');
  const byDigest = new Map<string, ArchiveImage>();
  const visit = async (d: Descriptor, name: string | null, depth: number, what: string): Promise<void> => {
    if (depth > 4) throw invalid(`${what}: indexes nested too deep`);
    const raw = await blob(x, d, what);
    const doc = parseJson(raw, what) as { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    const type = d.mediaType ?? doc.mediaType ?? (doc.manifests !== undefined ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json');
    if (INDEX_TYPES.has(type)) {
      const list = doc.manifests ?? [];
      const arch = GOARCH[process.arch] ?? process.arch;
      const pick = list.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch) ?? (list.length === 1 ? list[0] : undefined);
      if (pick === undefined) throw invalid(`${what}: no image for linux/${arch}`);
      await visit(pick, name, depth + 1, `manifest ${pick.digest}`);
      return;
    }
    if (!MANIFEST_TYPES.has(type)) throw invalid(`${what}: unsupported media type ${type}`);
    if (doc.config === undefined || !Array.isArray(doc.layers)) throw invalid(`${what}: manifest without config or layers`);
    const known = byDigest.get(d.digest!);
    if (known !== undefined) {
      if (name !== null) known.tags.push(name);
      return;
    }
    const config = await blob(x, doc.config, `config of ${what}`);
    const layers = doc.layers.map((l, i) => {
      if (typeof l.digest !== 'string' || !DIGEST.test(l.digest)) throw invalid(`${what}: layer ${i + 1}: invalid digest ${JSON.stringify(l.digest)}`);
      const member = resolveMember(x, `blobs/sha256/${l.digest.slice(7)}`);
      if (member === null) throw invalid(`${what}: layer ${i + 1}: blob ${l.digest} is not in the archive`);
      return { member, digest: l.digest };
    });
    byDigest.set(d.digest!, { config, layers, tags: name === null ? [] : [name] });
  };
  for (const [i, d] of idx.manifests.entries()) await visit(d, nameOf(d), 0, `index.json entry ${i + 1}`);
  return [...byDigest.values()];
}

export interface LoadOptions {
  quiet: boolean;
  /** Where the archive is extracted (default: the system temp dir). */
  tmpRoot?: string;
}

export interface LoadedImage {
  id: string;
  tags: string[];
}

/**
 * Loads every image of an archive; messages in docker's words (`Loaded image: busybox:latest`,
 * `Loaded image ID: sha256:...`) go to `progress` as they happen.
 */
export async function loadArchive(store: ImageStore, src: AsyncIterable<Buffer>, opts: LoadOptions, progress: (msg: JsonMessage) => void): Promise<LoadedImage[]> {
  const tmpRoot = opts.tmpRoot ?? os.tmpdir();
  await fs.mkdir(tmpRoot, { recursive: true });
  const x: Extracted = { dir: await fs.mkdtemp(path.join(tmpRoot, 'load-')), files: new Set(), links: new Map(), mem: new Map(), staged: new Map() };
  const all: StagedLayer[] = [];
  try {
    await readArchive(store, src, x, all, opts.quiet, progress);
    let images: ArchiveImage[];
    if (x.files.has('manifest.json') || x.links.has('manifest.json')) images = await dockerArchiveImages(x);
    else if (x.files.has('index.json') || x.links.has('index.json')) images = await ociLayoutImages(x);
    else throw invalid('invalid archive: no manifest.json (docker-archive) or index.json (OCI layout) found');
    // Names are checked for every image before anything is stored.
    for (const img of images) parseTags(img.tags);
    const out: LoadedImage[] = [];
    for (const img of images) {
      const tags = parseTags(img.tags).map((r) => (r.digest === undefined ? familiarString(r) : fullString(r)));
      const previous = new Map<string, string>();
      for (const t of tags) {
        const old = await store.resolve(t).catch(() => null);
        if (old !== null) previous.set(t, old.id);
      }
      const id = await store.addImage({
        config: img.config,
        layers: img.layers.map((l, i) => {
          const st = x.staged?.get(l.member);
          if (st === undefined) return { open: async () => spooledLayer(x, l.member, l.digest, opts.quiet ? undefined : { progress, index: i }) };
          if (st.layer === null) {
            const e = st.error;
            throw e instanceof BerthError ? e : invalid(`layer ${l.member}: ${(e as Error).message}`);
          }
          if (l.digest !== null && st.rawDigest !== l.digest)
            throw invalid(`blob ${l.digest}: content digest ${st.rawDigest} does not match`);
          const layer = st.layer;
          return {
            staged: layer,
            open: () => store.stagedTar(layer),
          };
        }),
        tags,
      });
      for (const t of tags) {
        const old = previous.get(t);
        if (old !== undefined && old !== id) progress({ stream: `The image ${t} already exists, renaming the old one with ID ${old} to empty string\n` });
        progress({ stream: `Loaded image: ${t}\n` });
      }
      if (tags.length === 0) progress({ stream: `Loaded image ID: ${id}\n` });
      out.push({ id, tags });
    }
    return out;
  } finally {
    await store.dropStaged(all);
    await fs.rm(x.dir, { recursive: true, force: true });
  }
}

/** A layer spooled to disk (it did not look like one when read), with Docker's progress when asked. */
async function spooledLayer(x: Extracted, member: string, digest: string | null, report?: { progress: (msg: JsonMessage) => void; index: number }): Promise<Readable> {
  if (report === undefined) return memberStream(x, member, digest);
  // Docker's progress: bytes of the archive member read so far, about every MiB.
  const pid = /[a-f0-9]{12}/.exec(member)?.[0] ?? String(report.index + 1);
  const total = (await fs.stat(path.join(x.dir, member))).size;
  let current = 0;
  let reported = -1;
  const tick = (): void => {
    reported = current;
    report.progress({ status: 'Loading layer', progressDetail: { current, total }, id: pid });
  };
  tick();
  return memberStream(x, member, digest, (n) => {
    current += n;
    if (current - reported >= 1 << 20 || current === total) tick();
  });
}
