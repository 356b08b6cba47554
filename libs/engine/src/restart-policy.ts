/**
 * Restart policies applied to containers: the back-off timer after an exit, its cancellation,
 * and the restarts at daemon start. The decisions themselves are `restart.ts`.
 */
import type { Logger } from '@berth/log';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { shouldRestart } from './restart.js';
import { startLocked } from './start.js';

/** Drops a pending restart; a container waiting out its back-off shows as exited again. */
export function cancelRestart(c: Ctr): void {
  if (c.restartTimer) clearTimeout(c.restartTimer);
  c.restartTimer = null;
  if (c.rec.State.Restarting) {
    c.rec.State.Restarting = false;
    c.rec.State.Status = 'exited';
  }
}

/** After an exit nobody asked for: restarts after the back-off when the policy says so. */
export function restartAfterExit(ctx: EngineContext, c: Ctr, code: number, ranMs: number, log: Logger): void {
  if (!shouldRestart(c.host.RestartPolicy, { exitCode: code, restartCount: c.rec.RestartCount, manuallyStopped: false })) return;
  const delay = c.backoff.next(ranMs);
  Object.assign(c.rec.State, { Status: 'restarting', Restarting: true });
  ctx.save(c);
  c.restartTimer = setTimeout(() => {
    c.restartTimer = null;
    void c.locked(async () => {
      if (ctx.closed || c.removing || !c.rec.State.Restarting || c.rec.State.Running) return;
      c.rec.RestartCount++;
      await startLocked(ctx, c);
    }).catch((err: unknown) => {
      log.warn({ err }, 'restart by policy failed');
      Object.assign(c.rec.State, { Status: 'exited', Restarting: false });
      ctx.save(c);
    });
  }, delay);
}

/** At daemon start: starts the exited containers (not stopped by a user) whose policy asks for it. */
export function restartAtDaemonStart(ctx: EngineContext, restartable: readonly Ctr[]): void {
  for (const c of restartable) {
    if (!shouldRestart(c.host.RestartPolicy, { exitCode: c.rec.State.ExitCode, restartCount: c.rec.RestartCount, manuallyStopped: c.rec.HasBeenManuallyStopped }))
      continue;
    if (c.host.RestartPolicy.Name === 'on-failure' && !c.rec.State.Running && c.rec.State.Status !== 'exited') continue;
    void c.locked(() => startLocked(ctx, c)).catch((err: unknown) => ctx.log.warn({ err, containerId: c.id }, 'restart at daemon start failed'));
  }
}
