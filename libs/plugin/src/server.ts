/**
 * Serves driver objects as a v1 plugin (specs/plugin-protocol.md §2, §3): HTTP/1.1 over a
 * unix socket, `POST /Plugin.Activate` answers the manifest, `POST /<Subsystem>.<Method>`
 * calls the driver through the contract's method table. Errors answer 200 with `{"Err": msg}`
 * (`Error` for IPAM) plus Berth's code; unknown paths answer 404 so the engine's "optional
 * method" rule works; a streamed Diff that fails before its first byte answers 500.
 */
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError } from '@berth/errors';
import {
  ACTIVATE_PATH,
  PLUGIN_MEDIA_TYPE_SDK,
  Subsystem,
  authzPluginMethods,
  ipamDriverMethods,
  networkDriverMethods,
  volumeDriverMethods,
  type AuthzPlugin,
  type AuthzResponse,
  type DriverLogger,
  type GraphDriver,
  type IpamDriver,
  type NetworkDriver,
  type VolumeDriver,
} from '@berth/plugin-api';
import { graphRawBodyMethods, graphServerMethods } from './graph.js';
import { errorEnvelope, messageOf } from './wire.js';

/** The drivers one plugin serves; the manifest lists the subsystems given. */
export interface ServedDrivers {
  network?: NetworkDriver;
  ipam?: IpamDriver;
  graph?: GraphDriver;
  volume?: VolumeDriver;
  authz?: AuthzPlugin;
}

export interface ServeOptions {
  logger?: DriverLogger;
  /** Socket file mode (default 0o600: only root, the engine, talks to a plugin). */
  mode?: number;
  /** Largest JSON request read (default 16 MiB). */
  maxBodyBytes?: number;
}

export interface PluginServer {
  readonly socketPaths: readonly string[];
  readonly implements: readonly string[];
  /** Stops listening, ends open connections and removes the socket files. */
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, query: URLSearchParams) => Promise<void>;

const sendJson = (res: http.ServerResponse, status: number, body: unknown): void => {
  const data = Buffer.from(`${JSON.stringify(body)}\n`);
  res.writeHead(status, { 'Content-Type': PLUGIN_MEDIA_TYPE_SDK, 'Content-Length': data.length });
  res.end(data);
};

function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new BerthError('BERTH_INVALID_ARGUMENT', `request body larger than ${max} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const parseJson = (buf: Buffer): unknown => {
  const text = buf.toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `request body is not JSON: ${(err as Error).message}`);
  }
};

/** The manifest and the route table of the given drivers. */
export function pluginRoutes(drivers: ServedDrivers, opts: ServeOptions = {}): { implements: string[]; routes: Map<string, Handler> } {
  const max = opts.maxBodyBytes ?? 16 << 20;
  const log = opts.logger;
  const routes = new Map<string, Handler>();
  const implementsList: string[] = [];

  const jsonKind = (subsystem: string, driver: object, table: Record<string, string>): void => {
    implementsList.push(subsystem);
    for (const [wire, method] of Object.entries(table)) {
      routes.set(`/${wire}`, async (req, res) => {
        let answer: unknown;
        try {
          const arg = parseJson(await readBody(req, max));
          const fn = (driver as Record<string, (a?: unknown) => Promise<unknown>>)[method]!;
          answer = (await fn.call(driver, arg)) ?? {};
        } catch (err) {
          log?.debug({ method: wire, err: messageOf(err) }, 'plugin call failed');
          answer = errorEnvelope(subsystem, err);
        }
        sendJson(res, 200, answer);
      });
    }
  };
  if (drivers.network !== undefined) jsonKind(Subsystem.network, drivers.network, networkDriverMethods);
  if (drivers.ipam !== undefined) jsonKind(Subsystem.ipam, drivers.ipam, ipamDriverMethods);
  if (drivers.volume !== undefined) jsonKind(Subsystem.volume, drivers.volume, volumeDriverMethods);
  if (drivers.authz !== undefined) {
    // Docker's Go SDK answers a verdict carrying Err with HTTP 500, which dockerd reports as the
    // plugin's failure; a throw here is the same. Berth's engine and dockerd read it alike.
    const plugin = drivers.authz;
    implementsList.push(Subsystem.authz);
    for (const [wire, method] of Object.entries(authzPluginMethods)) {
      routes.set(`/${wire}`, async (req, res) => {
        let answer: AuthzResponse;
        try {
          const arg = (parseJson(await readBody(req, max)) ?? {}) as Parameters<AuthzPlugin['authZReq']>[0];
          const got = await plugin[method].call(plugin, arg);
          answer = { Allow: got?.Allow === true, Msg: got?.Msg ?? '', Err: got?.Err ?? '' };
        } catch (err) {
          log?.debug({ method: wire, err: messageOf(err) }, 'plugin call failed');
          answer = { Allow: false, Msg: '', Err: messageOf(err) };
        }
        sendJson(res, answer.Err === '' ? 200 : 500, answer);
      });
    }
  }
  if (drivers.graph !== undefined) {
    implementsList.push(Subsystem.graph);
    for (const [wire, call] of Object.entries(graphServerMethods(drivers.graph))) {
      routes.set(`/${wire}`, async (req, res, query) => {
        let answer;
        try {
          const body = graphRawBodyMethods.has(wire) ? {} : ((parseJson(await readBody(req, max)) ?? {}) as object);
          answer = await call(body, query, req as Readable);
        } catch (err) {
          log?.debug({ method: wire, err: messageOf(err) }, 'plugin call failed');
          // A stream was expected for Diff: an error there must not look like a tar.
          sendJson(res, wire === 'GraphDriver.Diff' ? 500 : 200, errorEnvelope(Subsystem.graph, err));
          return;
        }
        if ('json' in answer) {
          sendJson(res, 200, answer.json);
          return;
        }
        const stream = answer.stream;
        res.writeHead(200, { 'Content-Type': 'application/x-tar' });
        stream.on('error', (err) => {
          log?.warn({ method: wire, err: messageOf(err) }, 'diff stream failed');
          res.destroy(err);
        });
        res.on('close', () => {
          if (!res.writableFinished) stream.destroy();
        });
        stream.pipe(res);
      });
    }
  }
  return { implements: implementsList, routes };
}

/** A request listener for the drivers (also usable on a TCP server). */
export function pluginRequestListener(drivers: ServedDrivers, opts: ServeOptions = {}): http.RequestListener {
  const { implements: manifest, routes } = pluginRoutes(drivers, opts);
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://plugin');
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST' }).end();
      return;
    }
    if (url.pathname === ACTIVATE_PATH) {
      req.resume();
      sendJson(res, 200, { Implements: manifest });
      return;
    }
    const handler = routes.get(url.pathname);
    if (handler === undefined) {
      req.resume();
      sendJson(res, 404, { Err: `${url.pathname.slice(1)} is not implemented by this plugin` });
      return;
    }
    handler(req, res, url.searchParams).catch((err: unknown) => {
      opts.logger?.error({ path: url.pathname, err: messageOf(err) }, 'plugin handler failed');
      if (!res.headersSent) sendJson(res, 500, { Err: messageOf(err) });
      else res.destroy();
    });
  };
}

/** A socket file someone answers on is never taken over; a stale one is removed. */
async function claimSocketPath(socketPath: string): Promise<void> {
  await fs.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  let st;
  try {
    st = await fs.lstat(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new BerthError('BERTH_PLUGIN', `cannot serve on ${socketPath}: it exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new BerthError('BERTH_PLUGIN', `cannot serve on ${socketPath}: another process serves it`);
  await fs.rm(socketPath, { force: true });
}

/**
 * Serves the drivers on one or more unix socket paths (the same handler on each, e.g.
 * /run/berth/plugins/x.sock and /run/docker/plugins/x.sock).
 */
export async function serve(drivers: ServedDrivers, socketPath: string | readonly string[], opts: ServeOptions = {}): Promise<PluginServer> {
  const paths = typeof socketPath === 'string' ? [socketPath] : [...socketPath];
  if (paths.length === 0) throw new BerthError('BERTH_INVALID_ARGUMENT', 'serve: no socket path');
  const listener = pluginRequestListener(drivers, opts);
  const manifest = pluginRoutes(drivers).implements;
  if (manifest.length === 0) throw new BerthError('BERTH_INVALID_ARGUMENT', 'serve: no driver given');
  const servers: http.Server[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    for (const p of paths) await fs.rm(p, { force: true });
  };
  try {
    for (const p of paths) {
      await claimSocketPath(p);
      // No request timeout: an ApplyDiff of a large layer may stream for minutes.
      const server = http.createServer({ keepAliveTimeout: 30_000, requestTimeout: 0 }, listener);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
      await fs.chmod(p, opts.mode ?? 0o600);
    }
  } catch (err) {
    await close();
    throw err;
  }
  opts.logger?.info({ sockets: paths, implements: manifest }, 'plugin serving');
  return { socketPaths: paths, implements: manifest, close };
}
