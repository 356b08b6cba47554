/**
 * OOM kills in a container's cgroup: the `oom` event when the kernel's OOM killer takes a
 * process of a running container (Docker sends it as it happens, also when the container lives
 * on), and `State.OOMKilled` at the exit. The count is the kernel's own: v1
 * memory.oom_control `oom_kill`, v2 memory.events `oom_kill`. v1 notifies only through an
 * eventfd (cgroup.event_control), which Node cannot make, so running containers are polled
 * once a second: one small read each.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';

export const OOM_POLL_MS = 1000;

/** The `oom_kill` counter of a memory.oom_control (v1) or memory.events (v2) text; null when absent. */
export function parseOomKills(text: string): number | null {
  const m = /^oom_kill (\d+)$/m.exec(text);
  return m ? Number(m[1]) : null;
}

function oomFile(ctx: EngineContext, c: Ctr): string | null {
  const paths = ctx.cgroups.open(ctx.cgroupPathOf(c))?.paths();
  if (paths?.memory) return join(paths.memory, 'memory.oom_control');
  if (ctx.cgroups.version === 2 && paths?.unified) return join(paths.unified, 'memory.events');
  return null;
}

/** Per engine: the kill count each container's `oom` events have covered so far. */
const reported = new WeakMap<EngineContext, Map<string, number>>();

function seenOf(ctx: EngineContext): Map<string, number> {
  let m = reported.get(ctx);
  if (!m) reported.set(ctx, (m = new Map()));
  return m;
}

/**
 * At the exit, before the cgroup goes: whether the OOM killer took a process of this run, and
 * whether an `oom` event is still owed (the poll may have sent it already).
 */
export function oomAtExit(ctx: EngineContext, c: Ctr): { killed: boolean; emit: boolean } {
  const seen = seenOf(ctx);
  let kills = 0;
  try {
    const f = oomFile(ctx, c);
    kills = f === null ? 0 : (parseOomKills(readFileSync(f, 'utf8')) ?? 0);
  } catch {
    // The group is gone: nothing to learn.
  }
  const before = seen.get(c.id) ?? 0;
  seen.delete(c.id);
  return { killed: kills > 0 || c.rec.State.OOMKilled, emit: kills > before };
}

/**
 * Polls the running containers' OOM counters; stops at engine close. Containers running when
 * it starts (re-adopted after a daemon restart) count from what their groups hold now, so a
 * kill reported before the restart is not reported again.
 */
export async function startOomWatch(ctx: EngineContext): Promise<void> {
  const seen = seenOf(ctx);
  const read = async (c: Ctr): Promise<number | null> => {
    const f = oomFile(ctx, c);
    if (f === null) return null;
    try {
      return parseOomKills(await readFile(f, 'utf8'));
    } catch {
      return null;
    }
  };
  for (const c of ctx.containers.values()) {
    if (!c.rec.State.Running) continue;
    const n = await read(c);
    if (n !== null) seen.set(c.id, n);
  }
  let busy = false;
  const tick = async (): Promise<void> => {
    if (busy || ctx.closed) return;
    busy = true;
    try {
      for (const c of ctx.containers.values()) {
        if (!c.rec.State.Running || c.removing) continue;
        const n = await read(c);
        // Re-check: the exit may have been handled while the file was read.
        if (n === null || !c.rec.State.Running) continue;
        const before = seen.get(c.id) ?? 0;
        if (n > before) {
          seen.set(c.id, n);
          c.rec.State.OOMKilled = true;
          ctx.log.info({ containerId: c.id, oomKills: n }, 'the OOM killer took a process of the container');
          ctx.emit(c, 'oom');
        } else if (n < before) seen.set(c.id, n); // a new run's fresh group
      }
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick().catch((err: unknown) => ctx.log.warn({ err }, 'OOM poll failed')), OOM_POLL_MS);
  timer.unref();
  ctx.closers.add(() => clearInterval(timer));
}
