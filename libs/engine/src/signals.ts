/** Signals as the Engine API takes them. */
import { BerthError } from '@berth/errors';
import { parseSignal } from '@berth/runtime';

/** "TERM", "SIGTERM" or "15"; a bad one is dockerd's 'Invalid signal: X' (400). */
export function apiSignal(signal: string): number {
  try {
    return parseSignal(signal);
  } catch (err) {
    throw new BerthError('BERTH_SIGNAL_INVALID', `Invalid signal: ${signal}`, { cause: err, details: { signal } });
  }
}
