import { createRequire } from 'node:module';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createEngine, type EngineOptions } from '@berth/engine';
import { trimMallocHeap } from '@berth/native';
import { isDriverSkip, type GraphDriver, type GraphDriverDescriptor } from '@berth/plugin-api';
import { BerthError } from '@berth/errors';
import { Component, componentLogger, createRootLogger, type Logger } from '@berth/log';
import { builtinGraphDriver, builtinGraphDrivers, builtinIpamDrivers, builtinNetworkDrivers } from './builtins.js';
import { USAGE, loadConfig, parseFlags, type DaemonConfig } from './config.js';
import { createAuthzChain } from './http/authz.js';
import { checkExposure, listen } from './http/listen.js';
import { compactingGc, idleCompactor } from './idle-gc.js';
import { acquirePidfile } from './pidfile.js';
import { createServer } from './server.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/**
 * Docker's choice: the configured driver (an error if it cannot run here); else the one whose
 * directory in the data root already holds layers, so images are not lost; else the first
 * built-in in probe order that does not skip.
 */
async function makeGraphDriver(cfg: DaemonConfig, logger: Logger): Promise<GraphDriver> {
  const create = async (desc: GraphDriverDescriptor) =>
    desc.create({ root: join(cfg.dataRoot, desc.name), logger: componentLogger(logger, Component.Storage, { driver: desc.name }) });
  if (cfg.storageDriver) {
    const desc = builtinGraphDriver(cfg.storageDriver);
    if (!desc)
      throw new BerthError('BERTH_INVALID_ARGUMENT', `unknown storage driver ${cfg.storageDriver}: built-in drivers are ${builtinGraphDrivers.map((d) => d.name).join(', ')}`, {
        details: { field: 'storage-driver' },
      });
    const driver = await create(desc);
    if (isDriverSkip(driver)) throw new BerthError('BERTH_INVALID_ARGUMENT', `storage driver ${desc.name} cannot run here: ${driver.skip}`, { details: { field: 'storage-driver' } });
    return driver;
  }
  const holdsImages = (desc: GraphDriverDescriptor): boolean => {
    try {
      return readdirSync(join(cfg.dataRoot, 'image', desc.name, 'imagedb', 'content', 'sha256')).length > 0;
    } catch {
      return false;
    }
  };
  const prior = builtinGraphDrivers.filter(holdsImages);
  const skipped: string[] = [];
  for (const desc of prior.length > 0 ? prior : builtinGraphDrivers) {
    const driver = await create(desc);
    if (!isDriverSkip(driver)) return driver;
    skipped.push(`${desc.name}: ${driver.skip}`);
  }
  throw new BerthError('BERTH_INVALID_ARGUMENT', `no storage driver can run here (${skipped.join('; ')})`, { details: { field: 'storage-driver' } });
}

/**
 * The CNM setup: built-in drivers, the default bridge from --bridge/--bip/--mtu/--icc, and the
 * bridge driver's daemon options. BERTH_IPTABLES_CHAIN_PREFIX renames the chains (BERTH...): a
 * seam for tests that run several daemons on one host.
 */
function networkOptions(cfg: DaemonConfig): NonNullable<EngineOptions['network']> {
  let subnet: string | undefined;
  let gateway: string | undefined;
  if (cfg.bip) {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cfg.bip);
    if (!m || Number(m[5]) > 30) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid --bip ${cfg.bip}: want an IPv4 address with a prefix length, e.g. 172.17.0.1/16`, { details: { field: 'bip' } });
    const bits = Number(m[5]);
    const ip = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
    const net = bits === 0 ? 0 : (ip & ((~0 << (32 - bits)) >>> 0)) >>> 0;
    subnet = `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${bits}`;
    gateway = `${m[1]}.${m[2]}.${m[3]}.${m[4]}`;
  }
  const bridgeOptions: Record<string, string> = { mtu: String(cfg.mtu), 'userland-proxy': String(cfg.userlandProxy), iptables: String(cfg.iptables) };
  const prefix = process.env.BERTH_IPTABLES_CHAIN_PREFIX;
  if (prefix) bridgeOptions['chain-prefix'] = prefix;
  return {
    drivers: builtinNetworkDrivers,
    ipams: builtinIpamDrivers,
    defaultBridge: { name: cfg.bridge, mtu: cfg.mtu, icc: cfg.icc, ...(subnet ? { subnet, gateway } : {}) },
    driverOptions: { bridge: bridgeOptions },
  };
}

/** How long SIGTERM may take before berthd exits anyway (dockerd's shutdown-timeout is 15 s). */
const SHUTDOWN_DEADLINE_MS = 15_000;

/**
 * The daemon, as bin/berthd runs it (tools/bundle/launch.cjs: the bundle dist/berthd.cjs when it
 * is fresh, else this module): resolves with the exit status once berthd has stopped (0 after a
 * SIGTERM/SIGINT shutdown, 1 when it cannot start; the reason is on stderr).
 */
export async function main(argv: string[]): Promise<number> {
  try {
    return await serve(argv);
  } catch (err) {
    process.stderr.write(`berthd: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** Exits with `code` (the launcher calls it with what `main` resolved to). */
export function exit(code: number): void {
  process.exit(code);
}

/** config -> logger -> built-ins -> engine -> server -> listen; SIGTERM/SIGINT shut down. */
async function serve(argv: string[]): Promise<number> {
  const args = parseFlags(argv);
  if (args.help) return (process.stdout.write(USAGE), 0);
  if (args.version) return (process.stdout.write(`Berth version ${version}\n`), 0);
  const cfg = await loadConfig(args);

  const root = createRootLogger(cfg.logLevel);
  const log = componentLogger(root, Component.Daemon);
  if (!cfg.fileFound) log.info({ configFile: cfg.configFile }, 'no config file: using flags and defaults');
  for (const warning of checkExposure(cfg.hosts, cfg.tls)) log.warn(warning);
  const releasePidfile = await acquirePidfile(cfg.pidfile);
  try {
    const graphDriver = await makeGraphDriver(cfg, root);
    const engine = await createEngine({
      dataRoot: cfg.dataRoot,
      execRoot: cfg.execRoot,
      logger: componentLogger(root, Component.Engine),
      graphDriver,
      liveRestore: cfg.liveRestore,
      insecureRegistries: cfg.insecureRegistries,
      authorizationPlugins: cfg.authorizationPlugins,
      ...(cfg.bridge === 'none' ? {} : { network: networkOptions(cfg) }),
    });
    const authz =
      cfg.authorizationPlugins.length > 0 ? createAuthzChain(cfg.authorizationPlugins, { logger: componentLogger(root, Component.Api, { plugin: 'authz' }) }) : undefined;
    if (authz !== undefined) log.info({ plugins: authz.names }, 'authorization plugins: every request is asked to them');
    const app = createServer({ engine, logger: root, ...(authz === undefined ? {} : { authz }) });
    // RSS back down after a burst of work (bench/lifecycle); bin/berthd runs with --expose-gc.
    // After the heap, malloc's free memory goes back too (the burst's buffers and parser zones).
    const compacting = compactingGc((globalThis as { gc?: () => void }).gc);
    const compactor = idleCompactor({
      gc: compacting && (() => {
        compacting();
        trimMallocHeap();
      }),
    });
    app.addHook('onResponse', async () => compactor.touch());
    const listener = await listen(app, cfg.hosts, { onWarning: (message) => log.warn(message), ...(cfg.group !== undefined ? { socketGroup: cfg.group } : {}) });
    // start-up's garbage (config, drivers, routes) gone before the first client (~10 ms)
    setImmediate(() => compactor.now());
    log.info({ hosts: listener.addresses, dataRoot: cfg.dataRoot, storageDriver: graphDriver.name, version }, 'berthd is serving the API');

    let stopping = false;
    let stopped!: (code: number) => void;
    const done = new Promise<number>((resolve) => (stopped = resolve));
    const shutdown = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: containers keep running');
      // A client that holds a connection open (a follow, an attach) or a stuck storage driver
      // must not keep the daemon alive: containers live on without it, the next start re-adopts.
      setTimeout(() => {
        log.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown did not finish in time: exiting');
        void releasePidfile().finally(() => process.exit(1));
      }, SHUTDOWN_DEADLINE_MS).unref();
      compactor.stop();
      try {
        listener.stopAccepting();
        await engine.close();
        await listener.close();
        await app.close();
        await graphDriver.cleanup().catch((err: unknown) => log.warn({ err }, 'storage driver cleanup failed'));
      } catch (err) {
        log.error({ err }, 'shutdown failed');
      } finally {
        await releasePidfile();
      }
      stopped(0);
    };
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
    return await done;
  } catch (err) {
    await releasePidfile();
    throw err;
  }
}
