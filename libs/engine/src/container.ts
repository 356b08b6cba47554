/** The engine's in-memory view of one container: its record, the current run, waiters and sessions. */
import type { HostConfig, WaitResponse } from '@berth/api';
import type { OciSpec } from '@berth/runtime';
import type { WaitCondition } from './contract.js';
import { Backoff } from './restart.js';
import type { ShimWatch } from './shim-watch.js';
import type { ContainerRecord } from './store.js';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export interface Waiter {
  condition: WaitCondition;
  resolve(r: WaitResponse): void;
}

export class Ctr {
  watch: ShimWatch | null = null;
  /** Settles when the current run's exit has been processed (state saved, cleanup done). */
  exited: Deferred<void> = deferred();
  readonly waiters = new Set<Waiter>();
  /** Attach sessions waiting for the next start: run between create and start; the value drops one (rm, close). */
  readonly pendingAttach = new Map<() => Promise<void>, () => void>();
  readonly execs = new Set<string>();
  readonly backoff = new Backoff();
  restartTimer: NodeJS.Timeout | null = null;
  /** Set while stop/kill/rm asked for the exit: no restart policy applies. */
  suppressRestart = false;
  /** A `restart` is stopping it: an AutoRemove container is kept (Docker's manual restart). */
  restarting = false;
  removing = false;
  private chain: Promise<unknown> = Promise.resolve();
  /** The spec of the current run (exec builds on its process). */
  spec: OciSpec | null = null;
  /** /etc/hosts entries of the current run's links (--add-host form; links.ts). */
  linkHosts: string[] = [];

  constructor(
    public rec: ContainerRecord,
    public host: HostConfig,
  ) {}

  get id(): string {
    return this.rec.Id;
  }
  get name(): string {
    return this.rec.Name.slice(1);
  }

  /** Serialises lifecycle operations on one container. */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }
}
