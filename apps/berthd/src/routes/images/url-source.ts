/**
 * `POST /images/create?fromSrc=<url>`: the tarball an import reads from a URL (Docker: an
 * address without a scheme is http). The GET is made before any reply goes out, so a URL that
 * does not answer 2xx is an error response in Docker's words, not a cut stream.
 */
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { BerthError } from '@berth/errors';

export interface UrlSource {
  url: string;
  body: Readable;
  /** Content-Length, or -1. */
  total: number;
}

const MAX_ERROR_BODY = 512;

export async function openUrlSource(src: string): Promise<UrlSource> {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(src) ? src : `http://${src}`);
  } catch {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid import source ${JSON.stringify(src)}: not a URL`, { details: { field: 'fromSrc' } });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid import source ${JSON.stringify(src)}: only http and https URLs are read`, { details: { field: 'fromSrc' } });
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
    const why = cause?.code === 'ECONNREFUSED' ? `dial tcp ${url.host}: connect: connection refused` : (cause?.message ?? (err as Error).message);
    throw new BerthError('BERTH_IMPORT_SOURCE', `Get "${url.href}": ${why}`, { cause: err, details: { url: url.href } });
  }
  if (!res.ok) {
    let text = '';
    try {
      text = (await res.text()).slice(0, MAX_ERROR_BODY).trim();
    } catch {
      // the status says enough
    }
    throw new BerthError('BERTH_IMPORT_SOURCE', `failed to GET ${url.href} with status ${res.status} ${res.statusText}: ${text}`, { details: { url: url.href, status: res.status } });
  }
  const length = Number(res.headers.get('content-length') ?? '-1');
  const body = res.body === null ? Readable.from([]) : Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
  return { url: url.href, body, total: Number.isSafeInteger(length) && length >= 0 ? length : -1 };
}

/** Passes bytes through, calling `report(bytesSoFar)` about every MiB and at the end. */
export function countBytes(report: (current: number) => void): Transform {
  let current = 0;
  let reported = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      current += chunk.length;
      if (current - reported >= 1 << 20) {
        reported = current;
        report(current);
      }
      cb(null, chunk);
    },
    flush(cb) {
      if (current !== reported) report(current);
      cb();
    },
  });
}
