/**
 * Container ids and names: 64 hex random ids, Docker's name rule, generated
 * `adjective_surname` names.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { isValidContainerName } from '@berth/api/wire';
import { BerthError } from '@berth/errors';

export function newId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    // Docker avoids all-digit short ids: they read as numbers in scripts.
    if (!/^\d{12}/.test(id)) return id;
  }
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** Validates a user-given name and returns it without the leading slash. */
export function normaliseName(name: string): string {
  if (!isValidContainerName(name))
    throw new BerthError('BERTH_INVALID_ARGUMENT', `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, {
      details: { field: 'name' },
    });
  return name.startsWith('/') ? name.slice(1) : name;
}

const adjectives = [
  'brave', 'calm', 'clever', 'eager', 'fervent', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nifty',
  'optimistic', 'patient', 'quirky', 'serene', 'sharp', 'stoic', 'tender', 'upbeat', 'vibrant', 'wise', 'zealous', 'bold',
];

const surnames = [
  'babbage', 'curie', 'darwin', 'euler', 'fermat', 'gauss', 'hopper', 'jepsen', 'kepler', 'lovelace', 'meitner',
  'noether', 'pascal', 'ritchie', 'shannon', 'thompson', 'turing', 'volta', 'wozniak', 'yonath', 'zuse', 'hamilton',
];

/** `adjective_surname`; after collisions a digit is appended, as Docker does on retry. */
export function generateName(taken: (name: string) => boolean): string {
  for (let attempt = 0; ; attempt++) {
    let name = `${adjectives[randomInt(adjectives.length)]}_${surnames[randomInt(surnames.length)]}`;
    if (attempt >= 10) name += String(randomInt(10 * attempt));
    if (!taken(name)) return name;
  }
}

export function nameConflict(name: string, holder: string): BerthError {
  return new BerthError(
    'BERTH_CONTAINER_EXISTS',
    `Conflict. The container name "/${name}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`,
    { details: { name, holder } },
  );
}
