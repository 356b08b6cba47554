/** Pull and push: the registry client's flows, the image store, and Docker's progress messages. */
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import type { JsonMessage } from '@berth/api';
import { BerthError, isNotFound } from '@berth/errors';
import { chainIdOf, familiarName, familiarString, fullName, parseNormalizedReference, type Reference } from '@berth/image';
import { RegistryClient, login as registryLogin, pullImage as pullFromRegistry, pushImage as pushToRegistry, translatePullError, type AuthConfig, type LoginResult } from '@berth/registry';
import type { EngineContext } from './context.js';

const clients = new WeakMap<EngineContext, RegistryClient>();

function clientOf(ctx: EngineContext): RegistryClient {
  let c = clients.get(ctx);
  if (c === undefined) {
    c = new RegistryClient({ insecureRegistries: ctx.opts.insecureRegistries ?? [], logger: ctx.log.child({ component: 'registry' }) });
    clients.set(ctx, c);
  }
  return c;
}

/** Docker's units.HumanSize: decimal units, 4 significant digits. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/** The `progress` text of a JSON message: `[=====>    ]  1.2MB/2.1MB`. */
export function progressBar(current: number, total: number): string {
  if (total <= 0) return `${humanSize(current).padStart(8)}`;
  const bars = Math.min(50, Math.floor((50 * current) / total));
  const arrow = bars < 50 ? '>' : '>';
  return `[${'='.repeat(bars)}${arrow}${' '.repeat(50 - bars)}] ${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

const shortId = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/** Progress messages at most every 100 ms per layer, and always the last one. */
function throttled(progress: (msg: JsonMessage) => void): (key: string, msg: JsonMessage, last: boolean) => void {
  const at = new Map<string, number>();
  return (key, msg, last) => {
    const now = Date.now();
    if (!last && now - (at.get(key) ?? 0) < 100) return;
    at.set(key, now);
    progress(msg);
  };
}

async function tmpDirOf(ctx: EngineContext): Promise<string> {
  const dir = join(ctx.opts.dataRoot, 'tmp');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * `POST /images/create?fromImage=`: resolves the manifest (an index picks linux/<arch>),
 * downloads the missing layers (digest-checked), stores the image under its tag and its repo
 * digest, with Docker's messages. Errors before the first message reach the caller as
 * thrown errors (a normal HTTP status), later ones in-band (the route's job).
 */
export async function pullImage(ctx: EngineContext, refText: string, auth: AuthConfig, progress: (msg: JsonMessage) => void): Promise<string> {
  const ref = parseNormalizedReference(refText);
  if (ref.tag === undefined && ref.digest === undefined) ref.tag = 'latest';
  const tagOrDigest = ref.digest ?? ref.tag!;
  const name = familiarName(ref);
  const shown = familiarString(ref.digest !== undefined ? { domain: ref.domain, path: ref.path, digest: ref.digest } : ref);
  const before = await ctx.images.resolve(shown).then(
    (r) => r.id,
    () => undefined,
  );
  const repo = clientOf(ctx).repository(ref.domain, ref.path, auth, ['pull']);
  const tick = throttled(progress);
  const tmpDir = await tmpDirOf(ctx);
  let pulled;
  try {
    pulled = await pullFromRegistry(repo, {
      reference: tagOrDigest,
      tmpDir,
      haveImage: (configDigest) =>
        ctx.images.imageParts(configDigest).then(
          () => true,
          (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)),
        ),
      have: async (i, diffIds) => {
        let chain: string | null = null;
        for (const d of diffIds.slice(0, i + 1)) chain = chainIdOf(chain, d);
        return ctx.images.layerTarSize(chain!).then(
          () => true,
          (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)),
        );
      },
      onEvent: (e) => {
        if (e.type === 'manifest') {
          progress({ status: `Pulling from ${ref.path}`, id: tagOrDigest });
          return;
        }
        const id = shortId(e.digest);
        switch (e.state) {
          case 'exists':
            return progress({ status: 'Already exists', progressDetail: {}, id });
          case 'waiting':
            return progress({ status: 'Pulling fs layer', progressDetail: {}, id });
          case 'downloading': {
            const current = e.current ?? 0;
            const total = e.total ?? 0;
            return tick(id, { status: 'Downloading', progressDetail: { current, total }, progress: progressBar(current, total), id }, current === total);
          }
          case 'verifying':
            return progress({ status: 'Verifying Checksum', progressDetail: {}, id });
          case 'downloaded':
            return progress({ status: 'Download complete', progressDetail: {}, id });
        }
      },
    });
  } catch (err) {
    throw translatePullError(err, name, shown);
  }
  try {
    const tags = [ref.digest !== undefined ? `${name}@${ref.digest}` : `${name}:${ref.tag!}`];
    if (ref.digest === undefined) tags.push(`${name}@${pulled.digest}`);
    const id = await ctx.images.addImage({
      config: pulled.config,
      tags,
      layers: pulled.layers.map((l) => ({
        diffId: l.diffId,
        open: async (): Promise<Readable> => {
          if (l.file === undefined) throw new BerthError('BERTH_INTERNAL', `layer ${l.diffId} was neither present nor downloaded`, {});
          const id = shortId(l.digest);
          let n = 0;
          // Counted on the way through; a 'data' listener on the file stream would start it
          // flowing before the store reads it.
          const counter = new Transform({
            transform(chunk: Buffer, _enc, cb) {
              n += chunk.length;
              tick(id, { status: 'Extracting', progressDetail: { current: n, total: l.size }, progress: progressBar(n, l.size), id }, n === l.size);
              cb(null, chunk);
            },
            flush(cb) {
              progress({ status: 'Pull complete', progressDetail: {}, id });
              cb();
            },
          });
          const src = createReadStream(l.file);
          src.on('error', (err) => counter.destroy(err));
          return src.pipe(counter);
        },
      })),
    });
    progress({ status: `Digest: ${pulled.digest}` });
    progress({ status: before === id ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}` });
    ctx.bus.publish('image', 'pull', shown, { name: shown });
    return id;
  } finally {
    await pulled.cleanup();
  }
}

function pushError(err: unknown): unknown {
  // The registry's own text, as `docker push` shows it ("denied: requested access ...").
  if (err instanceof BerthError && err.code === 'BERTH_REGISTRY_UNAUTHORIZED' && typeof err.details?.registryMessage === 'string')
    return new BerthError('BERTH_REGISTRY_UNAUTHORIZED', err.details.registryMessage, { cause: err, details: err.details });
  return err;
}

/**
 * `POST /images/{name}/push?tag=`: pushes one tag, or every tag of the repository when `tag`
 * is empty, as Docker schema 2 with gzip layers. Blobs the registry has are skipped; blobs of
 * another repository of the same registry that holds this image are mounted.
 */
export async function pushImage(ctx: EngineContext, nameText: string, tag: string, auth: AuthConfig, progress: (msg: JsonMessage) => void): Promise<void> {
  const named = parseNormalizedReference(nameText);
  const base: Reference = { domain: named.domain, path: named.path };
  const tags = tag !== '' ? [tag] : named.tag !== undefined ? [named.tag] : await tagsOf(ctx, base);
  if (tags.length === 0)
    throw new BerthError('BERTH_IMAGE_NOT_FOUND', `An image does not exist locally with the tag: ${familiarName(base)}`, { details: { reference: nameText } });
  // As Docker: the repository line first, then a missing tag in-band, named by the repository.
  progress({ status: `The push refers to repository [${fullName(base)}]` });
  const partsList = [];
  for (const t of tags) {
    const shown = familiarString({ ...base, tag: t });
    try {
      partsList.push({ tag: t, parts: await ctx.images.imageParts(shown) });
    } catch (err) {
      if (isNotFound(err))
        throw new BerthError('BERTH_IMAGE_NOT_FOUND', `An image does not exist locally with the tag: ${familiarName(base)}`, { cause: err, details: { reference: shown } });
      throw err;
    }
  }
  const repo = clientOf(ctx).repository(base.domain, base.path, auth, ['pull', 'push']);
  const tmpDir = await tmpDirOf(ctx);
  const tick = throttled(progress);
  for (const { tag: t, parts } of partsList) {
    const mountFrom = [
      ...new Set(
        parts.repoTags
          .map((rt) => parseNormalizedReference(rt))
          .filter((r) => r.domain === base.domain && r.path !== base.path)
          .map((r) => r.path),
      ),
    ];
    try {
      const pushed = await pushToRegistry(repo, {
        tag: t,
        config: parts.config,
        tmpDir,
        mountFrom,
        layers: parts.layers.map((l) => ({ diffId: l.diffId, open: () => ctx.images.layerTar(l.chainId) })),
        onEvent: (e) => {
          const id = shortId(e.diffId);
          switch (e.state) {
            case 'preparing':
              return progress({ status: 'Preparing', progressDetail: {}, id });
            case 'waiting':
              return progress({ status: 'Waiting', progressDetail: {}, id });
            case 'pushing': {
              const current = e.current ?? 0;
              const total = e.total ?? 0;
              return tick(id, { status: 'Pushing', progressDetail: { current, total }, progress: progressBar(current, total), id }, current === total);
            }
            case 'exists':
              return progress({ status: 'Layer already exists', progressDetail: {}, id });
            case 'mounted':
              return progress({ status: `Mounted from ${e.from ?? ''}`, progressDetail: {}, id });
            case 'pushed':
              return progress({ status: 'Pushed', progressDetail: {}, id });
          }
        },
      });
      progress({ status: `${t}: digest: ${pushed.digest} size: ${pushed.size}` });
      progress({ progressDetail: {}, aux: { Tag: t, Digest: pushed.digest, Size: pushed.size } });
      ctx.bus.publish('image', 'push', familiarString({ ...base, tag: t }), { name: familiarString({ ...base, tag: t }) });
    } catch (err) {
      throw pushError(err);
    }
  }
}

async function tagsOf(ctx: EngineContext, base: Reference): Promise<string[]> {
  const prefix = `${familiarName(base)}:`;
  const out: string[] = [];
  for (const img of await ctx.images.list({ all: false })) for (const rt of img.RepoTags ?? []) if (rt.startsWith(prefix)) out.push(rt.slice(prefix.length));
  return out.sort();
}

/** `POST /auth`: the credentials checked against the registry, as Docker's daemon does; nothing is kept. */
export function login(ctx: EngineContext, auth: AuthConfig): Promise<LoginResult> {
  return registryLogin(auth, { insecureRegistries: ctx.opts.insecureRegistries ?? [], logger: ctx.log.child({ component: 'registry' }) });
}
