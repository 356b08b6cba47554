/** Exit collection: watching the shim, recording the exit, waking waiters, and what follows an exit. */
import { rmSync } from 'node:fs';
import type { WaitResponse } from '@berth/api';
import { BerthError } from '@berth/errors';
import { invalid } from './config.js';
import { deferred, type Ctr, type Waiter } from './container.js';
import type { EngineContext } from './context.js';
import { execExited } from './exec.js';
import { stopHealth } from './health.js';
import type { WaitCondition, WaitHandle } from './contract.js';
import { teardownNetwork } from './network.js';
import { oomAtExit } from './oom.js';
import { removeNow } from './remove.js';
import { releaseShm } from './shm.js';
import { releaseVolumes } from './volumes-mounts.js';
import { restartAfterExit } from './restart-policy.js';
import { readExitFile, watchShim } from './shim-watch.js';
import { nowNanos, parseRfc3339Nano, rfc3339Nano } from './time.js';

/** The exit code recorded when a container's shim is gone without having reported one. */
export const LOST_SHIM_EXIT_CODE = 137;

export function watchExit(ctx: EngineContext, c: Ctr): void {
  c.watch?.cancel();
  const w = watchShim(ctx.socketOf(c.id), ctx.runtime.exitFile(c.id));
  c.watch = w;
  ctx.log.debug({ containerId: c.id }, 'watching the shim for the exit');
  w.result.then(
    (code) => {
      ctx.log.debug({ containerId: c.id, exitCode: code }, 'the shim reported the exit');
      void onExit(ctx, c, code).catch((err: unknown) => ctx.log.error({ err, containerId: c.id }, 'exit handling failed'));
    },
    (err: unknown) => {
      // The shim died (killed, OOM) before it could report: the cleanup below SIGKILLs what is
      // left of the run, and the exit is recorded as that kill, 137, as Docker does (containerd
      // deletes a dead shim's container by force and reports 128+SIGKILL).
      ctx.log.warn({ err, containerId: c.id }, 'lost the shim without an exit status');
      void onExit(ctx, c, LOST_SHIM_EXIT_CODE).catch((err2: unknown) => ctx.log.error({ err: err2, containerId: c.id }, 'exit handling failed'));
    },
  );
}

async function onExit(ctx: EngineContext, c: Ctr, code: number): Promise<void> {
  if (ctx.closed) return;
  c.watch = null;
  stopHealth(c);
  const log = ctx.log.child({ containerId: c.id });
  const s = c.rec.State;
  const startedMs = parseRfc3339Nano(s.StartedAt);
  const finished = nowNanos();
  const ranMs = startedMs === null ? 0 : Number((finished - startedMs) / 1_000_000n);
  const { killed: oom, emit: oomEvent } = oomAtExit(ctx, c);
  await finishExecs(ctx, c);
  // The process is gone with its PID namespace: its runtime state and cgroup, its network and
  // its filesystem are released side by side.
  const [, disconnected] = await Promise.all([
    (async () => {
      try {
        await ctx.runtime.delete(c.id, true);
      } catch (err) {
        if (!(err instanceof BerthError && err.code === 'BERTH_CONTAINER_NOT_FOUND')) log.warn({ err }, 'runtime delete after exit failed');
      }
      await ctx.rtCgroups.destroy(ctx.cgroupPathOf(c)).catch(() => undefined);
    })(),
    teardownNetwork(ctx, c),
    ctx.images.unmountContainerLayer(c.id).catch((err: unknown) => log.warn({ err }, 'unmount after exit failed')),
  ]);
  rmSync(ctx.socketOf(c.id), { force: true });
  releaseShm(ctx, c);
  releaseVolumes(ctx, c);
  Object.assign(s, { Status: 'exited', Running: false, Paused: false, Restarting: false, Pid: 0, ExitCode: code, OOMKilled: oom, FinishedAt: rfc3339Nano(finished) });
  const autoRemove = c.host.AutoRemove && !c.removing && !c.restarting;
  try {
    // An --rm container's record goes right after: no fsync (a daemon that finds it "running"
    // after a power loss ends and removes it, as it would this one).
    ctx.save(c, false, !autoRemove);
  } catch (err) {
    // The waiters and stop/rm must still learn of the exit; the record is saved again later.
    log.error({ err }, 'saving the exit failed');
  }
  log.info({ exitCode: code, oomKilled: oom }, 'container exited');
  if (oomEvent) ctx.emit(c, 'oom');
  ctx.emit(c, 'die', { exitCode: String(code), execDuration: String(Math.floor(ranMs / 1000)) });
  disconnected();
  for (const w of [...c.waiters]) {
    if (w.condition === 'removed') continue;
    c.waiters.delete(w);
    w.resolve({ StatusCode: code });
  }
  const done = c.exited;
  const manual = c.suppressRestart || c.rec.HasBeenManuallyStopped || c.removing;
  // Docker removes an AutoRemove container after any exit, a `stop` or `kill` included; only a
  // restart in progress keeps it.
  if (autoRemove) {
    done.resolve();
    void removeNow(ctx, c).catch((err: unknown) => log.warn({ err }, 'auto-remove failed'));
    return;
  }
  if (!manual) restartAfterExit(ctx, c, code, ranMs, log);
  done.resolve();
}

/**
 * The container's exit ends its execs: each still running one is recorded as exited, with the
 * code its shim reports or wrote to its exit file (read before the runtime state goes), else 137.
 */
async function finishExecs(ctx: EngineContext, c: Ctr): Promise<void> {
  for (const eid of c.execs) {
    const e = ctx.execs.get(eid);
    if (!e?.running) continue;
    // The kernel kills the exec with the container's PID namespace: give its shim a moment to report.
    const reported = e.watch
      ? await Promise.race([e.watch.result.catch(() => null), new Promise<null>((r) => setTimeout(r, 500, null).unref())])
      : null;
    e.watch?.cancel();
    const code = reported ?? (e.exitFile ? await readExitFile(e.exitFile) : null);
    if (e.running) execExited(ctx, c, e, code ?? 137);
  }
}

export async function waitContainer(ctx: EngineContext, ref: string, condition: WaitCondition): Promise<WaitHandle> {
  if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw invalid('condition', `invalid condition: "${condition}"`);
  const c = ctx.get(ref);
  const d = deferred<WaitResponse>();
  const running = c.rec.State.Running || c.rec.State.Restarting;
  if (condition === 'not-running' && !running) {
    d.resolve({ StatusCode: c.rec.State.ExitCode });
    return { result: d.promise, cancel: () => undefined };
  }
  const w: Waiter = { condition, resolve: d.resolve };
  c.waiters.add(w);
  return { result: d.promise, cancel: () => c.waiters.delete(w) };
}
