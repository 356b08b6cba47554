/** The image facade: the image store's operations with their events, and container export. */
import type { Readable } from 'node:stream';
import type { Filters, ImageDeleteItem, ImageInspect, ImageSummary, JsonMessage } from '@berth/api';
import type { EngineContext } from './context.js';
import type { ImportOptions } from './contract.js';

export async function listImages(ctx: EngineContext, opts: { all: boolean; filters: Filters }): Promise<ImageSummary[]> {
  const list = await ctx.images.list(opts);
  for (const img of list) img.Containers = [...ctx.containers.values()].filter((c) => c.rec.Image === img.Id).length;
  return list;
}

export function inspectImage(ctx: EngineContext, ref: string): Promise<ImageInspect> {
  return ctx.images.inspect(ref);
}

export async function importImage(ctx: EngineContext, tar: Readable, opts: ImportOptions, _progress: (msg: JsonMessage) => void): Promise<string> {
  // Docker reports no progress for an import from the request body (only for a URL source),
  // so `docker import` prints the image id alone; the final status line is berthd's.
  const id = await ctx.images.importTar(tar, { repo: opts.repo, tag: opts.tag, message: opts.message, changes: opts.changes });
  const name = opts.repo ? (opts.tag ? `${opts.repo}:${opts.tag}` : opts.repo) : '';
  ctx.bus.publish('image', 'import', id, name ? { name } : {});
  if (name) ctx.bus.publish('image', 'tag', id, { name: name.includes(':') ? name : `${name}:latest` });
  return id;
}

export async function tagImage(ctx: EngineContext, ref: string, repo: string, tag: string): Promise<void> {
  await ctx.images.tag(ref, repo, tag);
  const img = await ctx.images.resolve(ref).catch(() => null);
  ctx.bus.publish('image', 'tag', img?.id ?? ref, { name: `${repo}:${tag || 'latest'}` });
}

export async function removeImage(ctx: EngineContext, ref: string, opts: { force: boolean; noprune: boolean }): Promise<ImageDeleteItem[]> {
  const items = await ctx.images.remove(ref, opts, (imageId) => {
    const c = [...ctx.containers.values()].find((x) => x.rec.Image === imageId);
    return c ? { id: c.id, running: c.rec.State.Running } : null;
  });
  for (const it of items) {
    if ('Untagged' in it) ctx.bus.publish('image', 'untag', ref, { name: it.Untagged });
    else ctx.bus.publish('image', 'delete', it.Deleted, { name: it.Deleted });
  }
  return items;
}

export async function exportContainer(ctx: EngineContext, ref: string): Promise<Readable> {
  const c = ctx.get(ref);
  const r = await ctx.images.exportContainer(c.id);
  ctx.emit(c, 'export');
  return r;
}
