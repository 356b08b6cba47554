import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * For tests only (not exported by the package): a UDP socket and a listening TCP server on the
 * same port of 127.0.0.1, handed out only once a datagram and a connection sent to
 * 127.0.0.1:<port> from this process have reached them.
 *
 * Binding a port is not enough on a shared host: a published port range DNATs loopback
 * traffic in the nat OUTPUT chain (a berthd publishing udp 41000-50999 does, for every local
 * destination, 127.0.0.1 included), so what is sent to a port bound here goes to a container
 * instead (ICMP port unreachable: `recvmsg ECONNREFUSED`, or silence). A port that fails the
 * probe stays bound (UDP) until a good one is found, so the kernel does not offer it again.
 */
export interface LoopbackPair {
  udp: UdpSocket;
  tcp: Server;
  port: number;
}

export interface LoopbackPairOptions {
  /** How long each probe may take (default 2000 ms). */
  probeTimeoutMs?: number;
  /** Ports tried before giving up (default 64). */
  maxAttempts?: number;
}

export const closeUdp = (s: UdpSocket): Promise<void> =>
  new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });

export const closeServer = (s: Server): Promise<void> => new Promise((resolve) => (s.listening ? s.close(() => resolve()) : resolve()));

/** Runs `start` until it calls `settle`, or fails after `ms`; `start` returns its cleanup. */
function bounded(ms: number, what: string, start: (settle: (err?: Error) => void) => () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    let cleanup = (): void => undefined;
    const settle = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      if (err === undefined) resolve();
      else reject(new Error(`${what}: ${err.message}`));
    };
    const timer = setTimeout(() => settle(new Error(`did not arrive in ${ms} ms`)), ms);
    cleanup = start(settle);
  });
}

/** A datagram from a connected socket must reach `udp` (an ICMP error fails it at once). */
function probeUdp(udp: UdpSocket, port: number, timeoutMs: number): Promise<void> {
  const nonce = randomBytes(16);
  return bounded(timeoutMs, `udp probe of 127.0.0.1:${port}`, (settle) => {
    const onMessage = (m: Buffer): void => {
      if (m.equals(nonce)) settle();
    };
    udp.on('message', onMessage);
    const c = createSocket('udp4');
    c.on('error', (err) => settle(err));
    c.connect(port, '127.0.0.1', () => c.send(nonce, (err) => err && settle(err)));
    return () => {
      udp.off('message', onMessage);
      void closeUdp(c);
    };
  });
}

/** A connection must reach `tcp` and carry a nonce to it (a reset fails it at once). */
function probeTcp(tcp: Server, port: number, timeoutMs: number): Promise<void> {
  const nonce = randomBytes(16);
  const accepted = new Set<Socket>();
  return bounded(timeoutMs, `tcp probe of 127.0.0.1:${port}`, (settle) => {
    const onConnection = (sock: Socket): void => {
      accepted.add(sock);
      sock.on('error', () => undefined);
      let got = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.equals(nonce)) settle();
      });
    };
    tcp.on('connection', onConnection);
    const c = connect(port, '127.0.0.1');
    c.on('error', (err) => settle(err));
    c.on('connect', () => c.write(nonce));
    return () => {
      tcp.off('connection', onConnection);
      c.destroy();
      for (const s of accepted) s.destroy();
    };
  });
}

export async function listenLoopbackPair(opts: LoopbackPairOptions = {}): Promise<LoopbackPair> {
  const probeTimeoutMs = opts.probeTimeoutMs ?? 2000;
  const maxAttempts = opts.maxAttempts ?? 64;
  const parked: UdpSocket[] = [];
  const rejected: string[] = [];
  try {
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const udp = createSocket('udp4');
      const bound = await new Promise<Error | undefined>((resolve) => {
        udp.once('error', resolve);
        udp.bind(0, '127.0.0.1', () => {
          udp.off('error', resolve);
          resolve(undefined);
        });
      });
      if (bound !== undefined) {
        await closeUdp(udp);
        rejected.push(`bind: ${bound.message}`);
        break; // no free port left
      }
      const port = udp.address().port;
      parked.push(udp); // until it proves reachable
      const tcp = createServer();
      const listened = await new Promise<Error | undefined>((resolve) => {
        tcp.once('error', resolve);
        tcp.listen(port, '127.0.0.1', () => {
          tcp.off('error', resolve);
          resolve(undefined);
        });
      });
      if (listened !== undefined) {
        rejected.push(`${port}: tcp ${listened.message}`);
        continue;
      }
      try {
        await probeUdp(udp, port, probeTimeoutMs);
        await probeTcp(tcp, port, probeTimeoutMs);
      } catch (err) {
        rejected.push((err as Error).message);
        await closeServer(tcp);
        continue;
      }
      parked.splice(parked.indexOf(udp), 1);
      return { udp, tcp, port };
    }
    throw new Error(`no port of 127.0.0.1 reachable over UDP and TCP (${rejected.join('; ')})`);
  } finally {
    await Promise.all(parked.map(closeUdp));
  }
}
