/** Recovery at daemon start: re-adopting running shims, cleaning up after runs that ended or were cut short. */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ShimClient } from '@berth/runtime';
import { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { LOST_SHIM_EXIT_CODE, watchExit } from './exit.js';
import { resumeHealth } from './health.js';
import { removeNow } from './remove.js';
import { releaseShm } from './shm.js';
import { restartAtDaemonStart } from './restart-policy.js';
import { readExitFile, watchShim } from './shim-watch.js';
import { nowNanos, rfc3339Nano } from './time.js';

/** What recovery found that the rest of the daemon's start must know. */
export interface Recovered {
  /** Containers whose record could not be used: skipped, their directory, layer and run left as they are. */
  skipped: Set<string>;
}

export async function recover(ctx: EngineContext): Promise<Recovered> {
  const { records, halfMade, unusable } = ctx.store.loadAll();
  const skipped = new Set<string>();
  for (const u of unusable) {
    // Docker logs such a container and goes on without it. Nothing of it is touched: not its
    // directory or layer, and not its run if it has one (the record may be repaired by hand).
    ctx.log.error({ containerId: u.id, path: u.path, error: u.error }, `skipping a container whose record cannot be used: ${u.path}: ${u.error}`);
    skipped.add(u.id);
  }
  for (const id of halfMade) {
    // A create that died before its record was complete: it never answered, nothing of it is shown.
    ctx.log.warn({ containerId: id, path: ctx.store.dir(id) }, 'removing a half-created container');
    await ctx.images.removeContainerLayer(id).catch(() => undefined);
    ctx.store.remove(id);
  }
  await removeOrphanLayers(ctx);
  const restartable: Ctr[] = [];
  for (const { rec, host } of records) {
    const c = new Ctr(rec, host);
    ctx.containers.set(rec.Id, c);
    try {
      if (await recoverOne(ctx, c)) restartable.push(c);
    } catch (err) {
      // One container must not keep the daemon from starting: it is left out, as an unusable record is.
      ctx.log.error({ err, containerId: rec.Id }, 'recovering the container failed: skipping it');
      c.watch?.cancel();
      ctx.containers.delete(rec.Id);
      skipped.add(rec.Id);
    }
  }
  restartAtDaemonStart(ctx, restartable);
  return { skipped };
}

/**
 * Writable layers without a container directory: create makes the layer first and the directory
 * next, and removal takes the layer before the directory, so such a layer is a create that died
 * in between (or whose own clean-up did). A directory of any kind, even one whose record cannot
 * be used, keeps its layer.
 */
async function removeOrphanLayers(ctx: EngineContext): Promise<void> {
  const mounts = join(ctx.opts.dataRoot, 'image', ctx.opts.graphDriver.name, 'layerdb', 'mounts');
  let ids: string[];
  try {
    ids = readdirSync(mounts);
  } catch {
    return;
  }
  for (const id of ids) {
    if (!/^[0-9a-f]{64}$/.test(id) || existsSync(ctx.store.dir(id))) continue;
    ctx.log.warn({ containerId: id }, 'removing the writable layer of a half-created container');
    await ctx.images.removeContainerLayer(id).catch((err: unknown) => ctx.log.warn({ err, containerId: id }, 'removing an orphan layer failed'));
  }
}

/**
 * Whether the run's process is still there though its shim is not (the shim was killed while the
 * daemon was down): the delete that follows kills it, which is recorded as for a shim lost while
 * the daemon runs. Otherwise, without an exit status (the run ended with the host, its runtime
 * state with it), Docker shows 255.
 */
function processOutlivedShim(ctx: EngineContext, id: string): boolean {
  try {
    const status = ctx.runtime.state(id).status;
    return status === 'running' || status === 'paused';
  } catch {
    return false;
  }
}

/** Brings one container's record in line with what still runs; true when its restart policy may start it now. */
async function recoverOne(ctx: EngineContext, c: Ctr): Promise<boolean> {
  const rec = c.rec;
  const s = rec.State;
  if (s.Status === 'removing') {
    await removeNow(ctx, c).catch((err: unknown) => ctx.log.warn({ err, containerId: rec.Id }, 'finishing removal failed'));
    return false;
  }
  if (!s.Running && s.Restarting) {
    // Waiting out a restart back-off when the daemon went down: the exit is recorded already.
    Object.assign(s, { Status: 'exited', Restarting: false });
    ctx.save(c);
  }
  if (!s.Running) {
    // A start cut short by the crash may have left runtime state, a cgroup or a mount.
    if (existsSync(join(ctx.opts.execRoot, 'runtime', rec.Id))) {
      await ctx.runtime.delete(rec.Id, true).catch(() => undefined);
      await ctx.rtCgroups.destroy(ctx.cgroupPathOf(c)).catch(() => undefined);
      await ctx.images.unmountContainerLayer(rec.Id).catch(() => undefined);
      rmSync(ctx.socketOf(rec.Id), { force: true });
    }
    releaseShm(ctx, c);
    if (s.Status === 'exited' && c.host.AutoRemove) {
      // Its exit was recorded and the removal that follows was cut short.
      await removeNow(ctx, c).catch((err: unknown) => ctx.log.warn({ err, containerId: rec.Id }, 'auto-remove at start failed'));
      return false;
    }
    return s.Status === 'exited' && !rec.HasBeenManuallyStopped;
  }
  let alive = false;
  try {
    const st = await ShimClient.status(ctx.socketOf(rec.Id));
    alive = st.status === 'running';
  } catch {
    alive = false;
  }
  if (alive && ctx.liveRestore) {
    const frozen = ctx.rtCgroups.isFrozen(ctx.cgroupPathOf(c));
    Object.assign(s, { Paused: frozen, Status: frozen ? 'paused' : 'running' });
    ctx.save(c);
    watchExit(ctx, c);
    // Monitoring resumes with the status the last daemon saved (none while paused).
    resumeHealth(ctx, c);
    ctx.log.info({ containerId: rec.Id }, 're-adopted a running container');
    return false;
  }
  let code: number | null = null;
  if (alive) {
    // Live restore is off: the run ends here, and its shim reports the code (137).
    const w = watchShim(ctx.socketOf(rec.Id), ctx.runtime.exitFile(rec.Id));
    // It may exit on its own meanwhile: that must not stop the daemon from starting.
    await Promise.resolve(ctx.runtime.kill(rec.Id, 9, true)).catch(() => undefined);
    code = await Promise.race([w.result.catch(() => null), new Promise<null>((r) => setTimeout(r, 5000, null).unref())]);
    w.cancel();
    ctx.log.info({ containerId: rec.Id, exitCode: code }, 'live restore is off: killed a running container');
  }
  code ??= (await readExitFile(ctx.runtime.exitFile(rec.Id))) ?? (processOutlivedShim(ctx, rec.Id) ? LOST_SHIM_EXIT_CODE : 255);
  await ctx.runtime.delete(rec.Id, true).catch(() => undefined);
  await ctx.rtCgroups.destroy(ctx.cgroupPathOf(c)).catch(() => undefined);
  rmSync(ctx.socketOf(rec.Id), { force: true });
  await ctx.images.unmountContainerLayer(rec.Id).catch(() => undefined);
  releaseShm(ctx, c);
  Object.assign(s, { Status: 'exited', Running: false, Paused: false, Restarting: false, Pid: 0, ExitCode: code, FinishedAt: rfc3339Nano(nowNanos()) });
  ctx.save(c);
  if (c.host.AutoRemove) {
    // It ended while the daemon was down; Docker removes such a container when it restores.
    await removeNow(ctx, c).catch((err: unknown) => ctx.log.warn({ err, containerId: rec.Id }, 'auto-remove at start failed'));
    return false;
  }
  return !rec.HasBeenManuallyStopped;
}
