/** `docker ps` texts: the Status column and the Command column. */
import type { ContainerState } from '@berth/api';
import { humanDuration } from './time.js';
import { parseRfc3339Nano } from './time.js';

function since(time: string, nowMs: number): string {
  const t = parseRfc3339Nano(time);
  const ms = t === null ? 0 : Number(BigInt(Math.round(nowMs)) * 1_000_000n - t) / 1e6;
  return humanDuration(Math.max(0, ms));
}

/** Docker's State.String(). */
export function statusText(s: ContainerState & { RemovalInProgress?: boolean }, nowMs = Date.now()): string {
  if (s.Running) {
    if (s.Paused) return `Up ${since(s.StartedAt, nowMs)} (Paused)`;
    if (s.Restarting) return `Restarting (${s.ExitCode}) ${since(s.FinishedAt, nowMs)} ago`;
    return `Up ${since(s.StartedAt, nowMs)}`;
  }
  if (s.Restarting) return `Restarting (${s.ExitCode}) ${since(s.FinishedAt, nowMs)} ago`;
  if (s.RemovalInProgress || s.Status === 'removing') return 'Removal In Progress';
  if (s.Dead) return 'Dead';
  if (parseRfc3339Nano(s.StartedAt) === null) return 'Created';
  if (parseRfc3339Nano(s.FinishedAt) === null) return '';
  return `Exited (${s.ExitCode}) ${since(s.FinishedAt, nowMs)} ago`;
}

/** Path and args, args with a space in single quotes. */
export function commandText(path: string, args: readonly string[]): string {
  if (args.length === 0) return path;
  return `${path} ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`;
}
