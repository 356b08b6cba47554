/** Pause and unpause: freezing the container's cgroup. */
import { BerthError } from '@berth/errors';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { resumeHealth, stopHealth } from './health.js';

export async function pauseContainer(ctx: EngineContext, ref: string): Promise<void> {
  const c = ctx.get(ref);
  await c.locked(async () => {
    if (!c.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is not running`);
    if (c.rec.State.Paused) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is already paused`);
    const h = ctx.cgroups.open(ctx.cgroupPathOf(c));
    if (!h) throw new BerthError('BERTH_CGROUP', `Container ${c.id}: no cgroup to freeze`);
    await h.freeze();
    Object.assign(c.rec.State, { Paused: true, Status: 'paused' });
    // No probe in a frozen container (Docker closes the monitor: the status turns unhealthy).
    stopHealth(c);
    ctx.save(c);
    ctx.emit(c, 'pause');
  });
}

export async function unpauseContainer(ctx: EngineContext, ref: string): Promise<void> {
  const c = ctx.get(ref);
  await c.locked(async () => {
    if (!c.rec.State.Paused) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is not paused`);
    await ctx.cgroups.open(ctx.cgroupPathOf(c))?.thaw();
    Object.assign(c.rec.State, { Paused: false, Status: 'running' });
    resumeHealth(ctx, c);
    ctx.save(c);
    ctx.emit(c, 'unpause');
  });
}

export async function thawIfPaused(ctx: EngineContext, c: Ctr): Promise<void> {
  if (!c.rec.State.Paused) return;
  await ctx.cgroups.open(ctx.cgroupPathOf(c))?.thaw();
  c.rec.State.Paused = false;
  c.rec.State.Status = 'running';
  ctx.emit(c, 'unpause');
}
