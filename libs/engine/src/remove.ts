/** Container removal. */
import { rmSync } from 'node:fs';
import { BerthError } from '@berth/errors';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { thawIfPaused } from './pause.js';
import { cancelRestart } from './restart-policy.js';
import { sendSignal, waitExited } from './stop.js';
import { dropPortViews, teardownNetwork } from './network.js';

export async function removeContainer(ctx: EngineContext, ref: string, opts: { force: boolean; volumes: boolean }): Promise<void> {
  const c = ctx.get(ref);
  const check = (): void => {
    if (c.removing) throw new BerthError('BERTH_CONTAINER_STATE', `removal of container ${ref} is already in progress`);
    if (c.rec.State.Running && !opts.force) {
      if (c.rec.State.Paused)
        throw new BerthError('BERTH_CONTAINER_STATE', `cannot remove container "${c.rec.Name}": container is paused and must be unpaused first`);
      throw new BerthError(
        'BERTH_CONTAINER_STATE',
        `cannot remove container "${c.rec.Name}": container is running: stop the container before removing or force remove`,
      );
    }
  };
  check();
  await c.locked(async () => {
    // Again under the lock: a start queued before it may have made the container run.
    check();
    c.removing = true;
    cancelRestart(c);
    if (c.rec.State.Running) {
      c.suppressRestart = true;
      await sendSignal(ctx, c, 9, true).catch(() => undefined);
      await thawIfPaused(ctx, c).catch(() => undefined);
      await waitExited(c, -1);
    }
  });
  await removeNow(ctx, c);
}

export async function removeNow(ctx: EngineContext, c: Ctr): Promise<void> {
  if (!ctx.containers.has(c.id)) return;
  c.removing = true;
  Object.assign(c.rec.State, { Status: 'removing' });
  cancelRestart(c);
  for (const drop of [...c.pendingAttach.values()]) drop();
  c.pendingAttach.clear();
  for (const eid of c.execs) {
    ctx.execs.get(eid)?.watch?.cancel();
    ctx.execs.delete(eid);
  }
  await ctx.runtime.delete(c.id, true).catch(() => undefined);
  await teardownNetwork(ctx, c);
  await ctx.images.unmountContainerLayer(c.id).catch(() => undefined);
  await ctx.images.removeContainerLayer(c.id).catch((err: unknown) => {
    if (!(err instanceof BerthError && err.code === 'BERTH_LAYER_NOT_FOUND')) throw err;
  });
  rmSync(ctx.bundleOf(c.id), { recursive: true, force: true });
  rmSync(ctx.socketOf(c.id), { force: true });
  ctx.store.remove(c.id);
  ctx.containers.delete(c.id);
  dropPortViews(c);
  for (const eid of c.execs) ctx.execs.delete(eid);
  ctx.emit(c, 'destroy');
  for (const w of [...c.waiters]) {
    c.waiters.delete(w);
    w.resolve({ StatusCode: c.rec.State.ExitCode });
  }
}
