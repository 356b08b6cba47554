import { createServer, connect, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { BerthError } from '@berth/errors';
import type { DriverLogger } from '@berth/plugin-api';
import type { PortMapping } from './firewall/types.js';

/**
 * The optional userland proxy (`userlandProxy: true`): for hosts where DNAT of 127.0.0.1
 * cannot work, berthd itself listens on each published host port and relays to the
 * container, as docker-proxy does, but in-process (no process per port). Not used by default:
 * the default data path is DNAT in the kernel (bench/network).
 */
export interface ProxyHandle {
  readonly mapping: PortMapping;
  close(): Promise<void>;
}

/** UDP flows idle this long are forgotten (Docker's proxy uses the same order of magnitude). */
const UDP_IDLE_MS = 90_000;

function listenTcp(hostIp: string, port: number, target: { host: string; port: number }): Promise<{ close(): Promise<void> }> {
  const conns = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect(target.port, target.host);
    conns.add(client);
    conns.add(up);
    const end = (): void => {
      client.destroy();
      up.destroy();
      conns.delete(client);
      conns.delete(up);
    };
    client.on('error', end);
    up.on('error', end);
    client.on('close', end);
    up.on('close', end);
    client.pipe(up);
    up.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: hostIp, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve({
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            for (const c of conns) c.destroy();
          }),
      });
    });
  });
}

function listenUdp(hostIp: string, port: number, target: { host: string; port: number }, log: DriverLogger): Promise<{ close(): void }> {
  const sock = createSocket({ type: 'udp4' });
  const flows = new Map<string, { up: UdpSocket; timer: NodeJS.Timeout }>();
  sock.on('message', (msg, from) => {
    const key = `${from.address}:${from.port}`;
    let f = flows.get(key);
    if (!f) {
      const up = createSocket('udp4');
      up.on('message', (reply) => sock.send(reply, from.port, from.address));
      up.on('error', (err) => log.debug({ err }, 'udp proxy upstream error'));
      f = { up, timer: setTimeout(() => undefined, 0) };
      flows.set(key, f);
    }
    clearTimeout(f.timer);
    const flow = f;
    flow.timer = setTimeout(() => {
      flow.up.close();
      flows.delete(key);
    }, UDP_IDLE_MS);
    flow.timer.unref();
    flow.up.send(msg, target.port, target.host);
  });
  sock.on('error', (err) => log.debug({ err }, 'udp proxy error'));
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ address: hostIp, port, exclusive: true }, () => {
      sock.off('error', reject);
      resolve({
        close: () => {
          for (const f of flows.values()) {
            clearTimeout(f.timer);
            f.up.close();
          }
          flows.clear();
          sock.close();
        },
      });
    });
  });
}

/** Listens on every host port of the mapping and relays to the container. All or nothing. */
export async function startProxy(m: PortMapping, log: DriverLogger): Promise<ProxyHandle> {
  if (m.proto === 'sctp') throw new BerthError('BERTH_NOT_IMPLEMENTED', 'the userland proxy does not carry sctp');
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(closers.splice(0).map((c) => c()));
  };
  try {
    for (let i = 0; i <= m.hostPortEnd - m.hostPort; i++) {
      const target = { host: m.containerIp, port: m.containerPort + i };
      const port = m.hostPort + i;
      if (m.proto === 'tcp') {
        const s = await listenTcp(m.hostIp, port, target);
        closers.push(() => s.close());
      } else {
        const s = await listenUdp(m.hostIp, port, target, log);
        closers.push(async () => s.close());
      }
    }
  } catch (err) {
    await closeAll();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new BerthError('BERTH_PORT_ALLOCATED', `Bind for ${m.hostIp}:${m.hostPort} failed: port is already allocated`, { cause: err });
    }
    throw err;
  }
  return { mapping: m, close: closeAll };
}
