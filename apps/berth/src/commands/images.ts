/** images (image ls), rmi, tag, import. */
import { openBody } from './archive.js';
import { encodeFilters, type ImageDeleteItem, type ImageSummary } from '@berth/api/wire';
import { bool, list, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { goTimeString, humanDuration, humanSize, renderFormatted, shortId } from '../output/format.js';
import { filtersFrom } from './ps.js';
import { printJsonMessages, splitReference } from './run.js';

export const IMAGES_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
export const IMAGES_DIGEST_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';

export const IMAGES_HEADERS: Record<string, string> = {
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE',
};

/** One row per repository:tag (docker's image formatter). */
export function imageRows(images: ImageSummary[], trunc: boolean, now = Date.now()): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const img of images) {
    const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    const digests = (img.RepoDigests ?? []).filter((d) => d !== '<none>@<none>');
    const base = {
      ID: trunc ? shortId(img.Id) : img.Id,
      CreatedSince: `${humanDuration(now - img.Created * 1000)} ago`,
      CreatedAt: goTimeString(img.Created),
      Size: humanSize(img.Size, 3),
      Containers: img.Containers === undefined || img.Containers < 0 ? 'N/A' : String(img.Containers),
      SharedSize: img.SharedSize === undefined || img.SharedSize < 0 ? 'N/A' : humanSize(img.SharedSize, 3),
      UniqueSize: img.SharedSize === undefined || img.SharedSize < 0 ? 'N/A' : humanSize(img.Size - img.SharedSize, 3),
      VirtualSize: humanSize(img.Size, 3),
    };
    const digestFor = (repo: string): string => {
      const d = digests.find((x) => x.startsWith(`${repo}@`));
      return d ? d.slice(d.indexOf('@') + 1) : '<none>';
    };
    const labels = img.Labels ?? {};
    const push = (r: Record<string, unknown>): void => {
      Object.defineProperty(r, 'Label', { value: (k: string) => labels[k] ?? '', enumerable: false });
      rows.push(r);
    };
    if (!tags.length) {
      if (digests.length)
        for (const d of digests) push({ ...base, Repository: d.slice(0, d.indexOf('@')), Tag: '<none>', Digest: d.slice(d.indexOf('@') + 1) });
      else push({ ...base, Repository: '<none>', Tag: '<none>', Digest: '<none>' });
      continue;
    }
    for (const t of tags) {
      const { name, tag } = splitReference(t);
      push({ ...base, Repository: name, Tag: tag, Digest: digestFor(name) });
    }
  }
  return rows;
}

async function images(ctx: Context, p: ParsedArgs): Promise<number> {
  const filters = filtersFrom(list(p, 'filter'));
  if (p.args[0]) (filters.reference ??= []).push(p.args[0]);
  const imgs = await ctx.client.get<ImageSummary[]>('/images/json', {
    all: bool(p, 'all') ? '1' : undefined,
    filters: Object.keys(filters).length ? encodeFilters(filters) : undefined,
  });
  const trunc = !bool(p, 'no-trunc');
  if (bool(p, 'quiet')) {
    const seen = new Set<string>();
    for (const i of imgs) {
      const id = trunc ? shortId(i.Id) : i.Id;
      if (!seen.has(id)) {
        seen.add(id);
        ctx.out(`${id}\n`);
      }
    }
    return 0;
  }
  const table = bool(p, 'digests') ? IMAGES_DIGEST_TABLE : IMAGES_TABLE;
  ctx.out(renderFormatted(imageRows(imgs, trunc), str(p, 'format'), table, IMAGES_HEADERS));
  return 0;
}

async function rmi(ctx: Context, p: ParsedArgs): Promise<number> {
  let failed = 0;
  for (const name of p.args) {
    try {
      const items = await ctx.client.call<ImageDeleteItem[]>('DELETE', `/images/${encodeURIComponent(name)}`, {
        query: { force: bool(p, 'force') ? '1' : undefined, noprune: bool(p, 'no-prune') ? '1' : undefined },
      });
      for (const it of items ?? []) {
        if ('Untagged' in it) ctx.out(`Untagged: ${it.Untagged}\n`);
        else if ('Deleted' in it) ctx.out(`Deleted: ${it.Deleted}\n`);
      }
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      failed++;
      ctx.err(`${err.message}\n`);
    }
  }
  return failed ? 1 : 0;
}

async function tag(ctx: Context, p: ParsedArgs): Promise<number> {
  const [source, target] = p.args;
  const { name, tag: t } = splitReference(target!);
  if (target!.includes('@')) throw new CliError('Error parsing reference: refusing to create a tag with a digest reference');
  await ctx.client.call('POST', `/images/${encodeURIComponent(source!)}/tag`, { query: { repo: name, tag: t } });
  return 0;
}

async function importCmd(ctx: Context, p: ParsedArgs): Promise<number> {
  const [source, ref] = p.args;
  const fromStdin = source === '-';
  const isUrl = !fromStdin && /^[a-z][a-z0-9+.-]*:\/\//i.test(source!);
  const query = {
    fromSrc: fromStdin || !isUrl ? '-' : source,
    repo: ref ?? '',
    tag: '',
    message: str(p, 'message'),
    changes: list(p, 'change').length ? list(p, 'change') : undefined,
    platform: str(p, 'platform') || undefined,
  };
  let body: NodeJS.ReadableStream | undefined;
  const headers: Record<string, string> = {};
  if (fromStdin) body = process.stdin;
  else if (!isUrl) {
    const f = await openBody(source!);
    body = f.body;
    if (f.size !== null) headers['Content-Length'] = String(f.size);
  }
  if (body) headers['Content-Type'] = 'text/plain';
  const res = await ctx.client.stream('POST', '/images/create', { query, body, headers });
  await printJsonMessages(res, ctx.out);
  return 0;
}

const imagesSpec: CommandSpec = {
  usage: 'images [OPTIONS] [REPOSITORY[:TAG]]',
  description: 'List images',
  maxArgs: 1,
  aliases: ['berth image ls', 'berth image list', 'berth images'],
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Show all images (default hides intermediate images)' },
    { name: 'digests', type: 'bool', description: 'Show digests' },
    { name: 'filter', short: 'f', type: 'list', valueName: 'filter', description: 'Filter output based on conditions provided' },
    { name: 'format', type: 'string', valueName: 'string', description: 'Format output using a custom template' },
    { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
  ],
};

export const commands: Record<string, Command> = {
  images: { spec: imagesSpec, run: images },
  rmi: {
    spec: {
      usage: 'rmi [OPTIONS] IMAGE [IMAGE...]',
      description: 'Remove one or more images',
      minArgs: 1,
      flags: [
        { name: 'force', short: 'f', type: 'bool', description: 'Force removal of the image' },
        { name: 'no-prune', type: 'bool', description: 'Do not delete untagged parents' },
      ],
    },
    run: rmi,
  },
  tag: {
    spec: { usage: 'tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', description: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', minArgs: 2, maxArgs: 2, flags: [] },
    run: tag,
  },
  import: {
    spec: {
      usage: 'import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]',
      description: 'Import the contents from a tarball to create a filesystem image',
      minArgs: 1,
      maxArgs: 2,
      flags: [
        { name: 'change', short: 'c', type: 'list', valueName: 'list', description: 'Apply Dockerfile instruction to the created image' },
        { name: 'message', short: 'm', type: 'string', valueName: 'string', description: 'Set commit message for imported image' },
        { name: 'platform', type: 'string', valueName: 'string', description: 'Set platform if server is multi-platform capable' },
      ],
    },
    run: importCmd,
  },
};
