import { BerthError } from '@berth/errors';

export interface Named {
  id: string;
  /** Without the leading slash. */
  name: string;
}

export function noSuchContainer(ref: string): BerthError {
  return new BerthError('BERTH_CONTAINER_NOT_FOUND', `No such container: ${ref}`, { details: { ref } });
}

/**
 * Docker's lookup order: a full id, then a name (with or without `/`), then a unique id
 * prefix. An ambiguous prefix is an error of its own, not "not found".
 */
export function resolveReference<T extends Named>(ref: string, items: Iterable<T>): T {
  if (ref === '') throw noSuchContainer(ref);
  const all = [...items];
  const full = all.find((c) => c.id === ref);
  if (full) return full;
  const name = ref.startsWith('/') ? ref.slice(1) : ref;
  const byName = all.find((c) => c.name === name);
  if (byName) return byName;
  if (/^[0-9a-f]+$/.test(ref)) {
    const matches = all.filter((c) => c.id.startsWith(ref));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1)
      throw new BerthError('BERTH_INVALID_ARGUMENT', `multiple IDs found with provided prefix: ${ref}`, { details: { ref } });
  }
  throw noSuchContainer(ref);
}
