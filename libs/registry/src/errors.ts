import { BerthError, type ErrorCode } from '@berth/errors';
import { readBody, type HttpResponse } from './transport.js';

/** One entry of a distribution error body: `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** The first error of a distribution error body, or undefined when the body is not one. */
export function parseErrorBody(body: Buffer): RegistryErrorEntry | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: unknown };
    const first = Array.isArray(parsed.errors) ? (parsed.errors[0] as Record<string, unknown> | undefined) : undefined;
    if (first === undefined || typeof first.code !== 'string') return undefined;
    const entry: RegistryErrorEntry = { code: first.code, message: typeof first.message === 'string' ? first.message : '' };
    if (first.detail !== undefined) entry.detail = first.detail;
    return entry;
  } catch {
    return undefined;
  }
}

/** Docker's errcode text: `manifest unknown: manifest unknown`. */
export function errcodeText(e: RegistryErrorEntry): string {
  const code = e.code.toLowerCase().replace(/_/g, ' ');
  return e.message === '' ? code : `${code}: ${e.message}`;
}

function codeFor(status: number, registryCode: string | undefined): ErrorCode {
  if (registryCode === 'UNAUTHORIZED' || status === 401) return 'BERTH_REGISTRY_UNAUTHORIZED';
  if (registryCode === 'DENIED' || status === 403) return 'BERTH_REGISTRY_UNAUTHORIZED';
  if (status === 404 || /_UNKNOWN$/.test(registryCode ?? '')) return 'BERTH_REGISTRY_NOT_FOUND';
  if (status >= 500 || status === 429) return 'BERTH_REGISTRY_UNAVAILABLE';
  return 'BERTH_REGISTRY_PROTOCOL';
}

/**
 * The error for an unexpected registry answer. The message is the registry's own
 * (errcode text) when it sent a distribution error body, else the status line.
 * `details.status` and `details.registryCode` let callers phrase pull and push failures.
 */
export async function responseError(res: HttpResponse, what: string): Promise<BerthError> {
  let body: Buffer = Buffer.alloc(0);
  try {
    body = await readBody(res, 64 * 1024, what);
  } catch {
    // The status is enough to report.
  }
  const entry = parseErrorBody(body);
  const status = res.status;
  let text: string;
  if (entry !== undefined) text = errcodeText(entry);
  else if (status === 401) text = 'unauthorized: authentication required';
  else if (status === 403) text = 'denied: requested access to the resource is denied';
  else if (status === 404) text = 'not found';
  else text = `unexpected status from the registry: ${status} ${res.body.statusMessage ?? ''}`.trimEnd();
  const registryCode = entry?.code ?? (status === 401 ? 'UNAUTHORIZED' : status === 403 ? 'DENIED' : undefined);
  return new BerthError(codeFor(status, registryCode), `${what}: ${text}`, {
    details: { status, registryCode, registryMessage: text },
  });
}

function registryCodeOf(err: unknown): { status?: number; registryCode?: string; text?: string } {
  if (err instanceof BerthError && err.details !== undefined) {
    const d = err.details;
    const out: { status?: number; registryCode?: string; text?: string } = {};
    if (typeof d.status === 'number') out.status = d.status;
    if (typeof d.registryCode === 'string') out.registryCode = d.registryCode;
    if (typeof d.registryMessage === 'string') out.text = d.registryMessage;
    return out;
  }
  return {};
}

/**
 * A pull failure phrased as Docker's daemon does: denied or unauthorized -> `pull access
 * denied for NAME, repository does not exist or may require 'docker login': ...`; unknown
 * manifest -> `manifest for NAME:TAG not found: ...`; unknown repository -> `repository NAME
 * not found: ...`. All three are NotFound (404), as in Docker.
 */
export function translatePullError(err: unknown, familiarName: string, familiarRef: string): unknown {
  const { registryCode, text } = registryCodeOf(err);
  if (text === undefined || registryCode === undefined) return err;
  const wrap = (message: string): BerthError =>
    new BerthError('BERTH_REGISTRY_NOT_FOUND', message, { cause: err, details: { registryCode, reference: familiarRef } });
  switch (registryCode) {
    case 'DENIED':
    case 'UNAUTHORIZED':
      return wrap(`pull access denied for ${familiarName}, repository does not exist or may require 'docker login': ${text}`);
    case 'MANIFEST_UNKNOWN':
      return wrap(`manifest for ${familiarRef} not found: ${text}`);
    case 'NAME_UNKNOWN':
      return wrap(`repository ${familiarName} not found: ${text}`);
    default:
      return err;
  }
}
