import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/** What `idleCompactor` reads of the V8 heap (v8.getHeapStatistics by default). */
export interface HeapSample {
  /** Bytes of live (and not yet collected) objects. */
  used: number;
  /** Bytes the heap holds from the OS. */
  total: number;
}

export interface IdleCompactorOptions {
  /** The full GC: globalThis.gc where berthd runs with --expose-gc; without it nothing happens. */
  gc: (() => void) | undefined;
  /** Quiet time after the last activity before the GC. Default 2000 ms. */
  idleMs?: number;
  /** Growth of the heap (used or held) since the last compaction worth a GC. Default 1 MiB. */
  slackBytes?: number;
  heap?: () => HeapSample;
}

export interface IdleCompactor {
  /** Activity (a request began or ended): the quiet time starts again. */
  touch(): void;
  /** The GC now, whatever the heap did (once started: what start-up allocated is garbage). */
  now(): void;
  stop(): void;
}

/**
 * A full GC once berthd is quiet after work. A burst of container runs leaves the old space
 * grown and full of garbage that V8's own memory reducer collects only much later, or never
 * when the daemon is idle (no allocation, no trigger): bench/lifecycle's RSS after 50 `run --rm`
 * stayed ~8 MiB above the idle figure for minutes. One GC of a ~15 MiB heap takes ~10-20 ms, off
 * the request path (the timer restarts on every request, so a steady stream of requests never
 * sees it), and only when the heap grew by `slackBytes` since the last one, so a client polling
 * every few seconds does not buy a GC per poll.
 */
export function idleCompactor(opts: IdleCompactorOptions): IdleCompactor {
  const { gc } = opts;
  const idleMs = opts.idleMs ?? 2000;
  const slack = opts.slackBytes ?? 1024 * 1024;
  const heap =
    opts.heap ??
    (() => {
      const s = getHeapStatistics();
      return { used: s.used_heap_size, total: s.total_heap_size };
    });
  if (!gc) return { touch() {}, now() {}, stop() {} };
  let base = heap();
  let timer: NodeJS.Timeout | undefined;
  const fire = (): void => {
    const now = heap();
    if (now.used - base.used < slack && now.total - base.total < slack) return;
    gc();
    base = heap();
  };
  return {
    touch() {
      if (timer) timer.refresh();
      else (timer = setTimeout(fire, idleMs)).unref();
    },
    now() {
      gc();
      base = heap();
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

/**
 * `gc` (globalThis.gc) as a compacting full GC: V8 moves objects only off pages it finds
 * fragmented enough, so after a burst a plain gc() frees the garbage yet keeps the pages
 * (bench/lifecycle: old space 19 MiB held for 15 MiB live). The flag is V8's own, read by each
 * full GC; it is on only for this one.
 */
export function compactingGc(gc: (() => void) | undefined): (() => void) | undefined {
  if (!gc) return undefined;
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}
