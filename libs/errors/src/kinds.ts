/**
 * The error kinds of Berth. Every error that crosses a package boundary carries one; the
 * daemon maps kinds to HTTP statuses and the plugin transport maps them to the wire, each in
 * exactly one table below.
 */
export const ErrorKind = {
  InvalidArgument: 'InvalidArgument',
  NotFound: 'NotFound',
  AlreadyExists: 'AlreadyExists',
  Conflict: 'Conflict',
  FailedPrecondition: 'FailedPrecondition',
  PermissionDenied: 'PermissionDenied',
  ResourceExhausted: 'ResourceExhausted',
  Unavailable: 'Unavailable',
  NotImplemented: 'NotImplemented',
  Canceled: 'Canceled',
  DeadlineExceeded: 'DeadlineExceeded',
  Internal: 'Internal',
} as const;

export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

/** The one table from kind to HTTP status (Docker Engine API conventions). */
export const httpStatusOfKind: Readonly<Record<ErrorKind, number>> = {
  InvalidArgument: 400,
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  FailedPrecondition: 412,
  PermissionDenied: 403,
  ResourceExhausted: 429,
  Unavailable: 503,
  NotImplemented: 501,
  Canceled: 499,
  DeadlineExceeded: 504,
  Internal: 500,
};
