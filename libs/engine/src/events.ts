/** The in-process event bus: a bounded history for `since`, live fan-out to subscribers. */
import type { EventMessage, Filters, StringMap } from '@berth/api';
import { matchEvent } from './filters.js';
import { nowNanos } from './time.js';

export class EventBus {
  private readonly history: EventMessage[] = [];
  private readonly listeners = new Set<(e: EventMessage) => void>();

  constructor(private readonly max = 1000) {}

  get listenerCount(): number {
    return this.listeners.size;
  }

  publish(type: string, action: string, id: string, attributes: StringMap = {}): EventMessage {
    const ns = nowNanos();
    const e: EventMessage = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(ns / 1_000_000_000n),
      timeNano: Number(ns),
    };
    if (type === 'container' || type === 'image') {
      e.status = action;
      e.id = id;
      if (type === 'container' && attributes.image) e.from = attributes.image;
    }
    this.history.push(e);
    if (this.history.length > this.max) this.history.shift();
    for (const l of this.listeners) l(e);
    return e;
  }

  /**
   * Past events from `since` (unix seconds), then live ones until `until` passes or the signal
   * aborts. Without `since` only live ones; an `until` in the past ends after the history.
   */
  subscribe(opts: { since?: number | undefined; until?: number | undefined; filters: Filters }, signal: AbortSignal): AsyncIterable<EventMessage> {
    const queue: EventMessage[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    const untilNs = opts.until !== undefined && opts.until > 0 ? BigInt(Math.round(opts.until * 1e9)) : null;
    const sinceNs = opts.since !== undefined && opts.since > 0 ? BigInt(Math.round(opts.since * 1e9)) : null;
    const inRange = (e: EventMessage): boolean =>
      (sinceNs === null || BigInt(e.timeNano) >= sinceNs) && (untilNs === null || BigInt(e.timeNano) <= untilNs);
    const listener = (e: EventMessage): void => {
      if (inRange(e) && matchEvent(e, opts.filters)) {
        queue.push(e);
        wake?.();
      }
    };
    if (sinceNs !== null) for (const e of this.history) if (inRange(e) && matchEvent(e, opts.filters)) queue.push(e);
    const finish = (): void => {
      done = true;
      wake?.();
    };
    let timer: NodeJS.Timeout | undefined;
    if (untilNs !== null) {
      const ms = Number((untilNs - nowNanos()) / 1_000_000n);
      if (ms <= 0) done = true;
      else timer = setTimeout(finish, ms);
    }
    if (signal.aborted) done = true;
    signal.addEventListener('abort', finish, { once: true });
    if (!done) this.listeners.add(listener);
    const cleanup = (): void => {
      this.listeners.delete(listener);
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', finish);
    };
    const bus = this;
    void bus;
    return {
      [Symbol.asyncIterator]: async function* () {
        try {
          for (;;) {
            while (queue.length) yield queue.shift()!;
            if (done || signal.aborted) return;
            await new Promise<void>((r) => {
              wake = r;
            });
            wake = null;
          }
        } finally {
          cleanup();
        }
      },
    };
  }

  closeAll(): void {
    // Subscribers end through their signals; nothing is held here but listeners.
    this.listeners.clear();
  }
}
