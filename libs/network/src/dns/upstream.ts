import { createSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import { BerthError } from '@berth/errors';
import { FrameReader, frame } from './framing.js';

/** One host resolver Berth forwards to, from berthd's own network namespace. */
export interface Upstream {
  address: string;
  port: number;
  family: 4 | 6;
}

/** resolv.conf allows three nameservers; Docker's embedded DNS forwards to at most three as well. */
export const MAX_UPSTREAMS = 3;

/**
 * Parses upstream resolvers: `1.2.3.4`, `::1`, `fe80::1%eth0` (port 53), `1.2.3.4:5353`,
 * `[::1]:5353`. Anything else is a BERTH_INVALID_ARGUMENT.
 */
export function parseUpstreams(list: readonly string[]): Upstream[] {
  return list.map((raw) => {
    const s = raw.trim();
    const bare = isIP(s);
    if (bare !== 0) return { address: s, port: 53, family: bare as 4 | 6 };
    const v6 = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s);
    const m = v6 ?? /^([0-9.]+):(\d{1,5})$/.exec(s);
    const port = m === null ? NaN : Number(m[2]);
    const family = m === null ? 0 : isIP(m[1]!);
    if (m === null || family !== (v6 === null ? 4 : 6) || port < 1 || port > 65535) {
      throw new BerthError('BERTH_INVALID_ARGUMENT', `embedded DNS: upstream resolver ${JSON.stringify(raw)} is not an IP address or IP:port`);
    }
    return { address: m[1]!, port, family: family as 4 | 6 };
  });
}

export function upstreamText(u: Upstream): string {
  return u.family === 6 ? `[${u.address}]:${u.port}` : `${u.address}:${u.port}`;
}

/** An upstream reply to `query`: long enough, a response, and the query's id. */
function answers(query: Buffer, reply: Buffer): boolean {
  return reply.length >= 12 && (reply[2]! & 0x80) !== 0 && reply.readUInt16BE(0) === query.readUInt16BE(0);
}

/** SERVFAIL (2) or REFUSED (5): Docker then asks the next resolver. */
function failed(reply: Buffer): boolean {
  const rcode = reply[3]! & 0x0f;
  return rcode === 2 || rcode === 5;
}

export interface ExchangeResult {
  reply?: Buffer;
  /** What went wrong with each resolver tried, for the log. */
  errors: string[];
}

/**
 * The one outcome of an exchange, whichever comes first (the answer, an error, the timeout, an
 * abort); then the socket is released and nothing later counts.
 */
function settleOnce(
  timeoutMs: number,
  signal: AbortSignal,
  release: () => void,
  resolve: (reply: Buffer) => void,
  reject: (err: Error) => void,
): { finish(err: Error | undefined, reply?: Buffer): void; isDone(): boolean } {
  let done = false;
  const finish = (err: Error | undefined, reply?: Buffer): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    release();
    if (err !== undefined) reject(err);
    else resolve(reply!);
  };
  const onAbort = (): void => finish(new Error('closed'));
  const timer = setTimeout(() => finish(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
  signal.addEventListener('abort', onAbort);
  return { finish, isDone: () => done };
}

/** One query to one resolver over UDP, from a fresh socket (a fresh source port per query). */
function exchangeUdp(u: Upstream, query: Buffer, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(u.family === 6 ? 'udp6' : 'udp4');
    const { finish, isDone } = settleOnce(timeoutMs, signal, () => sock.close(), resolve, reject);
    sock.on('error', (err) => finish(err));
    sock.on('message', (msg) => {
      // Something else (a late answer to another id): keep waiting for ours.
      if (answers(query, msg)) finish(undefined, msg);
    });
    // connect() makes the kernel drop datagrams from anyone else and report ICMP errors.
    sock.connect(u.port, u.address, () => {
      if (!isDone()) sock.send(query, (err) => { if (err) finish(err); });
    });
  });
}

/** One query to one resolver over TCP (RFC 7766 two-byte length prefix). */
function exchangeTcp(u: Upstream, query: Buffer, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.address, port: u.port, family: u.family });
    const reader = new FrameReader();
    const { finish } = settleOnce(timeoutMs, signal, () => sock.destroy(), resolve, reject);
    sock.on('error', (err) => finish(err));
    sock.on('close', () => finish(new Error('connection closed without an answer')));
    sock.on('connect', () => sock.write(frame(query)));
    sock.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = reader.push(chunk);
      } catch (err) {
        finish(err as Error);
        return;
      }
      const reply = messages.find((m) => answers(query, m));
      if (reply !== undefined) finish(undefined, reply);
    });
  });
}

/**
 * Forwards a raw query to the resolvers in order (each gets `timeoutMs`), over the client's
 * transport. The first usable reply wins; a SERVFAIL/REFUSED moves on to the next resolver and
 * is returned only when no resolver did better. No reply at all: `reply` is undefined.
 */
export async function forward(
  upstreams: readonly Upstream[],
  query: Buffer,
  opts: { tcp: boolean; timeoutMs: number; signal: AbortSignal },
): Promise<ExchangeResult> {
  const errors: string[] = [];
  let fallback: Buffer | undefined;
  for (const u of upstreams) {
    if (opts.signal.aborted) break;
    try {
      const reply = await (opts.tcp ? exchangeTcp : exchangeUdp)(u, query, opts.timeoutMs, opts.signal);
      if (!failed(reply)) return { reply, errors };
      fallback = reply;
      errors.push(`${upstreamText(u)}: rcode ${reply[3]! & 0x0f}`);
    } catch (err) {
      errors.push(`${upstreamText(u)}: ${(err as Error).message}`);
    }
  }
  return fallback === undefined ? { errors } : { reply: fallback, errors };
}
