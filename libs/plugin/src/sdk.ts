/**
 * The SDK for plugin authors: serve a driver object under a plugin name in the directories the
 * engines look in. It is `serve()` with defaults, nothing more.
 */
import * as path from 'node:path';
import type { AuthzPlugin, DriverLogger, GraphDriver, IpamDriver, NetworkDriver, VolumeDriver } from '@berth/plugin-api';
import { serve, type PluginServer, type ServedDrivers } from './server.js';

export const BERTH_PLUGIN_SOCKET_DIR = '/run/berth/plugins';
export const DOCKER_PLUGIN_SOCKET_DIR = '/run/docker/plugins';

export interface PluginSdkOptions {
  /** The plugin name: the socket is `<dir>/<name>.sock`, and `-d <name>` selects it. */
  name: string;
  /** Also serve on /run/docker/plugins/<name>.sock so dockerd finds it (default false). */
  docker?: boolean;
  /** Directories to serve in instead of the defaults (tests). */
  dirs?: readonly string[];
  logger?: DriverLogger;
  mode?: number;
}

const socketPaths = (o: PluginSdkOptions): string[] =>
  (o.dirs ?? (o.docker === true ? [BERTH_PLUGIN_SOCKET_DIR, DOCKER_PLUGIN_SOCKET_DIR] : [BERTH_PLUGIN_SOCKET_DIR])).map((d) => path.join(d, `${o.name}.sock`));

const serveNamed = (drivers: ServedDrivers, o: PluginSdkOptions): Promise<PluginServer> =>
  serve(drivers, socketPaths(o), { ...(o.logger ? { logger: o.logger } : {}), ...(o.mode === undefined ? {} : { mode: o.mode }) });

/** Serves several kinds under one name (e.g. a network driver with its own IPAM). */
export const servePlugin = serveNamed;
export const serveNetworkPlugin = (driver: NetworkDriver, o: PluginSdkOptions): Promise<PluginServer> => serveNamed({ network: driver }, o);
export const serveIpamPlugin = (driver: IpamDriver, o: PluginSdkOptions): Promise<PluginServer> => serveNamed({ ipam: driver }, o);
export const serveGraphPlugin = (driver: GraphDriver, o: PluginSdkOptions): Promise<PluginServer> => serveNamed({ graph: driver }, o);
export const serveVolumePlugin = (driver: VolumeDriver, o: PluginSdkOptions): Promise<PluginServer> => serveNamed({ volume: driver }, o);
/** An authorization plugin (`--authorization-plugin <name>` on berthd and dockerd). */
export const serveAuthzPlugin = (plugin: AuthzPlugin, o: PluginSdkOptions): Promise<PluginServer> => serveNamed({ authz: plugin }, o);

/**
 * The command line of a plugin program, `[name] [--dir <socket dir>] [--docker] [--<flag> <value>]...`:
 * the SDK options it asks for (the name, else `defaultName`), and the values of the other flags
 * the program takes (`flags`, each `--x` with a value).
 */
export function pluginCommandLine(argv: readonly string[], defaultName: string, flags: readonly string[] = []): { options: PluginSdkOptions; values: Record<string, string | undefined> } {
  const args = [...argv];
  const take = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i < 0 ? undefined : args.splice(i, 2)[1];
  };
  const dir = take('--dir');
  const values = Object.fromEntries(flags.map((f) => [f, take(f)]));
  const docker = args.includes('--docker');
  const name = args.find((a) => !a.startsWith('--')) ?? defaultName;
  return { options: { name, docker, ...(dir === undefined ? {} : { dirs: [dir] }) }, values };
}

/** Says where the plugin serves (on stderr), and on SIGINT or SIGTERM closes it (its sockets go) and exits. */
export function closeOnSignal(server: PluginServer, name: string): void {
  process.stderr.write(`${name}: serving on ${server.socketPaths.join(', ')}\n`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void server.close().then(() => process.exit(0)));
}
