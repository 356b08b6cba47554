/**
 * The child side of spawnDriverHost: `node host-main.js '<DriverHostSpec JSON>'`. Makes the
 * driver from the descriptor, serves it, prints one ready line (`{"implements": [...]}`) on
 * stdout, logs JSON lines on stderr, and on SIGTERM closes the server and exits.
 */
import { isDriverSkip, type DriverLogger, type GraphDriver, type IpamDriver, type NetworkDriver } from '@berth/plugin-api';
import type { DriverHostSpec } from './host.js';
import { serve, type ServedDrivers } from './server.js';

function stderrLogger(bindings: Record<string, unknown>): DriverLogger {
  const at = (level: string) => (a: object | string, msg?: string) => {
    const fields = typeof a === 'string' ? { msg: a } : { ...a, ...(msg === undefined ? {} : { msg }) };
    process.stderr.write(`${JSON.stringify({ level, time: Date.now(), ...bindings, ...fields })}\n`);
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), trace: () => {}, child: (b) => stderrLogger({ ...bindings, ...b }) };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as DriverHostSpec;
  const logger = stderrLogger({ driverHost: spec.export });
  const mod = (await import(spec.module)) as Record<string, { kind: string; name: string; create(deps: unknown): Promise<unknown> }>;
  const desc = mod[spec.export];
  if (desc === undefined || typeof desc.create !== 'function') throw new Error(`${spec.module} has no descriptor ${spec.export}`);
  const deps = desc.kind === 'graph' ? { root: spec.deps.root ?? spec.deps.stateDir, logger, options: spec.deps.options } : { stateDir: spec.deps.stateDir ?? spec.deps.root, logger, options: spec.deps.options };
  const made = await desc.create(deps);
  if (isDriverSkip(made)) throw new Error(`${desc.name} skipped: ${made.skip}`);
  const drivers: ServedDrivers =
    desc.kind === 'graph' ? { graph: made as GraphDriver } : desc.kind === 'ipam' ? { ipam: made as IpamDriver } : { network: made as NetworkDriver };
  const server = await serve(drivers, spec.socketPath, { logger });
  const stop = async (): Promise<void> => {
    await server.close();
    if (drivers.graph !== undefined) await drivers.graph.cleanup();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  process.stdout.write(`${JSON.stringify({ implements: server.implements })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
