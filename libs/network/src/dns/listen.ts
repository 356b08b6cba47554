import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server } from 'node:net';
import { createRequire } from 'node:module';
import { BerthError } from '@berth/errors';
import { inNetns } from '@berth/native';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | { address: string; family: number }[], family?: number) => void;

/**
 * A lookup that answers an IP literal at once, in the caller's stack. Node's dgram `bind` and
 * net's `listen(port, host)` look the host up first and bind in the callback; the stock lookup
 * calls back on a later tick, when the thread is back in berthd's namespace.
 */
export function literalLookup(host: string, optsOrCb: unknown, maybeCb?: LookupCallback): void {
  const cb = (typeof optsOrCb === 'function' ? optsOrCb : maybeCb) as LookupCallback;
  const family = isIP(host);
  const all = typeof optsOrCb === 'object' && optsOrCb !== null && (optsOrCb as { all?: boolean }).all === true;
  if (family === 0) {
    const err: NodeJS.ErrnoException = new Error(`${host} is not an IP address`);
    err.code = 'EINVAL';
    cb(err, '');
    return;
  }
  if (all) cb(null, [{ address: host, family }]);
  else cb(null, host, family);
}

// The very object node:net calls `dns.lookup` on (net requires 'dns' and reads the property at call time).
const dnsModule = createRequire(import.meta.url)('node:dns') as { lookup: unknown };

export interface NetnsSockets {
  udp: UdpSocket;
  tcp: Server;
}

function bindError(netnsPath: string, what: string, err: unknown): BerthError {
  const code = (err as NodeJS.ErrnoException).code;
  const hint = code === 'EADDRNOTAVAIL' ? ' (is lo up in the sandbox?)' : '';
  return new BerthError('BERTH_NETWORK', `embedded DNS in ${netnsPath}: ${what}: ${(err as Error).message}${hint}`, { cause: err });
}

/**
 * Creates a UDP socket and a listening TCP server on address:port whose file descriptors are
 * made inside the network namespace at netnsPath (see inNetns): both binds happen
 * synchronously in there. Resolves once both listen; on failure nothing is left open.
 */
export async function listenInNetns(
  netnsPath: string,
  address: string,
  port: number,
  enter: <T>(nsPath: string, fn: () => T) => T = inNetns,
): Promise<NetnsSockets> {
  if (isIP(address) !== 4) throw new BerthError('BERTH_INVALID_ARGUMENT', `embedded DNS: ${address} is not an IPv4 address`);
  let udp: UdpSocket | undefined;
  let tcp: Server | undefined;
  let udpError: unknown;
  let tcpError: unknown;
  let tcpLookedUp = false;
  const cleanup = async (): Promise<void> => {
    const u = udp as UdpSocket | undefined;
    const t = tcp as Server | undefined;
    if (u !== undefined) await new Promise<void>((resolve) => { try { u.close(() => resolve()); } catch { resolve(); } });
    if (t?.listening === true) await new Promise<void>((resolve) => t.close(() => resolve()));
  };
  try {
    enter(netnsPath, () => {
      udp = createSocket({ type: 'udp4', lookup: literalLookup as never });
      udp.once('error', (err) => { udpError = err; });
      udp.bind({ port, address, exclusive: true });

      tcp = createServer();
      tcp.once('error', (err) => { tcpError = err; });
      const stock = dnsModule.lookup;
      dnsModule.lookup = (host: string, opts: unknown, cb?: LookupCallback) => {
        tcpLookedUp = true;
        literalLookup(host, opts, cb);
      };
      try {
        tcp.listen({ port, host: address, exclusive: true });
      } finally {
        dnsModule.lookup = stock;
      }
    });
  } catch (err) {
    await cleanup();
    throw err;
  }
  if (udpError !== undefined) {
    await cleanup();
    throw bindError(netnsPath, `bind udp ${address}:${port}`, udpError);
  }
  if (!tcpLookedUp) {
    // Node bound (or will bind) the TCP socket later, outside the namespace: refuse to use it.
    tcp!.on('listening', () => tcp!.close());
    await cleanup();
    throw new BerthError('BERTH_INTERNAL', `embedded DNS in ${netnsPath}: this Node.js defers the TCP bind; it would listen in berthd's namespace`);
  }
  // A failed TCP bind is reported on the next tick; a good one has its handle already.
  await new Promise((resolve) => setImmediate(resolve));
  if (tcpError !== undefined || tcp!.listening !== true) {
    await cleanup();
    throw bindError(netnsPath, `listen tcp ${address}:${port}`, tcpError ?? new Error('not listening'));
  }
  tcp!.removeAllListeners('error');
  udp!.removeAllListeners('error');
  return { udp: udp!, tcp: tcp! };
}
