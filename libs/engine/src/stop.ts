/** Stop, kill and restart. */
import { BerthError } from '@berth/errors';
import { parseSignal } from '@berth/runtime';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import type { StopOptions } from './contract.js';
import { thawIfPaused } from './pause.js';
import { cancelRestart } from './restart-policy.js';
import { apiSignal } from './signals.js';
import { startLocked } from './start.js';

export async function sendSignal(ctx: EngineContext, c: Ctr, sig: number, all = false): Promise<void> {
  await ctx.runtime.kill(c.id, sig, all);
  ctx.emit(c, 'kill', { signal: String(sig) });
}

/** Waits at most ms (negative = forever) for the current run to end. */
export async function waitExited(c: Ctr, ms: number): Promise<boolean> {
  if (!c.rec.State.Running) return true;
  if (ms < 0) {
    await c.exited.promise;
    return true;
  }
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (t = setTimeout(() => r(false), ms)));
  const ok = await Promise.race([c.exited.promise.then(() => true as const), timeout]);
  clearTimeout(t);
  return ok;
}

async function stopLocked(ctx: EngineContext, c: Ctr, opts: StopOptions): Promise<void> {
  c.suppressRestart = true;
  c.rec.HasBeenManuallyStopped = true;
  ctx.save(c);
  const sig = parseSignal(opts.signal || c.rec.Config.StopSignal || 'SIGTERM');
  const timeout = opts.timeout ?? c.rec.Config.StopTimeout ?? 10;
  try {
    await sendSignal(ctx, c, sig);
    await thawIfPaused(ctx, c);
  } catch (err) {
    ctx.log.debug({ err, containerId: c.id }, 'stop signal failed; killing');
  }
  if (!(await waitExited(c, timeout < 0 ? -1 : timeout * 1000))) {
    await sendSignal(ctx, c, 9, true).catch(() => undefined);
    await thawIfPaused(ctx, c).catch(() => undefined);
    await waitExited(c, -1);
  }
}

export async function stopContainer(ctx: EngineContext, ref: string, opts: StopOptions): Promise<'stopped' | 'not-modified'> {
  if (opts.signal) apiSignal(opts.signal);
  const c = ctx.get(ref);
  return c.locked(async () => {
    if (!c.rec.State.Running) {
      if (c.rec.State.Restarting) {
        cancelRestart(c);
        c.rec.HasBeenManuallyStopped = true;
        ctx.save(c);
        ctx.emit(c, 'stop');
        return 'stopped';
      }
      return 'not-modified';
    }
    await stopLocked(ctx, c, opts);
    ctx.emit(c, 'stop');
    return 'stopped';
  });
}

export async function restartContainer(ctx: EngineContext, ref: string, opts: StopOptions): Promise<void> {
  const c = ctx.get(ref);
  await c.locked(async () => {
    cancelRestart(c);
    if (c.rec.State.Running) {
      c.restarting = true;
      try {
        await stopLocked(ctx, c, opts);
      } finally {
        c.restarting = false;
      }
      ctx.emit(c, 'stop');
    }
    c.rec.HasBeenManuallyStopped = false;
    await startLocked(ctx, c);
    ctx.emit(c, 'restart');
  });
}

export async function killContainer(ctx: EngineContext, ref: string, signal?: string): Promise<void> {
  // The signal first, as dockerd: a bad one is the answer even for an unknown container.
  const sig = apiSignal(signal || 'SIGKILL');
  const c = ctx.get(ref);
  if (!c.rec.State.Running)
    throw new BerthError('BERTH_CONTAINER_STATE', `cannot kill container: ${ref}: container ${c.id} is not running`, { details: { id: c.id } });
  if (sig === 9 || sig === 15 || sig === 2) {
    c.suppressRestart = true;
    c.rec.HasBeenManuallyStopped = true;
    ctx.save(c);
  }
  await sendSignal(ctx, c, sig, sig === 9);
  if (sig === 9) {
    await thawIfPaused(ctx, c).catch(() => undefined);
    await waitExited(c, 10_000);
  }
}
