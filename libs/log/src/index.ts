import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/** Component names: one child logger per component, made once. */
export const Component = {
  Daemon: 'daemon',
  Api: 'api',
  Engine: 'engine',
  Runtime: 'runtime',
  Cgroups: 'cgroups',
  Network: 'network',
  Storage: 'storage',
  Image: 'image',
  Plugin: 'plugin',
  Cli: 'cli',
} as const;
export type Component = (typeof Component)[keyof typeof Component];

/** The binding keys a child logger may carry; nothing else is bound. */
export type Bindings = Partial<
  Record<'reqId' | 'containerId' | 'networkId' | 'endpointId' | 'sandboxId' | 'layerId' | 'driver' | 'plugin', string>
>;

export type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export function rootLoggerOptions(level: Level = 'info'): LoggerOptions {
  return {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
  };
}

/** The root logger; JSON lines to the given stream (stderr by default). */
export function createRootLogger(level: Level = 'info', stream?: DestinationStream): Logger {
  return pino(rootLoggerOptions(level), stream ?? pino.destination({ fd: 2, sync: true }));
}

export function componentLogger(root: Logger, component: Component, bindings: Bindings = {}): Logger {
  return root.child({ component, ...bindings });
}

/** A logger that writes nothing, for tests and for callers that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
