/**
 * The built-in OCI runtime: create/start/state/kill/delete/run/exec on bundles, with runc's
 * semantics. Used by the berth-runtime CLI and, in-process, by the engine.
 */
import { chmodSync, closeSync, existsSync, openSync, readFileSync, readdirSync, readSync, unlinkSync, constants as fsc, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { BerthError } from '@berth/errors';
import type { Logger } from '@berth/log';
import { S_IFIFO, encodePlan, nativePaths, type NativePaths, type OciSeccomp, type Syscalls } from '@berth/native';
import { loadSpec, type OciProcess, type OciSpec } from './spec.js';
import { buildCreatePlan, buildExecPlan, type CgroupMountSource } from './plan-builder.js';
import { launch, type ContainerIo, type ShimProcess } from './launch.js';
import { ShimClient } from './shim-client.js';
import { StateStore, validateId, writeAtomic, type ContainerRecord } from './state-store.js';
import { isAlive, processStartTime, waitGone } from './proc.js';
import { parseSignal } from './signals.js';
import { containerDeviceRules, type DeviceRule } from './device-rules.js';
import { SeccompCache } from './seccomp/cache.js';
import { socketPath } from './socket-path.js';
import { SealedInit } from './sealed-init.js';

export type ContainerStatus = 'creating' | 'created' | 'running' | 'stopped' | 'paused';

/** The OCI state document (`runtime state`), with runc's extra fields. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: ContainerStatus;
  pid: number;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

/** What the runtime needs of the cgroups library (the adapter lives in cgroup-binding.ts). */
export interface RuntimeCgroups {
  /** Creates the group and applies the limits; returns the files the init joins and the mounts it shows. */
  setup(path: string, resources: Record<string, unknown>): Promise<{ procsFiles: string[]; mounts: CgroupMountSource[] }>;
  procsFiles(path: string): string[];
  pids(path: string): Promise<number[]>;
  /** Kills what is left and removes the group everywhere; a missing group is fine. */
  destroy(path: string): Promise<void>;
  isFrozen(path: string): boolean;
  /**
   * Optional: starts, in the background, what makes the next move of a process into a cgroup
   * fast (see cgroup-binding.ts). Never fails.
   */
  prime?(): void;
}

export interface RuntimeOptions {
  /** State directory (runc's --root). */
  root: string;
  cgroups: RuntimeCgroups;
  /** The addon is loaded only when a container needs it (seccomp, fifos). */
  syscalls: () => Syscalls;
  logger: Logger;
  paths?: NativePaths;
  /**
   * Keep one sealed copy of berth-init for every start (default true): saves the shim a copy
   * per start (~0.3 ms). A process that starts one container (a CLI) gains nothing from it.
   */
  keepSealedInit?: boolean;
}

type Stdio = ['inherit' | 'ignore' | number, 'inherit' | 'ignore' | number, 'inherit' | 'ignore' | number];

export interface CreateOptions {
  consoleSocket?: string | undefined;
  pidFile?: string | undefined;
  stdio?: Stdio;
  /**
   * The shim is detached and owns the container's stdio (pipes or a pty), writes the log and
   * serves attach on io.socket; stdio and consoleSocket are then ignored (with a tty the
   * console socket is the runtime's own, in the container's state dir).
   */
  io?: ContainerIo | undefined;
  /** PID 1 is a small reaper that runs the process as its child (Docker's --init). */
  reaper?: boolean | undefined;
}

/** An exec process started by execProcess. */
export interface ExecStarted {
  pid: number;
  exitFile: string;
}

export interface RunOptions extends CreateOptions {
  detach?: boolean;
  /** Called with the shim once the container runs, to forward signals. */
  onStarted?: (forward: (signal: NodeJS.Signals) => void) => void;
  /** Keep the container's record after it exits (runc run removes it). */
  keep?: boolean;
}

const OCI_VERSION = '1.0.2';
/** In the state dir: where the io-created container's shim listens. */
const SHIM_RECORD = 'shim.json';

/**
 * Lets a shim finish: an attach without streams ends any --hold, then waits until the shim
 * has closed the connection and removed its socket (it writes the exit file before).
 */
async function releaseShim(socket: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  try {
    const s = await ShimClient.attach(socket, { stdin: false, stdout: false, stderr: false });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => resolve(), timeoutMs);
      s.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
      s.on('error', () => undefined);
      s.resume();
    });
    s.destroy();
  } catch (err) {
    // No shim: a stale socket file of a killed shim is ours to remove.
    if (err instanceof BerthError && err.code === 'BERTH_SHIM_NOT_FOUND') rmSync(socket, { force: true });
    return;
  }
  while (existsSync(socket) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

/** How often start checks that an init which has not opened the start fifo yet is still alive. */
const START_LIVENESS_MS = 20;

/**
 * Opening the start fifo for reading releases berth-init (blocked opening it for writing); it
 * writes one byte, then execs. Waits for that byte without polling: the fifo is watched by the
 * event loop (a pipe handle), so start returns as soon as the init has written. The end of the
 * fifo without the byte, or the init gone before it opened the fifo, is a failed start. Takes
 * fd (opened O_RDONLY|O_NONBLOCK) and closes it.
 */
export function readStartByte(fd: number, alive: () => boolean, died: () => Error): Promise<void> {
  const byte = Buffer.alloc(1);
  try {
    if (readSync(fd, byte, 0, 1, null) === 1) {
      closeSync(fd);
      return Promise.resolve();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
      closeSync(fd);
      return Promise.reject(err);
    }
  }
  return new Promise<void>((resolve, reject) => {
    const pipe = new Socket({ fd, readable: true, writable: false });
    const finish = (err: Error | null): void => {
      clearInterval(timer);
      pipe.removeAllListeners();
      pipe.on('error', () => undefined);
      pipe.destroy();
      if (err) reject(err);
      else resolve();
    };
    pipe.once('data', () => finish(null));
    pipe.once('end', () => finish(died()));
    pipe.once('error', (err) => finish(err));
    const timer = setInterval(() => {
      if (!alive()) finish(died());
    }, START_LIVENESS_MS);
  });
}

export class Runtime {
  readonly store: StateStore;
  private readonly paths: NativePaths;
  /** Compiled seccomp programs by profile hash: compiling Docker's profile takes ~15 ms. */
  private seccompCache: SeccompCache | undefined;

  /** The kept copy of berth-init (sealed-init.ts), null when not kept. */
  readonly sealedInit: SealedInit | null;

  constructor(private readonly opts: RuntimeOptions) {
    this.store = new StateStore(opts.root);
    this.paths = opts.paths ?? nativePaths();
    this.sealedInit = opts.keepSealedInit === false ? null : new SealedInit(this.paths);
  }

  /** The BPF program of a seccomp profile, compiled once per distinct profile. */
  compileSeccomp(profile: OciSeccomp): Buffer {
    this.seccompCache ??= new SeccompCache(this.opts.syscalls(), { maxEntries: 16 });
    return this.seccompCache.bpf(profile);
  }

  /** Lets the cgroups get ready for the next container's move (a hint; see RuntimeCgroups.prime). */
  primeCgroups(): void {
    this.opts.cgroups.prime?.();
  }

  async create(id: string, bundle: string, options: CreateOptions = {}): Promise<ContainerRecord> {
    return this.createWith(id, bundle, options, { fifo: true, detach: true });
  }

  private async createWith(
    id: string,
    bundle: string,
    options: CreateOptions,
    how: { fifo: boolean; detach: boolean },
  ): Promise<ContainerRecord & { shim: ShimProcess | null }> {
    const log = this.opts.logger.child({ containerId: id });
    this.primeCgroups();
    this.store.claim(id);
    const undo: (() => Promise<void> | void)[] = [() => this.store.remove(id)];
    try {
      const spec = loadSpec(bundle);
      const cgroupPath = spec.linux?.cgroupsPath ?? `berth/${id}`;
      const resources = { ...(spec.linux?.resources ?? {}) };
      resources.devices = containerDeviceRules(resources.devices as DeviceRule[] | undefined, spec.linux?.devices);
      const cg = await this.opts.cgroups.setup(cgroupPath, resources);
      undo.push(() => this.opts.cgroups.destroy(cgroupPath));
      const startFifo = how.fifo ? this.store.file(id, 'exec.fifo') : null;
      if (startFifo) this.makeFifo(startFifo);
      const seccomp = spec.linux?.seccomp ? this.compileSeccomp(spec.linux.seccomp) : null;
      const pidFile = this.store.file(id, 'init.pid');
      const io = options.io;
      const consoleSocket = io ? (io.tty ? socketPath(join(this.store.dir(id), 'console.sock')) : null) : options.consoleSocket ?? null;
      const planSpec: OciSpec = io ? { ...spec, process: { ...spec.process!, terminal: io.tty } } : spec;
      if (io) writeAtomic(join(this.store.dir(id), SHIM_RECORD), JSON.stringify({ socket: io.socket }));
      const plan = buildCreatePlan(planSpec, {
        bundle, pidFile, cgroupProcs: cg.procsFiles, cgroupMounts: cg.mounts, seccomp,
        consoleSocket, startFifo, reaper: options.reaper === true,
      });
      const launched = await launch({
        paths: this.paths, initFd: this.sealedInit?.current() ?? null, plan: encodePlan(plan), pidFile, exitFile: this.store.file(id, 'exit'),
        detach: how.detach || io !== undefined, stdio: options.stdio ?? ['inherit', 'inherit', 'inherit'], untilReady: how.fifo,
        ...(io ? { io: { ...io, ...(consoleSocket ? { consoleSocket } : {}) } } : {}),
      }).catch((err: unknown) => {
        const pid = (err as BerthError).details?.pid;
        if (typeof pid === 'number' && pid > 0) undo.push(() => this.killAndWait(pid));
        throw err;
      });
      const startTime = processStartTime(launched.pid) ?? '';
      undo.push(() => this.killAndWait(launched.pid));
      const rec: ContainerRecord = {
        id, pid: launched.pid, startTime, bundle, rootfs: plan.rootfs ?? '', created: new Date().toISOString(),
        annotations: spec.annotations ?? {}, cgroupPath, owner: userInfo().username,
      };
      this.store.save(rec);
      if (options.pidFile) writeAtomic(options.pidFile, String(launched.pid));
      log.debug({ pid: launched.pid }, 'container created');
      return { ...rec, shim: launched.shim };
    } catch (err) {
      for (const step of undo.reverse()) {
        try {
          await step();
        } catch (undoErr) {
          log.warn({ err: undoErr }, 'rollback step failed');
        }
      }
      throw err;
    }
  }

  private makeFifo(path: string): void {
    this.opts.syscalls().mknod(path, S_IFIFO | 0o622, 0, 0);
    // mknod honours the umask; a container user other than root must be able to open it for writing.
    chmodSync(path, 0o622);
  }

  status(rec: ContainerRecord): ContainerStatus {
    if (this.store.exitCode(rec.id) !== null || !isAlive(rec.pid, rec.startTime)) return 'stopped';
    if (this.store.fifoExists(rec.id)) return 'created';
    if (this.opts.cgroups.isFrozen(rec.cgroupPath)) return 'paused';
    return 'running';
  }

  state(id: string): OciState {
    const rec = this.store.load(id);
    const status = this.status(rec);
    return {
      ociVersion: OCI_VERSION, id, status, pid: status === 'stopped' ? 0 : rec.pid, bundle: rec.bundle,
      rootfs: rec.rootfs, created: rec.created, owner: rec.owner, annotations: rec.annotations,
    };
  }

  list(): OciState[] {
    return this.store.ids().flatMap((id) => {
      try {
        return [this.state(id)];
      } catch {
        return [];
      }
    });
  }

  async start(id: string): Promise<void> {
    const rec = this.store.load(id);
    const status = this.status(rec);
    if (status !== 'created')
      throw new BerthError('BERTH_CONTAINER_STATE', `cannot start container "${id}": it is ${status}, not created`, { details: { id, status } });
    const fifo = this.store.file(id, 'exec.fifo');
    const fd = openSync(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK);
    await readStartByte(fd, () => isAlive(rec.pid, rec.startTime), () =>
      new BerthError('BERTH_CONTAINER_START_FAILED', `container "${id}" init died before it could start`));
    unlinkSync(fifo);
  }

  kill(id: string, signal: string | number = 'SIGTERM', all = false): Promise<void> | void {
    const sig = parseSignal(signal);
    const rec = this.store.load(id);
    const status = this.status(rec);
    if (status === 'stopped') throw new BerthError('BERTH_CONTAINER_STATE', `container "${id}" is not running`, { details: { id, status } });
    if (!all) {
      process.kill(rec.pid, sig);
      return;
    }
    return this.opts.cgroups.pids(rec.cgroupPath).then((pids) => {
      for (const pid of pids) {
        try {
          process.kill(pid, sig);
        } catch {
          // Gone meanwhile.
        }
      }
    });
  }

  async delete(id: string, force = false): Promise<void> {
    const rec = this.store.load(id);
    const status = this.status(rec);
    if ((status === 'running' || status === 'paused') && !force)
      throw new BerthError('BERTH_CONTAINER_STATE', `cannot delete container "${id}": it is ${status} (use --force)`, { details: { id, status } });
    if (status !== 'stopped') await this.killAndWait(rec.pid, rec.startTime);
    // The shims write their exit files into the state dir: let them finish before it goes.
    for (const socket of this.shimSockets(id)) await releaseShim(socket);
    await this.opts.cgroups.destroy(rec.cgroupPath);
    this.store.remove(id);
  }

  /** Where the shim of an io-created container records the exit status. */
  exitFile(id: string): string {
    validateId(id);
    return this.store.file(id, 'exit');
  }

  /** Control sockets of the container's shim and of its exec shims, from the state dir. */
  private shimSockets(id: string): string[] {
    const dir = this.store.dir(id);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    const out: string[] = [];
    for (const name of names) {
      if (name !== SHIM_RECORD && !(name.startsWith('exec-') && name.endsWith('.json'))) continue;
      try {
        const socket = (JSON.parse(readFileSync(join(dir, name), 'utf8')) as { socket?: unknown }).socket;
        if (typeof socket === 'string') out.push(socket);
      } catch {
        // A record half written by a crash: nothing to release.
      }
    }
    return out;
  }

  /**
   * Starts a process in a running container under its own detached shim, which owns its stdio
   * per io (usually with hold, so nothing is lost before the attach). Resolves once the process
   * runs; rejects with the init's failure (exitCode 127/126 in details for exec errors).
   */
  async execProcess(id: string, execId: string, proc: OciProcess, io: ContainerIo): Promise<ExecStarted> {
    validateId(execId);
    const rec = this.store.load(id);
    const status = this.status(rec);
    if (status !== 'running') throw new BerthError('BERTH_CONTAINER_STATE', `cannot exec in container "${id}": it is ${status}`, { details: { id, status } });
    const dir = this.store.dir(id);
    const file = (ext: string): string => join(dir, `exec-${execId}.${ext}`);
    const record = file('json');
    if (existsSync(record))
      throw new BerthError('BERTH_INVALID_ARGUMENT', `exec id "${execId}" is in use in container "${id}"`, { details: { id, execId } });
    const pidFile = file('pid');
    const exitFile = file('exit');
    const consoleSocket = io.tty ? socketPath(file('console')) : null;
    const base = loadSpec(rec.bundle);
    const spec: OciSpec = { ...base, process: { ...proc, terminal: io.tty } };
    const seccomp = spec.linux?.seccomp ? this.compileSeccomp(spec.linux.seccomp) : null;
    const plan = buildExecPlan(spec, rec.pid, {
      seccomp, consoleSocket, pidFile, cgroupProcs: this.opts.cgroups.procsFiles(rec.cgroupPath), rootfs: rec.rootfs,
    });
    writeAtomic(record, JSON.stringify({ socket: io.socket }));
    try {
      const launched = await launch({
        paths: this.paths, initFd: this.sealedInit?.current() ?? null, plan: encodePlan(plan), pidFile, exitFile, detach: true,
        stdio: ['ignore', 'ignore', 'ignore'], untilReady: false,
        io: { ...io, ...(consoleSocket ? { consoleSocket } : {}) },
      });
      this.opts.logger.debug({ containerId: id, execId, pid: launched.pid }, 'exec started');
      return { pid: launched.pid, exitFile };
    } catch (err) {
      await releaseShim(io.socket);
      for (const ext of ['pid', 'exit', 'json', 'console']) rmSync(file(ext), { force: true });
      if (consoleSocket) rmSync(consoleSocket, { force: true });
      throw err;
    }
  }

  private async killAndWait(pid: number, startTime?: string): Promise<void> {
    const st = startTime ?? processStartTime(pid);
    if (st === null || !isAlive(pid, st)) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    if (!(await waitGone(pid, st, 10_000))) throw new BerthError('BERTH_INTERNAL', `process ${pid} did not die after SIGKILL`);
  }

  /** create + start in one go; in the foreground, resolves with the container's exit status. */
  async run(id: string, bundle: string, options: RunOptions = {}): Promise<number> {
    const rec = await this.createWith(id, bundle, options, { fifo: false, detach: options.detach === true });
    if (options.detach) return 0;
    if (options.io) {
      // The shim is detached whenever it owns the stdio: its socket tells the exit.
      options.onStarted?.((signal) => process.kill(rec.pid, signal));
      const code = await ShimClient.wait(options.io.socket, this.exitFile(id));
      if (!options.keep) await this.delete(id, true);
      return code;
    }
    const shim = rec.shim!;
    options.onStarted?.((signal) => shim.kill(signal));
    const code = await shim.exited;
    if (!options.keep) await this.delete(id, true);
    return code;
  }

  /** Runs a process in a running container; resolves with its exit status. */
  async exec(id: string, proc: OciProcess, options: RunOptions = {}): Promise<number> {
    const rec = this.store.load(id);
    const status = this.status(rec);
    if (status !== 'running') throw new BerthError('BERTH_CONTAINER_STATE', `cannot exec in container "${id}": it is ${status}`, { details: { id, status } });
    const base = loadSpec(rec.bundle);
    const spec: OciSpec = { ...base, process: proc };
    const seccomp = spec.linux?.seccomp ? this.compileSeccomp(spec.linux.seccomp) : null;
    const tag = `exec-${process.pid}-${Date.now()}`;
    const pidFile = `${this.store.dir(id)}/${tag}.pid`;
    const exitFile = `${this.store.dir(id)}/${tag}.exit`;
    const plan = buildExecPlan(spec, rec.pid, {
      seccomp, consoleSocket: options.consoleSocket ?? null, pidFile, cgroupProcs: this.opts.cgroups.procsFiles(rec.cgroupPath), rootfs: rec.rootfs,
    });
    try {
      const launched = await launch({
        paths: this.paths, initFd: this.sealedInit?.current() ?? null, plan: encodePlan(plan), pidFile, exitFile, detach: options.detach === true,
        stdio: options.stdio ?? ['inherit', 'inherit', 'inherit'], untilReady: false,
      });
      if (options.pidFile) writeAtomic(options.pidFile, String(launched.pid));
      if (options.detach) return 0;
      const shim = launched.shim!;
      options.onStarted?.((signal) => shim.kill(signal));
      return await shim.exited;
    } finally {
      if (!options.detach) {
        rmSync(pidFile, { force: true });
        rmSync(exitFile, { force: true });
      }
    }
  }
}
