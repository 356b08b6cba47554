/** diff, commit, cp, history, image, container and system prune, system df. */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { encodeFilters, goModeIsDir, goModeIsSymlink, type ContainerPathStat, type ImageDeleteItem, type ImageSummary } from '@berth/api/wire';
import { bool, list, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError, errorFrom, readAll } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { ellipsis, humanDuration, humanSize, shortId, tabwrite } from '../output/format.js';
import { stdout } from '../output/stdio.js';
import { extractLocal, packLocal } from './cp-archive.js';
import { filtersFrom } from './ps.js';
import { splitReference } from './run.js';

const enc = encodeURIComponent;

// ---- diff ----

async function diff(ctx: Context, p: ParsedArgs): Promise<number> {
  const changes = await ctx.client.get<{ Path: string; Kind: number }[] | null>(`/containers/${enc(p.args[0]!)}/changes`);
  let out = '';
  for (const c of changes ?? []) out += `${c.Kind === 1 ? 'A' : c.Kind === 2 ? 'D' : 'C'} ${c.Path}\n`;
  ctx.out(out);
  return 0;
}

// ---- commit ----

async function commit(ctx: Context, p: ParsedArgs): Promise<number> {
  const [container, ref] = p.args;
  let repo = '';
  let tag = '';
  if (ref) {
    const r = splitReference(ref);
    repo = r.name;
    tag = ref.slice(r.name.length).replace(/^[:@]/, '');
  }
  const r = await ctx.client.post<{ Id: string }>('/commit', {
    container: container!,
    repo,
    tag,
    comment: str(p, 'message') || undefined,
    author: str(p, 'author') || undefined,
    pause: bool(p, 'pause'),
    changes: list(p, 'change'),
  }, {});
  ctx.out(`${r.Id}\n`);
  return 0;
}

// ---- cp ----

/** docker's splitCpArg: `CONTAINER:PATH`, or a local path (absolute or starting with `.` is always local). */
export function splitCpArg(arg: string): { container: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.')) return { container: '', path: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { container: '', path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

function decodeStat(header: string | string[] | undefined): ContainerPathStat {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) throw new CliError('Error: the daemon did not send the path stat header');
  return JSON.parse(Buffer.from(h, 'base64').toString('utf8')) as ContainerPathStat;
}

async function statInContainer(ctx: Context, container: string, p: string): Promise<ContainerPathStat | null> {
  await ctx.client.negotiate();
  const res = await ctx.client.raw('HEAD', `/containers/${enc(container)}/archive`, { query: { path: p } });
  res.resume();
  if (res.statusCode === 404) {
    // No such container or no such path: ask for the container's existence to tell them apart.
    await ctx.client.get(`/containers/${enc(container)}/json`);
    return null;
  }
  if (res.statusCode >= 400) throw await errorFrom(res);
  return decodeStat(res.headers['x-docker-container-path-stat']);
}

const endsWithSep = (p: string): boolean => p.endsWith('/') || p.endsWith('/.') || p === '.';

async function copyFromContainer(ctx: Context, container: string, srcPath: string, dst: string, follow: boolean, quiet: boolean): Promise<number> {
  let src = srcPath;
  if (follow) {
    const st = await statInContainer(ctx, container, src);
    if (st === null) throw new CliError(`Error response from daemon: Could not find the file ${src} in container ${container}`);
    if (goModeIsSymlink(st.mode) && st.linkTarget !== '') src = st.linkTarget;
  }
  const res = await ctx.client.stream('GET', `/containers/${enc(container)}/archive`, { query: { path: src } });
  const stat = decodeStat(res.headers['x-docker-container-path-stat']);
  if (dst === '-') {
    for await (const chunk of res) if (!stdout().write(chunk as Buffer)) await new Promise((r) => stdout().once('drain', r));
    return 0;
  }
  let bytes = 0;
  const counted = Readable.from(
    (async function* () {
      for await (const c of res) {
        bytes += (c as Buffer).length;
        yield c as Buffer;
      }
    })(),
  );
  const srcIsDir = goModeIsDir(stat.mode);
  const dstSt = await fs.stat(dst).catch(() => null);
  const from = stat.name === '/' ? '.' : stat.name;
  if (dstSt?.isDirectory()) {
    await extractLocal(dst, counted, { from, to: from === '.' ? '' : from });
  } else if (dstSt !== null) {
    if (srcIsDir) throw new CliError('cannot copy directory');
    await extractLocal(path.dirname(dst), counted, { from, to: path.basename(dst) });
  } else {
    if (!srcIsDir && endsWithSep(dst)) throw new CliError('no such directory');
    const parent = path.dirname(path.resolve(dst));
    if ((await fs.stat(parent).catch(() => null))?.isDirectory() !== true) throw new CliError(`destination directory ${parent} does not exist`);
    await extractLocal(parent, counted, { from, to: path.basename(path.resolve(dst)) });
  }
  if (!quiet) ctx.err(`Successfully copied ${humanSize(bytes)} to ${dst}\n`);
  return 0;
}

async function copyToContainer(ctx: Context, src: string, container: string, dstPath: string, follow: boolean, keepOwners: boolean, quiet: boolean): Promise<number> {
  let dst = dstPath;
  let dstStat = await statInContainer(ctx, container, dst);
  if (dstStat !== null && goModeIsSymlink(dstStat.mode) && dstStat.linkTarget !== '') {
    // docker follows a destination symlink (resolved inside the container by the daemon).
    dst = dstStat.linkTarget;
    dstStat = await statInContainer(ctx, container, dst);
  }
  let putPath: string;
  let body: Readable;
  let bytes = 0;
  if (src === '-') {
    if (dstStat === null || !goModeIsDir(dstStat.mode)) throw new CliError(`destination "${container}:${dstPath}" must be a directory`);
    putPath = dst;
    body = process.stdin;
  } else {
    let local = src;
    let st = await fs.lstat(local).catch(() => null);
    if (st === null) throw new CliError(`lstat ${path.resolve(src)}: no such file or directory`);
    if (follow && st.isSymbolicLink()) {
      local = await fs.realpath(local);
      st = await fs.lstat(local);
    }
    const contentsOnly = /(^|\/)\.$/.test(src);
    const base = path.basename(path.resolve(local));
    let name: string;
    if (dstStat !== null && goModeIsDir(dstStat.mode)) {
      putPath = dst;
      name = st.isDirectory() && contentsOnly ? '' : base;
    } else if (dstStat !== null) {
      if (st.isDirectory()) throw new CliError('Error response from daemon: cannot copy directory');
      putPath = path.posix.dirname(dst);
      name = path.posix.basename(dst);
    } else {
      if (!st.isDirectory() && dst.endsWith('/')) throw new CliError('Error response from daemon: no such directory');
      const trimmed = dst.replace(/\/+$/, '') || '/';
      putPath = path.posix.dirname(trimmed);
      name = path.posix.basename(trimmed);
    }
    const packed = packLocal(local, { name, keepOwners });
    body = Readable.from(
      (async function* () {
        for await (const c of packed) {
          bytes += c.length;
          yield c;
        }
      })(),
    );
  }
  const res = await ctx.client.stream('PUT', `/containers/${enc(container)}/archive`, {
    query: { path: putPath, noOverwriteDirNonDir: 'true', copyUIDGID: keepOwners ? 'true' : undefined },
    body,
    headers: { 'Content-Type': 'application/x-tar' },
  });
  await readAll(res);
  if (!quiet && src !== '-') ctx.err(`Successfully copied ${humanSize(bytes)} to ${container}:${dstPath}\n`);
  return 0;
}

async function cp(ctx: Context, p: ParsedArgs): Promise<number> {
  const [srcArg, dstArg] = p.args as [string, string];
  const src = splitCpArg(srcArg);
  const dst = splitCpArg(dstArg);
  if (src.container === '' && dst.container === '') throw new CliError('must specify at least one container source');
  if (src.container !== '' && dst.container !== '') throw new CliError('copying between containers is not supported');
  if ((src.container !== '' && src.path === '') || (dst.container !== '' && dst.path === '')) throw new CliError('filesystem path cannot be empty');
  // As docker: progress only when stderr is a terminal.
  const quiet = bool(p, 'quiet') || !process.stderr.isTTY;
  if (src.container !== '') return copyFromContainer(ctx, src.container, src.path, dst.path, bool(p, 'follow-link'), quiet);
  return copyToContainer(ctx, src.path, dst.container, dst.path, bool(p, 'follow-link'), bool(p, 'archive'), quiet);
}

// ---- history ----

interface HistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

async function history(ctx: Context, p: ParsedArgs): Promise<number> {
  const rows = await ctx.client.get<HistoryItem[]>(`/images/${p.args[0]!}/history`);
  const trunc = !bool(p, 'no-trunc');
  if (bool(p, 'quiet')) {
    ctx.out(rows.map((r) => `${r.Id.startsWith('sha256:') && trunc ? shortId(r.Id) : r.Id}\n`).join(''));
    return 0;
  }
  const human = bool(p, 'human');
  const now = Date.now();
  let text = 'IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT\n';
  for (const r of rows) {
    const id = r.Id === '<missing>' ? r.Id : trunc ? shortId(r.Id) : r.Id;
    const created = human ? (r.Created > 0 ? `${humanDuration(now - r.Created * 1000)} ago` : 'N/A') : new Date(r.Created * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    let by = r.CreatedBy.replace(/\t/g, ' ');
    if (trunc) by = ellipsis(by, 45);
    const size = human ? humanSize(r.Size, 3) : String(r.Size);
    text += `${id}\t${created}\t${by}\t${size}\t${r.Comment}\n`;
  }
  ctx.out(tabwrite(text, 10, 3));
  return 0;
}

// ---- image prune ----

async function imagePrune(ctx: Context, p: ParsedArgs): Promise<number> {
  const all = bool(p, 'all');
  if (!bool(p, 'force')) {
    ctx.out(
      all
        ? 'WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] '
        : 'WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ',
    );
    const answer = await readLine();
    if (!/^y(es)?$/i.test(answer.trim())) return 0;
  }
  const filters = filtersFrom(list(p, 'filter'));
  filters.dangling = [all ? 'false' : 'true'];
  const r = await ctx.client.post<{ ImagesDeleted: ImageDeleteItem[] | null; SpaceReclaimed: number }>('/images/prune', { filters: encodeFilters(filters) });
  let out = '';
  if (r.ImagesDeleted && r.ImagesDeleted.length > 0) {
    out += 'Deleted Images:\n';
    for (const it of r.ImagesDeleted) out += 'Untagged' in it ? `untagged: ${it.Untagged}\n` : `deleted: ${it.Deleted}\n`;
    out += '\n';
  }
  out += `Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`;
  ctx.out(out);
  return 0;
}

// ---- container prune ----

async function containerPrune(ctx: Context, p: ParsedArgs): Promise<number> {
  if (!bool(p, 'force')) {
    ctx.out('WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ');
    const answer = await readLine();
    if (!/^y(es)?$/i.test(answer.trim())) return 0;
  }
  const r = await ctx.client.post<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>('/containers/prune', { filters: encodeFilters(filtersFrom(list(p, 'filter'))) });
  let out = '';
  if (r.ContainersDeleted && r.ContainersDeleted.length > 0) out += `Deleted Containers:\n${r.ContainersDeleted.join('\n')}\n\n`;
  out += `Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`;
  ctx.out(out);
  return 0;
}

// ---- system prune ----

/** Stopped containers, unused networks, dangling (-a: unused) images, then the build cache, as docker's. */
async function systemPrune(ctx: Context, p: ParsedArgs): Promise<number> {
  const all = bool(p, 'all');
  if (!bool(p, 'force')) {
    ctx.out(
      'WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n' +
        (bool(p, 'volumes') ? '  - all anonymous volumes not used by at least one container\n' : '') +
        `  - ${all ? 'all images without at least one container associated to them' : 'all dangling images'}\n  - unused build cache\n\nAre you sure you want to continue? [y/N] `,
    );
    if (!/^y(es)?$/i.test((await readLine()).trim())) return 0;
  }
  const filters = filtersFrom(list(p, 'filter'));
  const query = Object.keys(filters).length ? { filters: encodeFilters(filters) } : undefined;
  let out = '';
  const c = await ctx.client.post<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>('/containers/prune', query);
  if (c.ContainersDeleted?.length) out += `Deleted Containers:\n${c.ContainersDeleted.join('\n')}\n\n`;
  const n = await ctx.client.post<{ NetworksDeleted: string[] | null }>('/networks/prune', query);
  if (n.NetworksDeleted?.length) out += `Deleted Networks:\n${n.NetworksDeleted.join('\n')}\n\n`;
  let volumeSpace = 0;
  if (bool(p, 'volumes')) {
    const v = await ctx.client.post<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>('/volumes/prune', query);
    if (v.VolumesDeleted?.length) out += `Deleted Volumes:\n${v.VolumesDeleted.join('\n')}\n\n`;
    volumeSpace = v.SpaceReclaimed ?? 0;
  }
  const i = await ctx.client.post<{ ImagesDeleted: ImageDeleteItem[] | null; SpaceReclaimed: number }>('/images/prune', { filters: encodeFilters({ ...filters, dangling: [all ? 'false' : 'true'] }) });
  if (i.ImagesDeleted?.length) {
    out += 'Deleted Images:\n';
    for (const it of i.ImagesDeleted) out += 'Untagged' in it ? `untagged: ${it.Untagged}\n` : `deleted: ${it.Deleted}\n`;
    out += '\n';
  }
  const b = await ctx.client.post<{ SpaceReclaimed: number }>('/build/prune', query);
  out += `Total reclaimed space: ${humanSize(c.SpaceReclaimed + volumeSpace + i.SpaceReclaimed + (b.SpaceReclaimed ?? 0))}\n`;
  ctx.out(out);
  return 0;
}

export function readLine(): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('utf8');
      if (buf.includes('\n')) done();
    };
    const done = (): void => {
      process.stdin.off('data', onData);
      process.stdin.off('end', done);
      process.stdin.pause();
      resolve(buf.split('\n')[0] ?? '');
    };
    process.stdin.on('data', onData);
    process.stdin.on('end', done);
  });
}

// ---- system df ----

interface DfVolume {
  Name: string;
  UsageData?: { Size: number; RefCount: number };
}

interface DfContainer {
  Id: string;
  Names: string[];
  Image: string;
  Command: string;
  Created: number;
  State: string;
  Status: string;
  SizeRw?: number;
  SizeRootFs?: number;
}

async function systemDf(ctx: Context, p: ParsedArgs): Promise<number> {
  const r = await ctx.client.get<{ LayersSize: number; Images: ImageSummary[]; Containers: DfContainer[]; Volumes: DfVolume[] | null; BuildCache: unknown[] | null }>('/system/df');
  const volumes = r.Volumes ?? [];
  const volSize = volumes.reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const activeVolumes = volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0);
  const volReclaim = volumes.filter((v) => (v.UsageData?.RefCount ?? 0) === 0).reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const images = r.Images ?? [];
  const containers = r.Containers ?? [];
  const activeImages = images.filter((i) => (i.Containers ?? 0) > 0);
  const imgSize = r.LayersSize;
  // docker's arithmetic: what active images hold alone is in use, the rest can be reclaimed.
  let used = 0;
  for (const i of activeImages) if (i.SharedSize >= 0) used += i.Size - i.SharedSize;
  const imgReclaim = Math.max(0, imgSize - used);
  const pct = (part: number, whole: number): string => (whole > 0 ? ` (${Math.floor((part * 100) / whole)}%)` : '');
  const running = containers.filter((c) => c.State === 'running' || c.State === 'paused' || c.State === 'restarting');
  const ctrSize = containers.reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const ctrReclaim = containers.filter((c) => !running.includes(c)).reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  if (bool(p, 'verbose')) {
    let t = 'Images space usage:\n\n';
    let it = 'REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n';
    const now = Date.now();
    for (const i of images) {
      const tags = i.RepoTags && i.RepoTags.length > 0 ? i.RepoTags : ['<none>:<none>'];
      for (const rt of tags) {
        const c = rt.lastIndexOf(':');
        it += `${rt.slice(0, c)}\t${rt.slice(c + 1)}\t${shortId(i.Id)}\t${humanDuration(now - i.Created * 1000)} ago\t${humanSize(i.Size, 3)}\t${humanSize(i.SharedSize, 3)}\t${humanSize(i.Size - i.SharedSize, 3)}\t${i.Containers}\n`;
      }
    }
    t += tabwrite(it, 10, 3) + '\nContainers space usage:\n\n';
    let ct = 'CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n';
    for (const c of containers)
      ct += `${shortId(c.Id)}\t${c.Image}\t${ellipsis(JSON.stringify(c.Command), 20)}\t0\t${humanSize(c.SizeRw ?? 0, 3)}\t${humanDuration(now - c.Created * 1000)} ago\t${c.Status}\t${(c.Names[0] ?? '').replace(/^\//, '')}\n`;
    let vt = 'VOLUME NAME\tLINKS\tSIZE\n';
    for (const v of volumes) vt += `${v.Name}\t${v.UsageData?.RefCount ?? 0}\t${humanSize(Math.max(0, v.UsageData?.Size ?? 0), 3)}\n`;
    t += tabwrite(ct, 10, 3) + '\nLocal Volumes space usage:\n\n' + tabwrite(vt, 10, 3) + '\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n';
    ctx.out(t);
    return 0;
  }
  const text =
    'TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE\n' +
    `Images\t${images.length}\t${activeImages.length}\t${humanSize(imgSize, 4)}\t${humanSize(imgReclaim, 4)}${pct(imgReclaim, imgSize)}\n` +
    `Containers\t${containers.length}\t${running.length}\t${humanSize(ctrSize, 4)}\t${humanSize(ctrReclaim, 4)}${pct(ctrReclaim, ctrSize)}\n` +
    `Local Volumes\t${volumes.length}\t${activeVolumes.length}\t${humanSize(volSize, 4)}\t${humanSize(volReclaim, 4)}${pct(volReclaim, volSize)}\n` +
    'Build Cache\t0\t0\t0B\t0B\n';
  ctx.out(tabwrite(text, 10, 3));
  return 0;
}

// ---- specs ----

const diffSpec: CommandSpec = { usage: 'diff CONTAINER', description: "Inspect changes to files or directories on a container's filesystem", minArgs: 1, maxArgs: 1, flags: [] };
const commitSpec: CommandSpec = {
  usage: 'commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
  description: "Create a new image from a container's changes",
  minArgs: 1,
  maxArgs: 2,
  flags: [
    { name: 'author', short: 'a', type: 'string', valueName: 'string', description: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
    { name: 'change', short: 'c', type: 'list', valueName: 'list', description: 'Apply Dockerfile instruction to the created image' },
    { name: 'message', short: 'm', type: 'string', valueName: 'string', description: 'Commit message' },
    { name: 'pause', short: 'p', type: 'bool', description: 'Pause container during commit', default: true },
  ],
};
const cpSpec: CommandSpec = {
  usage: 'cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
  description: 'Copy files/folders between a container and the local filesystem',
  minArgs: 2,
  maxArgs: 2,
  flags: [
    { name: 'archive', short: 'a', type: 'bool', description: 'Archive mode (copy all uid/gid information)' },
    { name: 'follow-link', short: 'L', type: 'bool', description: 'Always follow symbol link in SRC_PATH' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached' },
  ],
};
const historySpec: CommandSpec = {
  usage: 'history [OPTIONS] IMAGE',
  description: 'Show the history of an image',
  minArgs: 1,
  maxArgs: 1,
  flags: [
    { name: 'human', short: 'H', type: 'bool', description: 'Print sizes and dates in human readable format', default: true },
    { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
  ],
};
const pruneSpec: CommandSpec = {
  usage: 'image prune [OPTIONS]',
  description: 'Remove unused images',
  maxArgs: 0,
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused images, not just dangling ones' },
    { name: 'filter', type: 'list', valueName: 'filter', description: 'Provide filter values (e.g. "until=<timestamp>")' },
    { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
  ],
};
const containerPruneSpec: CommandSpec = {
  usage: 'container prune [OPTIONS]',
  description: 'Remove all stopped containers',
  maxArgs: 0,
  flags: [
    { name: 'filter', type: 'list', valueName: 'filter', description: 'Provide filter values (e.g. "until=<timestamp>")' },
    { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
  ],
};
const systemPruneSpec: CommandSpec = {
  usage: 'system prune [OPTIONS]',
  description: 'Remove unused data',
  maxArgs: 0,
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused images not just dangling ones' },
    { name: 'filter', type: 'list', valueName: 'filter', description: 'Provide filter values (e.g. "label=<key>=<value>")' },
    { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
    { name: 'volumes', type: 'bool', description: 'Prune anonymous volumes' },
  ],
};
const dfSpec: CommandSpec = {
  usage: 'system df [OPTIONS]',
  description: 'Show Berth disk usage',
  maxArgs: 0,
  flags: [{ name: 'verbose', short: 'v', type: 'bool', description: 'Show detailed information on space usage' }],
};

export const commands: Record<string, Command> = {
  diff: { spec: diffSpec, run: diff },
  commit: { spec: commitSpec, run: commit },
  cp: { spec: cpSpec, run: cp },
  history: { spec: historySpec, run: history },
  'image prune': { spec: pruneSpec, run: imagePrune },
  'container prune': { spec: containerPruneSpec, run: containerPrune },
  'system prune': { spec: systemPruneSpec, run: systemPrune },
  'system df': { spec: dfSpec, run: systemDf },
};
