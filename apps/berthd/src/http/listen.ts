import { createServer as createHttpServer, type Server } from 'node:http';
import { chmod, chown, lstat, mkdir, readFile, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { BerthError } from '@berth/errors';

export type HostAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** `unix:///run/berth/berth.sock`, `tcp://127.0.0.1:2375` (Docker's -H forms). */
export function parseHost(spec: string): HostAddress {
  if (spec.startsWith('unix://')) {
    const path = spec.slice('unix://'.length);
    if (!path.startsWith('/')) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid host ${spec}: the socket path must be absolute`, { details: { field: 'host' } });
    return { kind: 'unix', path };
  }
  if (spec.startsWith('/')) return { kind: 'unix', path: spec };
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]*):(\d+)\/?$/.exec(spec);
  if (m) {
    const port = Number(m[2]);
    if (port > 65535) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid host ${spec}: bad port`, { details: { field: 'host' } });
    const host = m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1';
    return { kind: 'tcp', host, port };
  }
  throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid host ${spec}: expected unix:///path or tcp://host:port`, { details: { field: 'host' } });
}

const loopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || /^::ffff:127\./i.test(host);

/**
 * berthd has no TLS, and its API is root on this machine: a tcp listener that another host could
 * reach is refused, unless `--tls=false` says the risk is taken (Docker's opt-out; dockerd 27+
 * refuses the same). Answers the warnings to log for the listeners let through that way.
 */
export function checkExposure(hosts: readonly string[], tls: boolean | undefined): string[] {
  if (tls === true) {
    throw new BerthError('BERTH_INVALID_ARGUMENT', 'berthd does not serve TLS: listen on a unix socket or a loopback address (and tunnel it, e.g. over ssh)', { details: { field: 'tls' } });
  }
  const warnings: string[] = [];
  for (const spec of hosts) {
    const h = parseHost(spec);
    if (h.kind !== 'tcp' || loopback(h.host)) continue;
    if (tls !== false) {
      throw new BerthError(
        'BERTH_INVALID_ARGUMENT',
        `refusing to listen on ${spec} without TLS: whoever reaches it is root on this machine. Use a unix socket or a loopback address, or pass --tls=false to take that risk`,
        { details: { field: 'host', host: spec } },
      );
    }
    warnings.push(`the API is reachable without encryption or authentication on ${spec} (--tls=false): whoever reaches it is root on this machine`);
  }
  return warnings;
}

export interface ListenOptions {
  /** Mode of unix sockets (default 0o660). */
  socketMode?: number;
  /**
   * Group owning unix sockets, a name or a gid: one that /etc/group does not have is an error;
   * unset, `berth` when it exists.
   */
  socketGroup?: string;
  /** Told what did not go as configured but does not stop serving (a socket's group). */
  onWarning?: (message: string) => void;
}

export interface Listener {
  /** What is listening: socket paths, and `host:port` with the real port for tcp. */
  addresses: string[];
  /** Stops accepting new connections; open ones go on (shutdown lets the engine end them). */
  stopAccepting(): void;
  /** Stops accepting, ends open connections, removes socket files. */
  close(): Promise<void>;
}

async function groupId(name: string): Promise<number | undefined> {
  if (/^\d+$/.test(name)) return Number(name);
  try {
    const text = await readFile('/etc/group', 'utf8');
    for (const line of text.split('\n')) {
      const [n, , gid] = line.split(':');
      if (n === name && gid !== undefined) return Number(gid);
    }
  } catch {
    // no /etc/group: no group to set
  }
  return undefined;
}

/** True when something accepts connections on the unix socket `path`. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A socket file left by a daemon that did not clean up; anything else there is not ours. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (!st.isSocket()) throw new BerthError('BERTH_INVALID_ARGUMENT', `${path} exists and is not a socket`, { details: { field: 'host' } });
    if (await socketAnswers(path))
      throw new BerthError('BERTH_DAEMON_RUNNING', `another daemon is serving ${path}`, { details: { field: 'host', path } });
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function listenOn(server: Server, addr: HostAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (addr.kind === 'unix') {
      // The socket is made by bind() with the process umask: keep it closed to others from the
      // first moment (chmod to the configured mode follows), not world-writable until then.
      const old = process.umask(0o177);
      try {
        server.listen(addr.path, done);
      } finally {
        process.umask(old);
      }
    } else server.listen(addr.port, addr.host, done);
  });
}

/**
 * Serves a server from createServer() on every host. Each host gets its own node http server
 * routed into the same fastify instance, with the upgrade handler for hijacks.
 */
export async function listen(app: FastifyInstance, hosts: readonly string[], opts: ListenOptions = {}): Promise<Listener> {
  await app.ready();
  const addrs = hosts.map(parseHost);
  const servers: { server: Server; addr: HostAddress }[] = [];
  const addresses: string[] = [];
  const gid = await groupId(opts.socketGroup ?? 'berth');
  if (gid === undefined && opts.socketGroup !== undefined)
    throw new BerthError('BERTH_INVALID_ARGUMENT', `group ${opts.socketGroup} for the API sockets is not in /etc/group`, { details: { field: 'group' } });
  let closed: Promise<void>[] | undefined;
  const stopAccepting = (): void => {
    closed ??= servers.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve())));
  };
  const close = async (): Promise<void> => {
    // Stop accepting first; then end open connections (upgraded sockets still count as
    // connections of their server, but node no longer tracks them as HTTP ones).
    stopAccepting();
    for (const s of app.berthSockets) s.destroy();
    for (const { server } of servers) server.closeAllConnections();
    await Promise.all(closed!);
    for (const { addr } of servers) if (addr.kind === 'unix') await unlink(addr.path).catch(() => {});
  };
  try {
    for (const addr of addrs) {
      // No request timeout: image uploads and streams last as long as they last.
      const server = createHttpServer({ requestTimeout: 0 }, (req, res) => app.routing(req, res));
      server.on('upgrade', (req, socket, head) => void app.berthUpgrade(req, socket, head));
      if (addr.kind === 'unix') {
        await mkdir(dirname(addr.path), { recursive: true, mode: 0o755 });
        await removeStaleSocket(addr.path);
      }
      await listenOn(server, addr);
      servers.push({ server, addr });
      if (addr.kind === 'unix') {
        await chmod(addr.path, opts.socketMode ?? 0o660);
        if (gid !== undefined)
          await chown(addr.path, process.getuid?.() ?? 0, gid).catch((err: unknown) => opts.onWarning?.(`cannot give ${addr.path} to its group: ${(err as Error).message}`));
        addresses.push(addr.path);
      } else {
        const a = server.address();
        addresses.push(typeof a === 'object' && a ? `${addr.host}:${a.port}` : `${addr.host}:${addr.port}`);
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { addresses, stopAccepting, close };
}
