export { ErrorKind, httpStatusOfKind } from './kinds.js';
export { catalog } from './catalog.js';
export type { ErrorCode } from './catalog.js';
export { BerthError, SystemError, wrap } from './berth-error.js';
export type { BerthErrorOptions, SystemErrorFields } from './berth-error.js';
export { kindOf, isNotFound, isInvalidArgument, isAlreadyExists, isConflict, errnoCodeOf } from './classify.js';
