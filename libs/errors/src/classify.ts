import { ErrorKind } from './kinds.js';

function ownKind(err: unknown): ErrorKind | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const kind = (err as { kind?: unknown }).kind;
  return typeof kind === 'string' && kind in ErrorKind ? (kind as ErrorKind) : undefined;
}

/**
 * The kind of an error: the first kind found walking the `cause` chain, else Internal.
 * Duck-typed on purpose: errors that crossed a process or package boundary are not
 * instances of our classes.
 */
export function kindOf(err: unknown): ErrorKind {
  let cur: unknown = err;
  for (let depth = 0; depth < 32 && cur !== undefined && cur !== null; depth++) {
    const kind = ownKind(cur);
    if (kind !== undefined) return kind;
    cur = (cur as { cause?: unknown }).cause;
  }
  return ErrorKind.Internal;
}

export const isNotFound = (err: unknown): boolean => kindOf(err) === ErrorKind.NotFound;
export const isInvalidArgument = (err: unknown): boolean => kindOf(err) === ErrorKind.InvalidArgument;
export const isAlreadyExists = (err: unknown): boolean => kindOf(err) === ErrorKind.AlreadyExists;
export const isConflict = (err: unknown): boolean => kindOf(err) === ErrorKind.Conflict;

/** The first error in the chain that has an errno code (ENOENT, ...), if any. */
export function errnoCodeOf(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 32 && cur !== undefined && cur !== null; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
