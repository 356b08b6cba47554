/**
 * A built-in driver in a process of its own (`berthd --isolate-drivers`): a child node process
 * imports the driver package, makes the driver from its descriptor and serves it on a socket
 * with serve(); the daemon talks to it with connect(). Nothing but the plugin protocol crosses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BerthError } from '@berth/errors';
import type { DriverLogger } from '@berth/plugin-api';

export interface DriverHostSpec {
  /** The package (or file URL) exporting the descriptor, e.g. '@berth/ipam-default'. */
  module: string;
  /** The export holding the descriptor, e.g. 'defaultIpam'. */
  export: string;
  socketPath: string;
  /** The descriptor's deps: stateDir (network, ipam) or root (graph), and options. */
  deps: { stateDir?: string; root?: string; options?: Record<string, string> };
}

export interface DriverHost {
  readonly pid: number;
  readonly socketPath: string;
  readonly implements: readonly string[];
  /** SIGTERM (the child closes its server and, for graph drivers, runs Cleanup), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnDriverHostOptions {
  logger?: DriverLogger;
  /** How long the child may take to serve (default 10 s). */
  startTimeoutMs?: number;
}

const hostMain = fileURLToPath(new URL('./host-main.js', import.meta.url));

/** Starts the child and resolves once it serves (its manifest known), or rejects with its stderr. */
export function spawnDriverHost(spec: DriverHostSpec, opts: SpawnDriverHostOptions = {}): Promise<DriverHost> {
  const child: ChildProcess = spawn(process.execPath, [hostMain, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = opts.logger?.child({ driverHost: spec.export, pid: child.pid });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8192);
    for (const line of chunk.split('\n')) if (line.trim() !== '') log?.debug({ line }, 'driver host');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<DriverHost>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new BerthError('BERTH_PLUGIN', `driver host ${spec.module}#${spec.export}: not serving after ${opts.startTimeoutMs ?? 10_000} ms: ${stderr.trim()}`));
    }, opts.startTimeoutMs ?? 10_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      let ready: { implements: string[] };
      try {
        ready = JSON.parse(out.slice(0, nl)) as { implements: string[] };
      } catch {
        child.kill('SIGKILL');
        reject(new BerthError('BERTH_PLUGIN', `driver host ${spec.module}#${spec.export}: bad ready line ${JSON.stringify(out.slice(0, nl))}`));
        return;
      }
      resolve({
        pid: child.pid!,
        socketPath: spec.socketPath,
        implements: ready.implements,
        stop: async (graceMs = 5_000) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(kill);
        },
      });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new BerthError('BERTH_PLUGIN', `driver host ${spec.module}#${spec.export} exited (${signal ?? code}) before serving: ${stderr.trim()}`));
    });
  });
}
