/** Recovery at daemon start: re-adopting running shims, cleaning up after runs that ended or were cut short. */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ShimClient } from '@berth/runtime';
import { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { watchExit } from './exit.js';
import { removeNow } from './remove.js';
import { restartAtDaemonStart } from './restart-policy.js';
import { readExitFile } from './shim-watch.js';
import { nowNanos, rfc3339Nano } from './time.js';

export async function recover(ctx: EngineContext): Promise<void> {
  const { records, broken } = ctx.store.loadAll();
  for (const id of broken) {
    // A create that died half way: nothing of it is shown; its layer and files go.
    ctx.log.warn({ containerId: id }, 'removing a half-created container');
    await ctx.images.removeContainerLayer(id).catch(() => undefined);
    ctx.store.remove(id);
  }
  const restartable: Ctr[] = [];
  for (const { rec, host } of records) {
    const c = new Ctr(rec, host);
    ctx.containers.set(rec.Id, c);
    const s = rec.State;
    if (s.Status === 'removing') {
      await removeNow(ctx, c).catch((err: unknown) => ctx.log.warn({ err, containerId: rec.Id }, 'finishing removal failed'));
      continue;
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
      if (s.Status === 'exited' && !rec.HasBeenManuallyStopped) restartable.push(c);
      continue;
    }
    let alive = false;
    if (s.Running) {
      try {
        const st = await ShimClient.status(ctx.socketOf(rec.Id));
        alive = st.status === 'running';
      } catch {
        alive = false;
      }
    }
    if (alive && ctx.liveRestore) {
      const frozen = ctx.rtCgroups.isFrozen(ctx.cgroupPathOf(c));
      Object.assign(s, { Paused: frozen, Status: frozen ? 'paused' : 'running' });
      ctx.save(c);
      watchExit(ctx, c);
      ctx.log.info({ containerId: rec.Id }, 're-adopted a running container');
      continue;
    }
    if (alive) {
      // It may exit on its own meanwhile: that must not stop the daemon from starting.
      await Promise.resolve(ctx.runtime.kill(rec.Id, 9, true)).catch(() => undefined);
    }
    const code = (await readExitFile(ctx.runtime.exitFile(rec.Id))) ?? 255;
    await ctx.runtime.delete(rec.Id, true).catch(() => undefined);
    await ctx.rtCgroups.destroy(ctx.cgroupPathOf(c)).catch(() => undefined);
    rmSync(ctx.socketOf(rec.Id), { force: true });
    await ctx.images.unmountContainerLayer(rec.Id).catch(() => undefined);
    Object.assign(s, { Status: 'exited', Running: false, Paused: false, Restarting: false, Pid: 0, ExitCode: code, FinishedAt: rfc3339Nano(nowNanos()) });
    ctx.save(c);
    if (c.host.AutoRemove) {
      // It ended while the daemon was down; Docker removes such a container when it restores.
      await removeNow(ctx, c).catch((err: unknown) => ctx.log.warn({ err, containerId: rec.Id }, 'auto-remove at start failed'));
      continue;
    }
    if (!rec.HasBeenManuallyStopped) restartable.push(c);
  }
  restartAtDaemonStart(ctx, restartable);
}
