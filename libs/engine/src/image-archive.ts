/** `docker save` and `docker load` (GET /images/get, POST /images/load) over the image store. */
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { JsonMessage } from '@berth/api';
import { loadArchive, planSave, writeSave } from '@berth/image';
import type { EngineContext } from './context.js';

/** Every name is resolved before the tar starts, so a missing image is a 404, not a cut stream. */
export async function saveImages(ctx: EngineContext, names: string[]): Promise<Readable> {
  const plan = await planSave(ctx.images, names);
  const tar = writeSave(ctx.images, plan);
  for (const img of plan) ctx.bus.publish('image', 'save', img.parts.id, { name: img.tags[0] ?? img.parts.id });
  return tar;
}

export async function loadImages(ctx: EngineContext, tar: Readable, opts: { quiet: boolean }, progress: (msg: JsonMessage) => void): Promise<void> {
  // Extracted under the data root (as Docker's <root>/tmp), on the same filesystem as the layers.
  const loaded = await loadArchive(ctx.images, tar, { quiet: opts.quiet, tmpRoot: join(ctx.opts.dataRoot, 'tmp') }, progress);
  for (const img of loaded) {
    ctx.bus.publish('image', 'load', img.id, { name: img.tags[0] ?? img.id });
    for (const t of img.tags) ctx.bus.publish('image', 'tag', img.id, { name: t });
  }
}
