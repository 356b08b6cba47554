/** Container removal. */
import { rmSync } from 'node:fs';
import type { Filters } from '@berth/api';
import { BerthError } from '@berth/errors';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { stopHealth } from './health.js';
import { thawIfPaused } from './pause.js';
import { cancelRestart } from './restart-policy.js';
import { sendSignal, waitExited } from './stop.js';
import { checkFilterKeys, matchLabels, untilOf } from './filters.js';
import { dropPortViews, teardownNetwork } from './network.js';
import { releaseShm } from './shm.js';
import { removeContainerVolumes } from './volumes-mounts.js';

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
  await removeNow(ctx, c, opts.volumes);
}

/** `volumes`: remove its anonymous volumes too (`rm -v`; an --rm container's go with it, as in Docker). */
export async function removeNow(ctx: EngineContext, c: Ctr, volumes = c.host.AutoRemove): Promise<void> {
  if (!ctx.containers.has(c.id)) return;
  c.removing = true;
  Object.assign(c.rec.State, { Status: 'removing' });
  cancelRestart(c);
  stopHealth(c);
  for (const drop of [...c.pendingAttach.values()]) drop();
  c.pendingAttach.clear();
  for (const eid of c.execs) {
    ctx.execs.get(eid)?.watch?.cancel();
    ctx.execs.delete(eid);
  }
  await ctx.runtime.delete(c.id, true).catch(() => undefined);
  (await teardownNetwork(ctx, c))();
  await ctx.images.unmountContainerLayer(c.id).catch(() => undefined);
  releaseShm(ctx, c);
  await ctx.images.removeContainerLayer(c.id).catch((err: unknown) => {
    if (!(err instanceof BerthError && err.code === 'BERTH_LAYER_NOT_FOUND')) throw err;
  });
  rmSync(ctx.bundleOf(c.id), { recursive: true, force: true });
  rmSync(ctx.socketOf(c.id), { force: true });
  ctx.store.remove(c.id);
  ctx.containers.delete(c.id);
  // After the record: the container no longer references its volumes.
  await removeContainerVolumes(ctx, c, volumes);
  dropPortViews(c);
  for (const eid of c.execs) ctx.execs.delete(eid);
  ctx.emit(c, 'destroy');
  for (const w of [...c.waiters]) {
    c.waiters.delete(w);
    w.resolve({ StatusCode: c.rec.State.ExitCode });
  }
}

/**
 * `container prune`: removes every container that is not running (created, exited, dead), as
 * Docker's; `until` keeps those created at or after the time, `label`/`label!` select by label.
 */
export async function pruneContainers(ctx: EngineContext, filters: Filters): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
  checkFilterKeys(filters, ['until', 'label', 'label!']);
  const untils = [...(filters.get('until') ?? [])].map(untilOf);
  const until = untils.length > 0 ? Math.min(...untils) : undefined;
  const notLabels = [...(filters.get('label!') ?? [])];
  const deleted: string[] = [];
  let reclaimed = 0;
  for (const c of [...ctx.containers.values()]) {
    const s = c.rec.State;
    if (s.Running || s.Paused || s.Restarting || c.removing) continue;
    if (until !== undefined && Date.parse(c.rec.Created) / 1000 >= until) continue;
    if (!matchLabels(filters.get('label'), c.rec.Config.Labels)) continue;
    if (notLabels.some((l) => matchLabels(new Set([l]), c.rec.Config.Labels))) continue;
    const size = await ctx.images.size(c.id).catch(() => 0);
    try {
      await removeContainer(ctx, c.id, { force: false, volumes: false });
      deleted.push(c.id);
      reclaimed += size;
    } catch (err) {
      // started meanwhile, or being removed by someone else: not ours to prune
      ctx.log.warn({ err, containerId: c.id }, 'prune: container removal failed');
    }
  }
  ctx.bus.publish('container', 'prune', '', { reclaimed: String(reclaimed) });
  return { ContainersDeleted: deleted, SpaceReclaimed: reclaimed };
}
