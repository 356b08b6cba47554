import { createRequire } from 'node:module';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createEngine } from '@berth/engine';
import { isDriverSkip, type GraphDriver, type GraphDriverDescriptor } from '@berth/plugin-api';
import { BerthError } from '@berth/errors';
import { Component, componentLogger, createRootLogger, type Logger } from '@berth/log';
import { builtinGraphDriver, builtinGraphDrivers } from './builtins.js';
import { USAGE, loadConfig, parseFlags, type DaemonConfig } from './config.js';
import { listen } from './http/listen.js';
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

/** config -> logger -> built-ins -> engine -> server -> listen; SIGTERM/SIGINT shut down. */
async function main(argv: string[]): Promise<void> {
  const args = parseFlags(argv);
  if (args.help) return void process.stdout.write(USAGE);
  if (args.version) return void process.stdout.write(`Berth version ${version}\n`);
  const cfg = await loadConfig(args);

  const root = createRootLogger(cfg.logLevel);
  const log = componentLogger(root, Component.Daemon);
  if (!cfg.fileFound) log.info({ configFile: cfg.configFile }, 'no config file: using flags and defaults');
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
    });
    const app = createServer({ engine, logger: root });
    const listener = await listen(app, cfg.hosts, { onWarning: (message) => log.warn(message) });
    log.info({ hosts: listener.addresses, dataRoot: cfg.dataRoot, storageDriver: graphDriver.name, version }, 'berthd is serving the API');

    let stopping = false;
    const shutdown = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: containers keep running');
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
      process.exit(0);
    };
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
  } catch (err) {
    await releasePidfile();
    throw err;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`berthd: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
