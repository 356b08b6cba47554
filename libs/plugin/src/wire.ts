/**
 * What server and client agree on besides the contracts: the error envelope (with Berth's
 * catalog code), request body encoding, and which methods answer nothing.
 */
import { BerthError, catalog, type ErrorCode } from '@berth/errors';
import { ERROR_CODE_FIELD, errorFieldOf } from '@berth/plugin-api';

/** The catalog code of the first error in the cause chain that has a kind and a catalog code. */
export function catalogCodeOf(err: unknown): ErrorCode | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 32 && typeof cur === 'object' && cur !== null; depth++) {
    const { code, kind } = cur as { code?: unknown; kind?: unknown };
    if (typeof kind === 'string') return typeof code === 'string' && code in catalog ? (code as ErrorCode) : undefined;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err)) || 'unknown error';

/** The 200 answer carrying an application error: `{"Err": msg}` (`Error` for IPAM) plus BerthCode. */
export function errorEnvelope(subsystem: string, err: unknown): Record<string, string> {
  const body: Record<string, string> = { [errorFieldOf(subsystem)]: messageOf(err) };
  const code = catalogCodeOf(err);
  if (code !== undefined) body[ERROR_CODE_FIELD] = code;
  return body;
}

/**
 * The error a client raises for a failed call: `<Subsystem>.<Method>: <message>`, with the
 * plugin's catalog code when it sent a known one, else BERTH_PLUGIN (Internal).
 */
export function remoteError(method: string, message: string, code?: unknown, cause?: unknown): BerthError {
  const known = typeof code === 'string' && code in catalog ? (code as ErrorCode) : 'BERTH_PLUGIN';
  return new BerthError(known, `${method}: ${message}`, { details: { method }, ...(cause === undefined ? {} : { cause }) });
}

/** Go's json.Encoder output: the value and a newline; `undefined` = an empty body. */
export const encodeBody = (value: unknown): Buffer => (value === undefined ? Buffer.alloc(0) : Buffer.from(`${JSON.stringify(value)}\n`));

/** Network methods whose answer carries nothing but a possible error. */
export const voidNetworkMethods: ReadonlySet<string> = new Set([
  'createNetwork',
  'deleteNetwork',
  'deleteEndpoint',
  'leave',
  'programExternalConnectivity',
  'revokeExternalConnectivity',
  'freeNetwork',
  'discoverNew',
  'discoverDelete',
]);
export const voidIpamMethods: ReadonlySet<string> = new Set(['releasePool', 'releaseAddress']);
export const voidVolumeMethods: ReadonlySet<string> = new Set(['create', 'remove', 'unmount']);
/** Methods called without an argument: the engine sends an empty body. */
export const noArgMethods: ReadonlySet<string> = new Set(['getCapabilities', 'getDefaultAddressSpaces']);
