import type { Socket as UdpSocket, RemoteInfo } from 'node:dgram';
import { setMaxListeners } from 'node:events';
import type { Server, Socket } from 'node:net';
import type { Logger } from '@berth/log';
import { FrameReader, frame } from './framing.js';
import { listenInNetns } from './listen.js';
import { decodeQuery, routeQuery, servfail, type DnsRecords, type Route } from './message.js';
import { MAX_UPSTREAMS, forward, parseUpstreams, type Upstream } from './upstream.js';

/** Where a sandbox finds its resolver, as in Docker (resolv.conf says `nameserver 127.0.0.11`). */
export const EMBEDDED_DNS_ADDRESS = '127.0.0.11';

export interface EmbeddedDnsOptions {
  /** The sandbox's network namespace (e.g. /run/berth/netns/<id>); its lo must be up. */
  netnsPath: string;
  records: DnsRecords;
  /** Host resolvers (`ip` or `ip:port`, `[ip6]:port`), asked from berthd's namespace; loopback ones work. At most 3 are used. */
  upstream: string[];
  logger: Logger;
  /** How long each upstream resolver gets to answer a forwarded query (default 2000 ms). */
  timeoutMs?: number;
}

export interface EmbeddedDns {
  readonly address: '127.0.0.11';
  /** Closes both sockets, the TCP connections and any forward in flight. Idempotent. */
  close(): Promise<void>;
}

/** Limits that keep one resolver's memory bounded whatever its clients send. */
export interface DnsLimits {
  /** Forwarded queries in flight at once (UDP and TCP); beyond it the answer is SERVFAIL. */
  maxInflight: number;
  /** TCP connections at once; more are refused (closed at accept). */
  maxTcpConnections: number;
  /** Forwards in flight on one TCP connection before Berth stops reading from it. */
  maxPerConnection: number;
  /** A TCP connection idle this long is closed. */
  tcpIdleMs: number;
}

export const DEFAULT_DNS_LIMITS: DnsLimits = { maxInflight: 256, maxTcpConnections: 64, maxPerConnection: 16, tcpIdleMs: 10_000 };
export const DEFAULT_FORWARD_TIMEOUT_MS = 2000;

export interface DnsServer {
  close(): Promise<void>;
}

/**
 * Answers DNS on an already bound UDP socket and listening TCP server: local names from
 * `records`, everything else forwarded to `upstream` from wherever the forwarding sockets get
 * made (berthd's namespace). startEmbeddedDns binds both inside a sandbox and calls this; tests
 * call it on sockets of their own.
 */
export function serveDns(
  sockets: { udp: UdpSocket; tcp: Server },
  opts: {
    records: DnsRecords;
    upstream: readonly string[] | readonly Upstream[];
    logger: Logger;
    timeoutMs?: number;
    limits?: Partial<DnsLimits>;
    shuffle?: <T>(items: T[]) => T[];
  },
): DnsServer {
  const { udp, tcp } = sockets;
  const log = opts.logger;
  const limits: DnsLimits = { ...DEFAULT_DNS_LIMITS, ...opts.limits };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS;
  const all = opts.upstream.map((u) => (typeof u === 'string' ? parseUpstreams([u])[0]! : u));
  if (all.length > MAX_UPSTREAMS) log.debug({ ignored: all.length - MAX_UPSTREAMS }, 'embedded DNS: only the first 3 upstream resolvers are used');
  const upstreams = all.slice(0, MAX_UPSTREAMS);
  const abort = new AbortController();
  // Each forward in flight listens on the signal; their number is bounded by maxInflight.
  setMaxListeners(limits.maxInflight + 1, abort.signal);
  const conns = new Set<Socket>();
  let inflight = 0;
  let closing: Promise<void> | undefined;

  const route = (raw: Buffer, isUdp: boolean): Route => {
    try {
      return routeQuery(raw, opts.records, { udp: isUdp, ...(opts.shuffle === undefined ? {} : { shuffle: opts.shuffle }) });
    } catch (err) {
      // The records callback (or an encoder) threw: the client gets SERVFAIL, berthd lives on.
      log.warn({ err }, 'embedded DNS: answering a query failed');
      const decoded = decodeQuery(raw);
      return 'error' in decoded
        ? { kind: 'drop', reason: decoded.error }
        : { kind: 'answer', response: servfail(decoded.query, isUdp), local: 'error' };
    }
  };

  /** Runs a forward and hands the reply (or SERVFAIL) to `reply`, unless the server closed meanwhile. */
  const forwardQuery = (r: Extract<Route, { kind: 'forward' }>, raw: Buffer, isUdp: boolean, reply: (b: Buffer) => void, done: () => void): void => {
    const q = r.query.questions?.[0];
    const what = q === undefined ? '?' : `${q.type} ${q.name}`;
    if (inflight >= limits.maxInflight) {
      log.debug({ inflight }, `embedded DNS: too many forwards in flight, SERVFAIL for ${what}`);
      reply(servfail(r.query, isUdp));
      done();
      return;
    }
    inflight++;
    forward(upstreams, raw, { tcp: !isUdp, timeoutMs, signal: abort.signal })
      .then((res) => {
        if (abort.signal.aborted) return;
        if (res.reply === undefined) {
          log.debug({ errors: res.errors }, `embedded DNS: no upstream answered ${what}, SERVFAIL`);
          reply(servfail(r.query, isUdp));
        } else {
          reply(res.reply);
        }
      })
      .catch((err: unknown) => log.warn({ err }, 'embedded DNS: forwarding failed'))
      .finally(() => {
        inflight--;
        done();
      });
  };

  udp.on('message', (raw: Buffer, from: RemoteInfo) => {
    if (closing !== undefined) return;
    const send = (b: Buffer): void => {
      if (closing !== undefined) return;
      udp.send(b, from.port, from.address, (err) => {
        if (err) log.debug({ err }, 'embedded DNS: udp send failed');
      });
    };
    const r = route(raw, true);
    if (r.kind === 'drop') log.debug({ from: `${from.address}:${from.port}` }, `embedded DNS: dropped udp packet: ${r.reason}`);
    else if (r.kind === 'answer') send(r.response);
    else forwardQuery(r, raw, true, send, () => undefined);
  });
  udp.on('error', (err) => log.warn({ err }, 'embedded DNS: udp socket error'));

  tcp.maxConnections = limits.maxTcpConnections;
  tcp.on('connection', (sock: Socket) => {
    if (closing !== undefined) {
      sock.destroy();
      return;
    }
    conns.add(sock);
    const reader = new FrameReader();
    let pending = 0;
    // Reading stops while the client does not read its answers (the write buffer is full) or
    // while too many of its queries are out being forwarded; either way memory stays bounded.
    const maybeResume = (): void => {
      if (pending < limits.maxPerConnection && !sock.writableNeedDrain && sock.isPaused()) sock.resume();
    };
    const send = (b: Buffer): void => {
      if (sock.destroyed || !sock.writable) return;
      if (!sock.write(frame(b))) sock.pause();
    };
    const settled = (): void => {
      pending--;
      maybeResume();
    };
    sock.on('drain', maybeResume);
    sock.setTimeout(limits.tcpIdleMs, () => sock.destroy());
    sock.on('error', (err) => log.debug({ err }, 'embedded DNS: tcp connection error'));
    sock.on('close', () => conns.delete(sock));
    sock.on('data', (chunk: Buffer) => {
      for (const raw of reader.push(chunk)) {
        const r = route(raw, false);
        if (r.kind === 'drop') {
          log.debug(`embedded DNS: dropped tcp message: ${r.reason}`);
        } else if (r.kind === 'answer') {
          send(r.response);
        } else {
          pending++;
          if (pending >= limits.maxPerConnection) sock.pause();
          forwardQuery(r, raw, false, send, settled);
        }
      }
    });
  });
  tcp.on('error', (err) => log.warn({ err }, 'embedded DNS: tcp server error'));

  return {
    close(): Promise<void> {
      closing ??= (async () => {
        abort.abort();
        const udpClosed = new Promise<void>((resolve) => {
          try {
            udp.close(() => resolve());
          } catch {
            resolve(); // already closed
          }
        });
        const tcpClosed = new Promise<void>((resolve) => tcp.close(() => resolve()));
        for (const c of conns) c.destroy();
        await Promise.all([udpClosed, tcpClosed]);
      })();
      return closing;
    },
  };
}

/**
 * Starts the embedded resolver of one sandbox: UDP and TCP on 127.0.0.11:53 inside the
 * namespace at netnsPath, answered by this process. A/AAAA of names Berth knows (TTL 600),
 * PTR of addresses it assigned; everything else goes to the upstream resolvers from berthd's
 * namespace (SERVFAIL when none answers in time). The sandbox's lo must be up.
 */
export async function startEmbeddedDns(opts: EmbeddedDnsOptions): Promise<EmbeddedDns> {
  const upstream = parseUpstreams(opts.upstream); // a bad list fails before anything is bound
  const sockets = await listenInNetns(opts.netnsPath, EMBEDDED_DNS_ADDRESS, 53);
  const server = serveDns(sockets, {
    records: opts.records,
    upstream,
    logger: opts.logger,
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  });
  opts.logger.debug({ upstream: opts.upstream }, `embedded DNS listening on ${EMBEDDED_DNS_ADDRESS}:53 in ${opts.netnsPath}`);
  return {
    address: EMBEDDED_DNS_ADDRESS,
    close: async () => {
      await server.close();
      opts.logger.debug(`embedded DNS in ${opts.netnsPath} closed`);
    },
  };
}
