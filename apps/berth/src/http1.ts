/**
 * A small HTTP/1.1 client over node:net, enough for the Engine API: one request per connection
 * (`Connection: close`), JSON/Buffer bodies with Content-Length, stream bodies chunked, responses
 * framed by Content-Length, chunked encoding or the connection's end, and the 101 upgrade of a
 * hijacked attach/exec. It replaces node:http in the CLI because loading and warming node:http
 * costs ~10 ms of every `berth` start (bench: a HEAD /_ping + GET over node:http 18 ms, over this 8 ms).
 */
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';

export interface HttpRequest {
  method: string;
  /** Path and query. */
  path: string;
  headers: Record<string, string>;
  socketPath?: string;
  hostname?: string;
  port?: number;
  body?: Buffer | string | NodeJS.ReadableStream;
  /** Expect `101 Switching Protocols` (the caller sets Connection/Upgrade headers). */
  upgrade?: boolean;
}

/** The response: headers parsed, the body as a byte stream (already de-chunked). */
export class HttpResponse extends Readable {
  statusCode = 0;
  statusMessage = '';
  /** Lower-cased names; repeated headers joined with ', '. */
  headers: Record<string, string> = {};
  /** What node's IncomingMessage offers as res.req (the path, for messages). */
  readonly req: { method: string; path: string };
  /** Set by the client: resumes the socket when the consumer wants more. */
  onRead: (() => void) | undefined;
  /** Set by the client: closes the connection. */
  onDestroy: (() => void) | undefined;

  constructor(method: string, path: string) {
    super();
    this.req = { method, path };
  }

  override _read(): void {
    this.onRead?.();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.onDestroy?.();
    cb(err);
  }
}

/**
 * A completed request: either a response, or (upgrade) the raw socket, paused, and the bytes
 * read past the headers.
 */
export type HttpResult = { kind: 'response'; res: HttpResponse } | { kind: 'upgrade'; res: HttpResponse; socket: Socket; head: Buffer };

function errno(message: string, code: string): NodeJS.ErrnoException {
  const e = new Error(message) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

function hostHeader(r: HttpRequest): string {
  if (r.socketPath !== undefined) return 'localhost';
  const h = r.hostname ?? 'localhost';
  const host = h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
  return r.port !== undefined && r.port !== 80 ? `${host}:${r.port}` : host;
}

function isStream(b: unknown): b is NodeJS.ReadableStream {
  return typeof b === 'object' && b !== null && typeof (b as NodeJS.ReadableStream).pipe === 'function';
}

const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/**
 * Sends one request. Resolves once the response headers are in (the body streams on), rejects
 * on a connection error before that (the error's `code` is the errno: ENOENT, ECONNREFUSED, ...).
 */
export function httpRequest(r: HttpRequest): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const socket = r.socketPath !== undefined ? connect(r.socketPath) : connect(r.port ?? 80, r.hostname ?? 'localhost');
    let settled = false;
    let res: HttpResponse | undefined;
    /** Bytes not yet parsed (headers, or chunked framing). */
    let buf: Buffer = Buffer.alloc(0);
    /** Body framing once headers are in. */
    let mode: 'none' | 'length' | 'chunked' | 'close' = 'none';
    let remaining = 0;
    /** Chunked decoder: size line, data, the CRLF after data, trailers. */
    let chunkState: 'size' | 'data' | 'crlf' | 'trailer' = 'size';
    let bodyDone = false;

    const fail = (err: Error): void => {
      if (!settled) {
        settled = true;
        socket.destroy();
        reject(err);
      } else if (res && !bodyDone) {
        bodyDone = true;
        socket.destroy();
        res.destroy(err);
      }
    };

    const finishBody = (): void => {
      if (bodyDone) return;
      bodyDone = true;
      socket.removeListener('data', onData);
      socket.destroy();
      res!.push(null);
    };

    const pushBody = (b: Buffer): void => {
      if (b.length && !res!.push(b)) socket.pause();
    };

    /** Consumes body bytes from `data` per the framing. */
    const body = (data: Buffer): void => {
      if (bodyDone || !data.length) return;
      if (mode === 'close') return pushBody(data);
      if (mode === 'length') {
        const take = data.subarray(0, remaining);
        remaining -= take.length;
        pushBody(take);
        if (remaining === 0) finishBody();
        return;
      }
      // chunked
      buf = buf.length ? Buffer.concat([buf, data]) : data;
      for (;;) {
        if (chunkState === 'data') {
          if (!buf.length) return;
          const take = buf.subarray(0, remaining);
          remaining -= take.length;
          buf = buf.subarray(take.length);
          pushBody(take);
          if (remaining === 0) chunkState = 'crlf';
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) {
          if (buf.length > 16 * 1024) fail(errno('Parse Error: invalid chunked encoding', 'HPE_INVALID_CHUNK_SIZE'));
          return;
        }
        const line = buf.subarray(0, nl).toString('latin1');
        buf = buf.subarray(nl + 2);
        if (chunkState === 'crlf') {
          if (line !== '') return fail(errno('Parse Error: missing CRLF after chunk data', 'HPE_STRICT'));
          chunkState = 'size';
        } else if (chunkState === 'size') {
          const size = parseInt(line.split(';')[0]!.trim(), 16);
          if (!/^[0-9a-fA-F]+$/.test(line.split(';')[0]!.trim()) || Number.isNaN(size))
            return fail(errno('Parse Error: invalid chunk size', 'HPE_INVALID_CHUNK_SIZE'));
          if (size === 0) chunkState = 'trailer';
          else {
            remaining = size;
            chunkState = 'data';
          }
        } else if (line === '') return finishBody(); // the empty line after the trailers
      }
    };

    const headers = (): void => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > 256 * 1024) fail(errno('Parse Error: header overflow', 'HPE_HEADER_OVERFLOW'));
        return;
      }
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      let rest = buf.subarray(end + 4);
      buf = Buffer.alloc(0);
      const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]!);
      if (!m) return fail(errno('Parse Error: invalid status line', 'HPE_INVALID_CONSTANT'));
      const status = Number(m[1]);
      if (status >= 100 && status < 200 && status !== 101) {
        // 100 Continue and friends: an interim response, the real one follows
        buf = rest;
        return headers();
      }
      const out = new HttpResponse(r.method, r.path);
      out.statusCode = status;
      out.statusMessage = m[2] ?? '';
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        out.headers[name] = name in out.headers ? `${out.headers[name]}, ${value}` : value;
      }
      res = out;
      settled = true;
      if (status === 101 && r.upgrade) {
        socket.removeListener('data', onData);
        socket.removeListener('end', onEnd);
        socket.removeListener('error', onError);
        bodyDone = true;
        out.push(null);
        // paused: what the daemon sends before the caller listens (attach does a wait request
        // first) stays in the socket; the caller resumes it
        socket.pause();
        resolve({ kind: 'upgrade', res: out, socket, head: rest });
        return;
      }
      out.onRead = () => {
        if (!bodyDone) socket.resume();
      };
      out.onDestroy = () => {
        bodyDone = true;
        socket.destroy();
      };
      const te = (out.headers['transfer-encoding'] ?? '').toLowerCase();
      const cl = out.headers['content-length'];
      if (r.method === 'HEAD' || status === 204 || status === 304 || status === 101) mode = 'none';
      else if (te.split(',').some((t) => t.trim() === 'chunked')) mode = 'chunked';
      else if (cl !== undefined && /^\d+$/.test(cl.split(',')[0]!.trim())) {
        remaining = Number(cl.split(',')[0]!.trim());
        mode = remaining === 0 ? 'none' : 'length';
      } else mode = 'close';
      resolve({ kind: 'response', res: out });
      if (mode === 'none') finishBody();
      else {
        const data = rest;
        rest = Buffer.alloc(0);
        body(data);
      }
    };

    const onData = (data: Buffer): void => {
      if (res) return body(data);
      buf = buf.length ? Buffer.concat([buf, data]) : data;
      headers();
    };
    const onEnd = (): void => {
      if (!res) return fail(errno('socket hang up', 'ECONNRESET'));
      if (mode === 'close') return finishBody();
      if (!bodyDone) fail(errno('aborted', 'ECONNRESET'));
    };
    const onError = (err: Error): void => fail(err);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', () => {
      if (!settled || (res && !bodyDone)) onEnd();
    });

    const h: Record<string, string> = { Host: hostHeader(r), ...r.headers };
    const names = new Set(Object.keys(h).map((k) => k.toLowerCase()));
    if (!names.has('connection')) h.Connection = 'close';
    let payload: Buffer | undefined;
    const stream = isStream(r.body) ? r.body : undefined;
    // A stream body whose length the caller gives (a file) goes as it is, else chunked.
    const rawBody = stream !== undefined && names.has('content-length');
    if (stream) {
      if (!rawBody && !names.has('transfer-encoding')) h['Transfer-Encoding'] = 'chunked';
    } else if (r.body !== undefined) {
      payload = Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body as string, 'utf8');
      h['Content-Length'] = String(payload.length);
    } else if (!NO_BODY_METHODS.has(r.method) && !names.has('content-length')) h['Content-Length'] = '0';
    let head = `${r.method} ${r.path} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(h)) head += `${k}: ${v}\r\n`;
    head += '\r\n';
    const headBuf = Buffer.from(head, 'latin1');
    socket.write(payload?.length ? Buffer.concat([headBuf, payload]) : headBuf);
    if (stream) {
      let sent = 0;
      const onChunk = (c: Buffer | string): void => {
        const b = typeof c === 'string' ? Buffer.from(c) : c;
        if (!b.length || socket.destroyed) return;
        let ok: boolean;
        sent += b.length;
        if (rawBody) ok = socket.write(b);
        else {
          socket.cork();
          socket.write(`${b.length.toString(16)}\r\n`, 'latin1');
          socket.write(b);
          ok = socket.write('\r\n', 'latin1');
          socket.uncork();
        }
        if (!ok) {
          stream.pause();
          socket.once('drain', () => stream.resume());
        }
      };
      stream.on('data', onChunk);
      stream.once('end', () => {
        if (rawBody && String(sent) !== h[Object.keys(h).find((k) => k.toLowerCase() === 'content-length')!])
          fail(errno(`request body: ${sent} bytes sent, not the Content-Length given (the file changed?)`, 'EPIPE'));
        else if (!socket.destroyed && !rawBody) socket.write('0\r\n\r\n');
      });
      stream.once('error', (err: Error) => fail(err));
      socket.once('close', () => stream.removeListener('data', onChunk));
      stream.resume();
    }
  });
}

/** Go's http.StatusText for the statuses a daemon answers with (docker quotes it in messages). */
export const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Found',
  304: 'Not Modified',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Request Entity Too Large',
  414: 'Request URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Requested Range Not Satisfiable',
  422: 'Unprocessable Entity',
  426: 'Upgrade Required',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};
