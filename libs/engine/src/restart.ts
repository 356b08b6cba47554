/**
 * Restart policies with Docker's restart manager semantics: no, always, unless-stopped,
 * on-failure[:N]; back-off from 100 ms doubling per restart up to a minute, back to 100 ms
 * once a run lasted 10 s.
 */
import type { RestartPolicy } from '@berth/api';

export const BACKOFF_START_MS = 100;
export const BACKOFF_MAX_MS = 60_000;

export interface ExitFacts {
  exitCode: number;
  /** Restarts done so far under this policy (RestartCount). */
  restartCount: number;
  /** `docker stop`/`kill` by a user since the last start. */
  manuallyStopped: boolean;
}

export function shouldRestart(policy: RestartPolicy, facts: ExitFacts): boolean {
  if (facts.manuallyStopped) return false;
  switch (policy.Name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure': {
      const max = policy.MaximumRetryCount;
      return facts.exitCode !== 0 && (max === 0 || facts.restartCount < max);
    }
    default:
      return false;
  }
}

/** Policies that bring a container back at daemon start: always, unless-stopped (not stopped by hand), on-failure after a failure. */
export function restartAtDaemonStart(policy: RestartPolicy, facts: ExitFacts): boolean {
  return shouldRestart(policy, facts);
}

export class Backoff {
  private timeout = 0;

  /** The delay before the next restart, given how long the last run lasted. */
  next(ranMs: number): number {
    if (ranMs >= 10_000) this.timeout = 0;
    this.timeout = this.timeout === 0 ? BACKOFF_START_MS : Math.min(this.timeout * 2, BACKOFF_MAX_MS);
    return this.timeout;
  }

  reset(): void {
    this.timeout = 0;
  }
}
