import { ErrorKind } from './kinds.js';
import { catalog, type ErrorCode } from './catalog.js';

export interface BerthErrorOptions {
  cause?: unknown;
  /** Structured facts for logs and API callers (field names, ids). */
  details?: Record<string, unknown>;
}

/** An error with a catalog code; its kind comes from the catalog. */
export class BerthError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: BerthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BerthError';
    this.code = code;
    this.kind = catalog[code].kind;
    this.details = options.details;
  }
}

export interface SystemErrorFields {
  errno: number;
  /** The errno name, e.g. ENOENT. */
  code: string;
  syscall: string;
  path?: string | undefined;
  dest?: string | undefined;
}

const errnoKinds: Readonly<Record<string, ErrorKind>> = {
  ENOENT: ErrorKind.NotFound,
  ESRCH: ErrorKind.NotFound,
  ENODEV: ErrorKind.NotFound,
  EEXIST: ErrorKind.AlreadyExists,
  EBUSY: ErrorKind.Conflict,
  EPERM: ErrorKind.PermissionDenied,
  EACCES: ErrorKind.PermissionDenied,
  EINVAL: ErrorKind.InvalidArgument,
  ENOTDIR: ErrorKind.InvalidArgument,
  EISDIR: ErrorKind.InvalidArgument,
  ELOOP: ErrorKind.InvalidArgument,
  ENOSPC: ErrorKind.ResourceExhausted,
  ENOMEM: ErrorKind.ResourceExhausted,
  EMFILE: ErrorKind.ResourceExhausted,
  EAGAIN: ErrorKind.Unavailable,
  ENOSYS: ErrorKind.NotImplemented,
  EOPNOTSUPP: ErrorKind.NotImplemented,
  ETIMEDOUT: ErrorKind.DeadlineExceeded,
};

/** A failed kernel call: errno, the syscall and the path it was about. */
export class SystemError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  readonly path: string | undefined;
  readonly dest: string | undefined;
  readonly kind: ErrorKind;

  constructor(fields: SystemErrorFields, options: { cause?: unknown } = {}) {
    const where = fields.path === undefined ? '' : ` ${fields.path}`;
    const to = fields.dest === undefined ? '' : ` -> ${fields.dest}`;
    super(`${fields.syscall}${where}${to}: ${fields.code}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SystemError';
    this.errno = fields.errno;
    this.code = fields.code;
    this.syscall = fields.syscall;
    this.path = fields.path;
    this.dest = fields.dest;
    this.kind = errnoKinds[fields.code] ?? ErrorKind.Internal;
  }
}

/** Wraps an error with context ("create endpoint e1: ..."), keeping its kind through `cause`. */
export function wrap(err: unknown, context: string): Error {
  const inner = err instanceof Error ? err.message : String(err);
  const wrapped = new Error(`${context}: ${inner}`, { cause: err });
  wrapped.name = 'WrappedError';
  return wrapped;
}
