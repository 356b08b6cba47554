/**
 * `berth build`: the classic builder's client. The context directory is sent as a tar (owners
 * 0:0, `.dockerignore` honoured, the Dockerfile and .dockerignore always sent), the progress is
 * printed as docker's legacy builder prints it, and a failed step exits with its code.
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { IgnoreMatcher, type TarHeader } from '@berth/archive';
import { bool, list, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { humanSize } from '../output/format.js';
import { registryConfigHeader } from './registry.js';
import { forEachLine } from '../output/lines.js';
import { localHeader } from './cp-archive.js';

// ---- the context tar ----

/** The context's members are owned by 0:0, as the docker CLI sends them. */
const header = (name: string, st: Stats, type: TarHeader['type'], extra: Partial<TarHeader> = {}): Buffer => localHeader(name, st, type, false, extra);

const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);

/** A tar of `dir` without what the matcher excludes (except names in `keep`), then `extra` files. */
export async function* packContext(dir: string, ignore: IgnoreMatcher | null, keep: ReadonlySet<string>, extra: { name: string; data: Buffer }[] = []): AsyncGenerator<Buffer> {
  async function* walk(rel: string): AsyncGenerator<Buffer> {
    const abs = rel === '' ? dir : path.join(dir, rel);
    for (const name of (await fs.readdir(abs)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = path.join(dir, r);
      const st = await fs.lstat(p);
      const out = ignore !== null && ignore.excluded(r) && !keep.has(r);
      // An excluded directory is still walked when an exception may re-include something in it.
      if (out && !(st.isDirectory() && ignore!.hasExclusions)) continue;
      if (st.isDirectory()) {
        if (!out) yield header(`${r}/`, st, 'dir');
        yield* walk(r);
      } else if (out) continue;
      else if (st.isSymbolicLink()) yield header(r, st, 'symlink', { linkname: await fs.readlink(p) });
      else if (st.isFile()) {
        const data = await fs.readFile(p);
        yield header(r, st, 'file', { size: data.length });
        yield data;
        yield pad(data.length);
      }
    }
  }
  yield* walk('');
  yield* fileMembers(extra, 0o100600);
  yield Buffer.alloc(1024);
}

/** Tar members of files held in memory, dated now, with the given mode. */
function* fileMembers(files: readonly { name: string; data: Buffer }[], mode: number): Generator<Buffer> {
  const now = { mode, mtimeMs: Date.now() } as Stats;
  for (const f of files) {
    yield header(f.name, now, 'file', { size: f.data.length });
    yield f.data;
    yield pad(f.data.length);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(parts);
}

const isTar = (b: Buffer): boolean => (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) || (b.length >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar');

/** The context body and the `dockerfile` query value. */
async function contextOf(p: ParsedArgs, where: string): Promise<{ body: Buffer | AsyncIterable<Buffer>; dockerfile: string }> {
  const file = str(p, 'file');
  if (where === '-') {
    if (file === '-') throw new CliError('invalid argument: can\'t use stdin for both build context and dockerfile');
    const input = await readAll(process.stdin);
    if (isTar(input)) return { body: input, dockerfile: file };
    // A Dockerfile alone on stdin: an empty context with it.
    return { body: Buffer.concat([...packContextFromFiles([{ name: 'Dockerfile', data: input }])]), dockerfile: 'Dockerfile' };
  }
  const dir = path.resolve(where);
  const st = await fs.stat(dir).catch(() => null);
  if (st === null) throw new CliError(`unable to prepare context: path "${where}" not found`);
  if (!st.isDirectory()) throw new CliError(`unable to prepare context: context must be a directory: ${dir}`);
  const extra: { name: string; data: Buffer }[] = [];
  let dockerfile = '';
  if (file === '-') {
    dockerfile = `.dockerfile.${randomBytes(10).toString('hex')}`;
    extra.push({ name: dockerfile, data: await readAll(process.stdin) });
  } else {
    const df = file === '' ? path.join(dir, 'Dockerfile') : path.resolve(file);
    const rel = path.relative(dir, df);
    const exists = await fs.stat(df).catch(() => null);
    if (exists === null) {
      if (file === '' && (await fs.stat(path.join(dir, 'dockerfile')).catch(() => null)) !== null) dockerfile = 'dockerfile';
      else throw new CliError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${df}: no such file or directory`);
    } else if (rel.startsWith('..') || path.isAbsolute(rel)) {
      // A Dockerfile outside the context goes in under a random name, as the docker CLI sends it.
      dockerfile = `.dockerfile.${randomBytes(10).toString('hex')}`;
      extra.push({ name: dockerfile, data: await fs.readFile(df) });
    } else dockerfile = rel.split(path.sep).join('/');
  }
  const ignoreText = await fs.readFile(path.join(dir, '.dockerignore'), 'utf8').catch(() => null);
  const ignore = ignoreText === null ? null : new IgnoreMatcher(ignoreText);
  // Streamed as it is packed: a large context is never held in memory.
  return { body: packContext(dir, ignore, new Set([dockerfile, '.dockerignore']), extra), dockerfile };
}

function* packContextFromFiles(files: { name: string; data: Buffer }[]): Generator<Buffer> {
  yield* fileMembers(files, 0o100644);
  yield Buffer.alloc(1024);
}

function keyValues(items: string[], what: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const kv of items) {
    const i = kv.indexOf('=');
    if (i === 0) throw new CliError(`invalid argument "${kv}" for "--${what}" flag: invalid key`);
    if (i === -1) {
      // docker: `--build-arg NAME` takes NAME from the environment, unset when it is not there.
      out[kv] = what === 'build-arg' ? (process.env[kv] ?? null) : '';
    } else out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** `64m`, `1g`: the run command's parser, loaded only when a size is given. */
async function bytesOf(v: string, flag: string): Promise<number> {
  const { parseBytes } = await import('./run.js');
  try {
    return parseBytes(v);
  } catch {
    throw new CliError(`invalid argument "${v}" for "--${flag}" flag`);
  }
}

async function build(ctx: Context, p: ParsedArgs): Promise<number> {
  const where = p.args[0]!;
  const quiet = bool(p, 'quiet');
  const { body, dockerfile } = await contextOf(p, where);
  const buildArgs = keyValues(list(p, 'build-arg'), 'build-arg');
  const labels = keyValues(list(p, 'label'), 'label');
  const query = {
    t: list(p, 'tag'),
    dockerfile: dockerfile || undefined,
    buildargs: JSON.stringify(buildArgs),
    labels: JSON.stringify(labels),
    q: quiet,
    nocache: bool(p, 'no-cache'),
    rm: bool(p, 'rm'),
    forcerm: bool(p, 'force-rm'),
    pull: bool(p, 'pull'),
    target: str(p, 'target') || undefined,
    networkmode: str(p, 'network') || 'default',
    platform: str(p, 'platform') || undefined,
    extrahosts: list(p, 'add-host'),
    memory: str(p, 'memory') ? await bytesOf(str(p, 'memory'), 'memory') : undefined,
    shmsize: str(p, 'shm-size') ? await bytesOf(str(p, 'shm-size'), 'shm-size') : undefined,
  };
  // The size is printed once the context is sent (berthd answers only after reading all of it).
  let sent = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const c of Buffer.isBuffer(body) ? [body] : body) {
      sent += c.length;
      yield c;
    }
    if (!quiet) ctx.out(`Sending build context to Berth daemon  ${humanSize(sent)}\n`);
  };
  const res = await ctx.client.stream('POST', '/build', {
    query,
    body: Readable.from(counted()),
    headers: { 'Content-Type': 'application/x-tar', 'X-Registry-Config': registryConfigHeader(), ...(Buffer.isBuffer(body) ? { 'Content-Length': String(body.length) } : {}) },
  });
  let failure: { code: number; message: string } | undefined;
  const handle = (line: string): void => {
    if (line.trim() === '') return;
    let m: { stream?: string; status?: string; id?: string; progress?: string; error?: string; errorDetail?: { code?: number; message: string }; aux?: unknown };
    try {
      m = JSON.parse(line) as typeof m;
    } catch {
      return;
    }
    if (m.errorDetail || m.error) failure = { code: m.errorDetail?.code || 1, message: m.errorDetail?.message ?? m.error ?? '' };
    else if (m.aux !== undefined) return;
    // Quiet: berthd sends only the image id, as a stream message.
    else if (m.stream !== undefined) ctx.out(m.stream);
    else if (m.status !== undefined && !m.progress) ctx.out(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
  };
  await forEachLine(res, handle);
  if (failure !== undefined) throw new CliError(failure.message, failure.code);
  return 0;
}

const S = 'string';
const spec: CommandSpec = {
  usage: 'build [OPTIONS] PATH | -',
  description: 'Build an image from a Dockerfile',
  minArgs: 1,
  maxArgs: 1,
  aliases: ['berth image build', 'berth build'],
  flags: [
    { name: 'add-host', type: 'list', valueName: 'list', description: 'Add a custom host-to-IP mapping (host:ip)' },
    { name: 'build-arg', type: 'list', valueName: 'list', description: 'Set build-time variables' },
    { name: 'file', short: 'f', type: 'string', valueName: S, description: "Name of the Dockerfile (Default is 'PATH/Dockerfile')" },
    { name: 'force-rm', type: 'bool', description: 'Always remove intermediate containers' },
    { name: 'label', type: 'list', valueName: 'list', description: 'Set metadata for an image' },
    { name: 'memory', short: 'm', type: 'string', valueName: 'bytes', description: 'Memory limit' },
    { name: 'network', type: 'string', valueName: S, description: 'Set the networking mode for the RUN instructions during build', default: 'default' },
    { name: 'no-cache', type: 'bool', description: 'Do not use cache when building the image' },
    { name: 'platform', type: 'string', valueName: S, description: 'Set platform if server is multi-platform capable' },
    { name: 'pull', type: 'bool', description: 'Always attempt to pull a newer version of the image' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the build output and print image ID on success' },
    { name: 'shm-size', type: 'string', valueName: 'bytes', description: 'Size of "/dev/shm"' },
    { name: 'rm', type: 'bool', default: true, description: 'Remove intermediate containers after a successful build' },
    { name: 'tag', short: 't', type: 'list', valueName: 'list', description: "Name and optionally a tag in the 'name:tag' format" },
    { name: 'target', type: 'string', valueName: S, description: 'Set the target build stage to build.' },
  ],
};

export const commands: Record<string, Command> = {
  build: { spec, run: build },
};
