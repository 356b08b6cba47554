/**
 * A berthd on a scratch data root, exec root and socket, for end-to-end and interop tests:
 * many can run at once, and `stop()` leaves nothing behind but what the test left running.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import * as path from 'node:path';
import { BerthError } from '@berth/errors';
import { makeTempDir, repoRoot, uniqueSuffix } from './paths.js';

export interface DaemonOptions {
  /** Extra berthd arguments. */
  args?: string[];
  /** Reuse a data root (a restart test); default: a fresh temp dir. */
  dataRoot?: string;
  /** Reuse an exec root; default: a fresh dir under /run. */
  execRoot?: string;
  logLevel?: string;
  /** How long to wait for the socket to answer /_ping. */
  readyTimeoutMs?: number;
  /** false: `--bridge none` (no CNM networking; bridge mode is a private netns with lo). */
  network?: boolean;
  /** Reuse a daemon's network identity (a restart test). */
  net?: DaemonNet;
}

/**
 * What keeps concurrent test daemons' networks apart: the default bridge's name and subnet, and
 * the prefix of their iptables chains (BERTH_IPTABLES_CHAIN_PREFIX).
 */
export interface DaemonNet {
  bridge: string;
  bip: string;
  chainPrefix: string;
}

export function uniqueNet(): DaemonNet {
  const tag = randomBytes(3).toString('hex');
  const b = randomBytes(2);
  return { bridge: `bt${tag}`, bip: `10.${200 + (b[0]! % 40)}.${b[1]}.1/24`, chainPrefix: `BT${tag.toUpperCase()}` };
}

export interface Daemon {
  dataRoot: string;
  execRoot: string;
  socket: string;
  /** `unix://<socket>`, for BERTH_HOST / DOCKER_HOST. */
  host: string;
  /** Its network identity; undefined with `network: false`. */
  net: DaemonNet | undefined;
  process: ChildProcess;
  /** What berthd wrote to stdout and stderr so far (its pino log). */
  output(): string;
  /** SIGTERM and wait; containers keep running (live restore). */
  stop(): Promise<void>;
  /** SIGKILL and wait: a crash. */
  kill(): Promise<void>;
  /** Removes the data and exec roots (after stop; containers must be gone). */
  cleanup(): Promise<void>;
}

/** The berthd launcher in this tree. */
export function berthdPath(): string {
  return path.join(repoRoot(), 'apps/berthd/bin/berthd');
}

/** The berth CLI launcher in this tree. */
export function berthCliPath(): string {
  return path.join(repoRoot(), 'apps/berth/bin/berth');
}

/** GET /_ping over a unix socket: true when it answers 200. */
/** The status of a GET on a daemon's socket, or 0 when it does not answer in time. */
function getStatus(socket: string, path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path, method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
    req.end();
  });
}

export async function ping(socket: string): Promise<boolean> {
  return (await getStatus(socket, '/_ping', 1000)) === 200;
}

/** The reference dockerd (20.10) a developer's host may run beside berthd, for side-by-side tests. */
export const REFERENCE_DOCKERD_SOCKET = '/run/docker-ref.sock';

/**
 * Whether the reference dockerd answers on its socket and holds `image`. A socket file alone
 * proves nothing (a stopped dockerd leaves it behind), so tests that compare with dockerd ask
 * this and skip that part where it is false, as on CI.
 */
export async function referenceDockerd(image = 'busybox:latest'): Promise<boolean> {
  return (await ping(REFERENCE_DOCKERD_SOCKET)) && (await getStatus(REFERENCE_DOCKERD_SOCKET, `/images/${encodeURIComponent(image)}/json`, 5000)) === 200;
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  if (!existsSync(berthdPath())) throw new BerthError('BERTH_FIXTURE_UNAVAILABLE', `berthd is not built: ${berthdPath()} is missing`);
  const dataRoot = opts.dataRoot ?? (await makeTempDir('berthd-data')).path;
  const execRoot = opts.execRoot ?? `/run/berth-test-${process.pid}-${uniqueSuffix()}`;
  await mkdir(execRoot, { recursive: true });
  const socket = path.join(execRoot, 'berth.sock');
  const net = opts.network === false ? undefined : (opts.net ?? uniqueNet());
  try {
    return await launch({ ...opts, dataRoot, execRoot }, socket, net);
  } catch (err) {
    // A daemon that never answered leaves nothing of this call behind.
    if (net) await removeDaemonNet(net);
    if (!opts.dataRoot) await rm(dataRoot, { recursive: true, force: true });
    if (!opts.execRoot) await rm(execRoot, { recursive: true, force: true });
    throw err;
  }
}

async function launch(opts: DaemonOptions & { dataRoot: string; execRoot: string }, socket: string, net: DaemonNet | undefined): Promise<Daemon> {
  const args = [
    '--data-root', opts.dataRoot,
    '--exec-root', opts.execRoot,
    '--host', `unix://${socket}`,
    '--pidfile', path.join(opts.execRoot, 'berthd.pid'),
    '--config-file', path.join(opts.execRoot, 'no-daemon.json'),
    '--log-level', opts.logLevel ?? 'info',
    ...(net ? ['--bridge', net.bridge, '--bip', net.bip] : ['--bridge', 'none']),
    ...(opts.args ?? []),
  ];
  const env = net ? { ...process.env, BERTH_IPTABLES_CHAIN_PREFIX: net.chainPrefix } : process.env;
  const child = spawn(berthdPath(), args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  while (!(await ping(socket))) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new BerthError('BERTH_INTERNAL', `berthd exited with ${child.exitCode ?? child.signalCode} before it answered:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new BerthError('BERTH_INTERNAL', `berthd did not answer /_ping on ${socket} in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const wait = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    dataRoot: opts.dataRoot,
    execRoot: opts.execRoot,
    socket,
    host: `unix://${socket}`,
    net,
    process: child,
    output: () => out,
    stop: () => wait('SIGTERM'),
    kill: () => wait('SIGKILL'),
    cleanup: async () => {
      // Containers outlive berthd (live restore): remove them while it still answers, then make
      // sure nothing of this daemon's is left running, whatever the test did.
      await removeAllContainers(socket).catch(() => undefined);
      if (net) await removeUserNetworks(socket).catch(() => undefined);
      await wait('SIGTERM');
      if (net) await removeDaemonNet(net);
      await new Promise<void>((resolve) => execFile('pkill', ['-KILL', '-f', opts.execRoot], () => resolve()));
      // A daemon that was killed (a crash test) leaves its mounts; a clean stop leaves none.
      await unmountUnder([opts.dataRoot, opts.execRoot]);
      await rm(opts.dataRoot, { recursive: true, force: true });
      await rm(opts.execRoot, { recursive: true, force: true });
    },
  };
}

function apiCall(socket: string, method: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.end();
  });
}

/** DELETE ?force=1 of every container the daemon knows. */
async function removeAllContainers(socket: string): Promise<void> {
  const list = JSON.parse(await apiCall(socket, 'GET', '/containers/json?all=1')) as { Id: string }[];
  for (const c of list) await apiCall(socket, 'DELETE', `/containers/${c.Id}?force=1`).catch(() => undefined);
}

/** DELETE of every network the daemon made on request (the predefined ones refuse). */
async function removeUserNetworks(socket: string): Promise<void> {
  const list = JSON.parse(await apiCall(socket, 'GET', '/networks')) as { Id: string; Name: string }[];
  for (const n of list) if (!['bridge', 'host', 'none'].includes(n.Name)) await apiCall(socket, 'DELETE', `/networks/${n.Id}`).catch(() => undefined);
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile(cmd, args, (_err, stdout) => resolve(String(stdout ?? ''))));
}

/** The daemon's default bridge and its iptables chains (jumps into them first, then the chains). */
export async function removeDaemonNet(net: DaemonNet): Promise<void> {
  await run('ip', ['link', 'del', net.bridge]);
  for (const table of ['nat', 'filter']) {
    const rules = (await run('iptables', ['-w', '-t', table, '-S'])).split('\n');
    for (const r of rules) {
      if (!r.startsWith('-A ') || !r.includes(net.chainPrefix)) continue;
      const chain = r.split(' ')[1]!;
      if (chain.startsWith(net.chainPrefix)) continue;
      await run('iptables', ['-w', '-t', table, '-D', ...r.slice(3).split(' ')]);
    }
    for (const r of rules) {
      const m = /^-N (\S+)$/.exec(r);
      if (m && m[1]!.startsWith(net.chainPrefix)) await run('iptables', ['-w', '-t', table, '-F', m[1]!]);
    }
    for (const r of rules) {
      const m = /^-N (\S+)$/.exec(r);
      if (m && m[1]!.startsWith(net.chainPrefix)) await run('iptables', ['-w', '-t', table, '-X', m[1]!]);
    }
  }
}

/** Detaches every mount at or below the given directories, deepest first. */
async function unmountUnder(dirs: string[]): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => mp !== undefined && dirs.some((d) => mp === d || mp.startsWith(`${d}/`)))
    .sort((a, b) => b.length - a.length);
  for (const mp of points) await new Promise<void>((resolve) => execFile('umount', ['-l', mp], () => resolve()));
}

/** Starts berthd again on the same roots (a restart test). */
export function restartDaemon(previous: Daemon, opts: DaemonOptions = {}): Promise<Daemon> {
  return launch({ ...opts, dataRoot: previous.dataRoot, execRoot: previous.execRoot }, previous.socket, previous.net);
}
