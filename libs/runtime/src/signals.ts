import { constants } from 'node:os';
import { BerthError } from '@berth/errors';

const byName = constants.signals as Readonly<Record<string, number>>;

/** "TERM", "SIGTERM", "sigterm" or "15" -> 15; anything else is an error naming the input. */
export function parseSignal(input: string | number): number {
  if (typeof input === 'number' || /^\d+$/.test(input)) {
    const n = Number(input);
    if (Number.isInteger(n) && n >= 1 && n <= 64) return n;
  } else {
    const upper = input.toUpperCase();
    const n = byName[upper.startsWith('SIG') ? upper : `SIG${upper}`];
    if (n !== undefined) return n;
  }
  throw new BerthError('BERTH_SIGNAL_INVALID', `invalid signal "${input}"`, { details: { signal: input } });
}
