import { createRequire } from 'node:module';
import type { LoggerOptions, DestinationStream } from 'pino';

/**
 * The logging surface every package codes against: pino's Logger fits it, and so do the two
 * light loggers below, which do not load pino (about 20 ms of a CLI start, bench/runtime).
 */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}
export interface Logger {
  level: string;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

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
const levelValues: Readonly<Record<Level, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

type Pino = typeof import('pino');
let pinoModule: Pino | undefined;
function loadPino(): Pino {
  // Loaded on first use: commands that never log through pino never pay for it.
  pinoModule ??= createRequire(import.meta.url)('pino') as Pino;
  return pinoModule;
}

export function rootLoggerOptions(level: Level = 'info'): LoggerOptions {
  const { pino } = loadPino();
  return {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
  };
}

/** The daemon's root logger (pino); JSON lines to the given stream (stderr by default). */
export function createRootLogger(level: Level = 'info', stream?: DestinationStream): Logger {
  const { pino } = loadPino();
  return pino(rootLoggerOptions(level), stream ?? pino.destination({ fd: 2, sync: true }));
}

export function componentLogger(root: Logger, component: Component, bindings: Bindings = {}): Logger {
  return root.child({ component, ...bindings });
}

function serialize(v: unknown): unknown {
  if (v instanceof Error) return { type: v.name, message: v.message, stack: v.stack, ...(v.cause ? { cause: serialize(v.cause) } : {}) };
  return v;
}

class LightLogger implements Logger {
  constructor(
    readonly level: Level,
    private readonly bindings: Record<string, unknown>,
    private readonly write: (line: string) => void,
  ) {}

  private log(level: Level, a: object | string, msg?: string): void {
    if (levelValues[level] < levelValues[this.level]) return;
    const fields = typeof a === 'string' ? { msg: a } : { ...Object.fromEntries(Object.entries(a).map(([k, v]) => [k, serialize(v)])), ...(msg ? { msg } : {}) };
    this.write(JSON.stringify({ level, time: new Date().toISOString(), pid: process.pid, ...this.bindings, ...fields }) + '\n');
  }

  fatal: LogFn = (a: object | string, msg?: string) => this.log('fatal', a, msg);
  error: LogFn = (a: object | string, msg?: string) => this.log('error', a, msg);
  warn: LogFn = (a: object | string, msg?: string) => this.log('warn', a, msg);
  info: LogFn = (a: object | string, msg?: string) => this.log('info', a, msg);
  debug: LogFn = (a: object | string, msg?: string) => this.log('debug', a, msg);
  trace: LogFn = (a: object | string, msg?: string) => this.log('trace', a, msg);

  child(bindings: Record<string, unknown>): Logger {
    return new LightLogger(this.level, { ...this.bindings, ...bindings }, this.write);
  }
}

/**
 * A logger for short-lived commands: the same JSON lines as pino's root logger, written
 * synchronously to stderr, without loading pino.
 */
export function createCliLogger(level: Level = 'warn', write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return new LightLogger(level, {}, write);
}

/** A logger that writes nothing, for tests and for callers that pass none. */
export function silentLogger(): Logger {
  return createCliLogger('silent', () => {});
}
