/**
 * The build context: the request's tar (plain or gzip) extracted, confined, into a private
 * directory; `.dockerignore` patterns; the COPY/ADD sources a pattern names.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { applyTar, IgnoreMatcher, pathPatternRegExp, type ArchiveFs } from '@berth/archive';
import { BerthError } from '@berth/errors';

/** Context extraction needs no devices or xattrs: device members are skipped. */
const plainFs: ArchiveFs = {
  mknod() {
    throw new Error('device nodes are not extracted from a build context');
  },
  lsetxattr() {
    // xattrs of context files are not carried (Docker's COPY does not either)
  },
  lgetxattr() {
    return null;
  },
};

/** The body as an uncompressed tar: gzip is recognised by its magic; bzip2 and xz are refused. */
async function* decompressed(src: Readable): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < 6) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head = Buffer.concat([head, Buffer.from(r.value)]);
  }
  const rest = async function* (): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.from(r.value);
    }
  };
  if (head[0] === 0x1f && head[1] === 0x8b) {
    yield* Readable.from(rest()).pipe(createGunzip()) as AsyncIterable<Buffer>;
    return;
  }
  if ((head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) || (head[0] === 0xfd && head.subarray(1, 6).toString('latin1') === '7zXZ\0'))
    throw new BerthError('BERTH_INVALID_ARGUMENT', 'build context: only plain and gzip-compressed tar archives are accepted', { details: { field: 'body' } });
  yield* rest();
}

/** Extracts the context tar into `dir` (made here). */
export async function extractContext(src: Readable, dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await applyTar(dir, decompressed(src), { fs: plainFs, whiteoutFormat: 'keep', devices: 'skip' });
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw new BerthError('BERTH_INVALID_ARGUMENT', `build context: ${(err as Error).message}`, { cause: err, details: { field: 'body' } });
  }
}

// ---- .dockerignore (IgnoreMatcher: @berth/archive) ----

/** Removes what `.dockerignore` excludes from the extracted context (never the Dockerfile or .dockerignore themselves, as Docker keeps them for the build). */
export async function applyDockerignore(dir: string, keep: readonly string[]): Promise<void> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, '.dockerignore'), 'utf8');
  } catch {
    return;
  }
  const m = new IgnoreMatcher(text);
  if (m.empty) return;
  const keepSet = new Set(keep);
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === '' ? dir : path.join(dir, rel);
    for (const e of await fs.readdir(abs, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (m.excluded(r) && !keepSet.has(r)) {
        // An exclusion may re-include something below an excluded directory: look inside first.
        if (e.isDirectory()) await walk(r);
        const left = e.isDirectory() ? await fs.readdir(path.join(dir, r)) : null;
        if (left === null || left.length === 0) await fs.rm(path.join(dir, r), { recursive: true, force: true });
      } else if (e.isDirectory()) await walk(r);
    }
  };
  await walk('');
}

// ---- COPY/ADD sources ----

export interface Source {
  /** Context-relative path ('' = the context root). */
  rel: string;
  abs: string;
  isDir: boolean;
}

const hasWildcard = (p: string): boolean => /[*?[]/.test(p);

/** Walks the context, yielding context-relative paths. */
async function allPaths(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of (await fs.readdir(rel === '' ? dir : path.join(dir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      out.push(r);
      if (e.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

/** The sources one COPY/ADD argument names, within the context; Docker's error when none. */
export async function resolveSources(dir: string, arg: string, cmd: string): Promise<Source[]> {
  const clean = path.posix.normalize(`/${arg}`).slice(1);
  if (clean.startsWith('..')) throw notFound(cmd, arg);
  if (hasWildcard(clean)) {
    const re = pathPatternRegExp(clean);
    const out: Source[] = [];
    for (const rel of await allPaths(dir)) {
      if (!re.test(rel)) continue;
      const st = await fs.lstat(path.join(dir, rel));
      out.push({ rel, abs: path.join(dir, rel), isDir: st.isDirectory() });
    }
    if (out.length === 0) throw new BerthError('BERTH_BUILD_STEP_FAILED', `${cmd} failed: no source files were specified`, { details: { source: arg } });
    return out;
  }
  const abs = clean === '' ? dir : path.join(dir, clean);
  // The path is followed inside the context only: a symlink out of it is not a source.
  const real = await fs.realpath(abs).catch(() => null);
  if (real === null || (real !== dir && !real.startsWith(`${dir}/`))) throw notFound(cmd, arg);
  const st = await fs.stat(real);
  return [{ rel: clean, abs: real, isDir: st.isDirectory() }];
}

function notFound(cmd: string, arg: string): BerthError {
  return new BerthError('BERTH_BUILD_STEP_FAILED', `${cmd} failed: file not found in build context or excluded by .dockerignore: stat ${arg}: file does not exist`, {
    details: { source: arg },
  });
}

/** Content hash of a source tree (names, modes, link targets, bytes): the build cache key of COPY/ADD. */
export async function hashSource(src: Source): Promise<string> {
  const h = createHash('sha256');
  const one = async (abs: string, name: string): Promise<void> => {
    const st = await fs.lstat(abs);
    h.update(`${name}\0${st.mode}\0`);
    if (st.isSymbolicLink()) h.update(await fs.readlink(abs));
    else if (st.isFile()) h.update(await fs.readFile(abs));
    else if (st.isDirectory()) for (const c of (await fs.readdir(abs)).sort()) await one(path.join(abs, c), `${name}/${c}`);
  };
  await one(src.abs, '.');
  return h.digest('hex');
}

/** Removes build contexts left by a daemon that stopped mid-build (called at engine start, before any build). */
export async function sweepBuildContexts(dataRoot: string): Promise<void> {
  await fs.rm(path.join(dataRoot, 'builder', 'contexts'), { recursive: true, force: true });
}
