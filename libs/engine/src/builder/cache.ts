/**
 * The classic builder's cache: a step is reused when an image exists whose parent is the
 * current image and whose `container_config` (the step's command, `#(nop) COPY file:<sum>`
 * for COPY/ADD, and the config it ran with) is the same (dockerd's getLocalCachedImage).
 */
import type { ImageRuntimeConfig } from '@berth/api';
import { isNotFound } from '@berth/errors';
import type { EngineContext } from '../context.js';

/** The fields compared, with empty and absent treated alike. */
function canonical(c: ImageRuntimeConfig | undefined): string {
  const v = c ?? {};
  const emptyToNull = (x: unknown): unknown => {
    if (x === undefined || x === null || x === '') return null;
    if (Array.isArray(x)) return x.length === 0 ? null : x;
    if (typeof x === 'object') {
      const keys = Object.keys(x as object).sort();
      if (keys.length === 0) return null;
      return Object.fromEntries(keys.map((k) => [k, (x as Record<string, unknown>)[k]]));
    }
    return x;
  };
  return JSON.stringify({
    Cmd: emptyToNull(v.Cmd),
    Entrypoint: emptyToNull(v.Entrypoint),
    Env: emptyToNull(v.Env),
    ExposedPorts: emptyToNull(v.ExposedPorts),
    Healthcheck: emptyToNull(v.Healthcheck),
    Labels: emptyToNull(v.Labels),
    OnBuild: emptyToNull(v.OnBuild),
    Shell: emptyToNull(v.Shell),
    StopSignal: emptyToNull(v.StopSignal),
    User: emptyToNull(v.User),
    Volumes: emptyToNull(v.Volumes),
    WorkingDir: emptyToNull(v.WorkingDir),
  });
}

export class BuildCache {
  constructor(private readonly ctx: EngineContext) {}

  /** The id of a cached child of `parent` made by the same step, or null. */
  async lookup(parent: string, containerConfig: ImageRuntimeConfig): Promise<string | null> {
    const want = canonical(containerConfig);
    const images = await this.ctx.images.list({ all: true });
    let best: { id: string; created: number } | null = null;
    for (const s of images) {
      if (s.ParentId !== parent) continue;
      try {
        const img = await this.ctx.images.resolve(s.Id);
        if (canonical(img.config.container_config) !== want) continue;
        // The newest match, as Docker's store iteration tends to give.
        if (best === null || s.Created > best.created) best = { id: s.Id, created: s.Created };
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return best?.id ?? null;
  }
}
