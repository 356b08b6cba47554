/** Exec: records (in memory), create, start with its session, resize, inspect. */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecCreateBody, ExecInspect, ExecStartBody } from '@berth/api';
import { BerthError } from '@berth/errors';
import { ShimClient, type OciProcess, type OciSpec } from '@berth/runtime';
import { invalid } from './config.js';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import type { StreamSession } from './contract.js';
import { parseDetachKeys } from './detach.js';
import { newId } from './names.js';
import { watchShim, type ShimWatch } from './shim-watch.js';
import { userOf } from './start.js';
import { frameErr, joinShim, type Streams } from './streams.js';

export interface ExecRec {
  id: string;
  containerId: string;
  cmd: string[];
  user: string;
  privileged: boolean;
  tty: boolean;
  env: string[];
  workingDir: string;
  attachStdin: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  detachKeys: string | null;
  consoleSize: [number, number] | null;
  running: boolean;
  started: boolean;
  exitCode: number | null;
  pid: number;
  socket: string;
  exitFile: string;
  watch: ShimWatch | null;
}

export async function createExec(ctx: EngineContext, ref: string, body: ExecCreateBody): Promise<{ Id: string }> {
  const c = ctx.get(ref);
  const cmd = Array.isArray(body.Cmd) ? body.Cmd : typeof body.Cmd === 'string' ? [body.Cmd] : [];
  if (cmd.length === 0) throw invalid('Cmd', 'No exec command specified');
  if (!c.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `container ${c.id} is not running`);
  if (c.rec.State.Paused) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${ref} is paused, unpause the container before exec`);
  if (body.WorkingDir && !body.WorkingDir.startsWith('/')) throw invalid('WorkingDir', `the working directory '${body.WorkingDir}' is invalid, it needs to be an absolute path`);
  const detachKeys = body.DetachKeys ? body.DetachKeys : null;
  if (detachKeys) parseDetachKeys(detachKeys);
  const id = newId();
  const e: ExecRec = {
    id, containerId: c.id, cmd, user: body.User ?? '', privileged: body.Privileged === true, tty: body.Tty === true,
    env: Array.isArray(body.Env) ? body.Env : [], workingDir: body.WorkingDir ?? '', attachStdin: body.AttachStdin === true,
    attachStdout: body.AttachStdout === true, attachStderr: body.AttachStderr === true, detachKeys,
    consoleSize: Array.isArray(body.ConsoleSize) ? body.ConsoleSize : null, running: false, started: false, exitCode: null, pid: 0,
    socket: ctx.socketOf(id), exitFile: '', watch: null,
  };
  ctx.execs.set(id, e);
  c.execs.add(id);
  ctx.emit(c, `exec_create: ${cmd.join(' ')}`, { execID: id });
  return { Id: id };
}

function getExec(ctx: EngineContext, id: string): ExecRec {
  const e = ctx.execs.get(id);
  if (!e) throw new BerthError('BERTH_EXEC_NOT_FOUND', `No such exec instance: ${id}`, { details: { id } });
  return e;
}

export function execProcess(ctx: EngineContext, c: Ctr, e: ExecRec, tty: boolean): OciProcess {
  const base = c.spec?.process ?? loadBundleSpec(ctx.bundleOf(c.id))?.process;
  if (!base) throw new BerthError('BERTH_INTERNAL', `container ${c.id} has no spec to exec in`);
  const env = [...(base.env ?? [])];
  for (const kv of e.env) {
    const k = kv.includes('=') ? kv.slice(0, kv.indexOf('=')) : kv;
    const i = env.findIndex((x) => x.startsWith(`${k}=`));
    if (i >= 0) env[i] = kv;
    else env.push(kv);
  }
  let user = base.user;
  if (e.user) {
    const rootfs = c.spec?.root?.path ?? loadBundleSpec(ctx.bundleOf(c.id))?.root?.path ?? '/';
    user = userOf(rootfs, e.user, []);
  }
  const all = ctx.availableCaps;
  const caps = e.privileged ? { bounding: all, effective: all, permitted: all, inheritable: [], ambient: [] } : base.capabilities;
  const proc: OciProcess = { ...base, args: e.cmd, env, cwd: e.workingDir || base.cwd, user, terminal: tty };
  if (caps) proc.capabilities = caps;
  if (tty && e.consoleSize && e.consoleSize[0] > 0 && e.consoleSize[1] > 0) proc.consoleSize = { height: e.consoleSize[0], width: e.consoleSize[1] };
  else delete proc.consoleSize;
  return proc;
}

export async function startExec(ctx: EngineContext, id: string, body: ExecStartBody): Promise<StreamSession | null> {
  const e = getExec(ctx, id);
  const c = ctx.containers.get(e.containerId);
  if (!c) throw new BerthError('BERTH_EXEC_NOT_FOUND', `No such exec instance: ${id}`);
  if (e.started) throw new BerthError('BERTH_CONTAINER_STATE', `Error: Exec command ${id} is already running`);
  if (!c.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `container ${c.id} is not running`);
  if (c.rec.State.Paused) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.name} is paused, unpause the container before exec`);
  const detach = body.Detach === true;
  const tty = body.Tty ?? e.tty;
  if (Array.isArray(body.ConsoleSize)) e.consoleSize = body.ConsoleSize;
  e.started = true;
  e.running = true;
  ctx.emit(c, `exec_start: ${e.cmd.join(' ')}`, { execID: id });
  let failure: BerthError | null = null;
  try {
    const proc = execProcess(ctx, c, e, tty);
    rmSync(e.socket, { force: true });
    const started = await ctx.runtime.execProcess(c.id, id, proc, {
      socket: e.socket, tty, stdin: e.attachStdin && !detach, stdinOnce: !tty, hold: !detach,
    });
    e.pid = started.pid;
    e.exitFile = started.exitFile;
    const w = watchShim(e.socket, started.exitFile);
    e.watch = w;
    w.result.then(
      (code) => execExited(ctx, c, e, code),
      () => execExited(ctx, c, e, 255),
    );
  } catch (err) {
    // dockerd: an exec that could not start exits 126, a missing command too (a run's is 127).
    e.running = false;
    e.exitCode = 126;
    ctx.emit(c, 'exec_die', { execID: id, exitCode: '126' });
    failure = err instanceof BerthError ? err : new BerthError('BERTH_INTERNAL', String(err), { cause: err });
    if (detach) throw failure;
  }
  if (detach) return null;
  const keys = parseDetachKeys(e.detachKeys);
  const streams: Streams = { stdin: e.attachStdin, stdout: e.attachStdout, stderr: e.attachStderr, closeStdin: !tty };
  return {
    tty,
    pipe: async (client) => {
      if (failure) {
        const text = `${execFailedText(runtimeReason(failure))}\r\n`;
        client.end(tty ? text : Buffer.concat([frameErr(text)]));
        return;
      }
      try {
        // docker exec asks for the exit code as soon as the stream ends: have it recorded by then.
        const exitKnown = (): Promise<unknown> =>
          Promise.race([e.watch?.result ?? Promise.resolve(), new Promise((r) => setTimeout(r, 2000).unref())]);
        await joinShim(e.socket, client, streams, keys, exitKnown);
      } catch (err) {
        ctx.log.debug({ err, execId: id }, 'exec attach failed');
        if (!client.destroyed) client.end();
      }
    },
  };
}

/** Records an exec's exit: its code, the shim socket gone, and `exec_die`. */
export function execExited(ctx: EngineContext, c: Ctr, e: ExecRec, code: number): void {
  if (!e.running && e.exitCode !== null) return;
  e.watch?.cancel();
  e.watch = null;
  if (e.exitCode === null) e.exitCode = code;
  e.running = false;
  rmSync(e.socket, { force: true });
  if (ctx.containers.has(c.id)) ctx.emit(c, 'exec_die', { execID: e.id, exitCode: String(code) });
}

export async function resizeExec(ctx: EngineContext, id: string, height: number, width: number): Promise<void> {
  const e = getExec(ctx, id);
  if (!e.running) throw new BerthError('BERTH_CONTAINER_STATE', `Exec ${id} is not running`);
  if (e.tty) await ShimClient.resize(e.socket, height, width);
}

export async function inspectExec(ctx: EngineContext, id: string): Promise<ExecInspect> {
  const e = getExec(ctx, id);
  const [entrypoint = '', ...args] = e.cmd;
  return {
    ID: e.id, Running: e.running, ExitCode: e.running || !e.started ? null : e.exitCode,
    ProcessConfig: { tty: e.tty, entrypoint, arguments: args, privileged: e.privileged, user: e.user },
    OpenStdin: e.attachStdin, OpenStderr: e.attachStderr, OpenStdout: e.attachStdout, CanRemove: false, ContainerID: e.containerId,
    DetachKeys: e.detachKeys === null ? null : Buffer.from(parseDetachKeys(e.detachKeys)).toString('base64'), Pid: e.pid,
  };
}

function loadBundleSpec(bundle: string): OciSpec | null {
  try {
    return JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as OciSpec;
  } catch {
    return null;
  }
}

/** Docker's words for an exec the runtime could not start, around the runtime's reason (the docker CLI prints them). */
export function execFailedText(reason: string): string {
  return `OCI runtime exec failed: exec failed: unable to start container process: ${reason}: unknown`;
}

/** strerror's words for the errors a process start meets, as runc quotes them. */
const STRERROR: Record<string, string> = { ENOENT: 'no such file or directory', EACCES: 'permission denied', ENOTDIR: 'not a directory', ELOOP: 'too many levels of symbolic links', EPERM: 'operation not permitted' };

/** The runtime's reason in runc's words where dockerd users know them (a working directory that is not there). */
function runtimeReason(err: BerthError): string {
  const d = err.details as { syscall?: unknown; path?: unknown; code?: unknown } | undefined;
  if (d?.syscall === 'chdir' && typeof d.path === 'string' && typeof d.code === 'string')
    return `chdir to cwd (${JSON.stringify(d.path)}) set in config.json failed: ${STRERROR[d.code] ?? d.code}`;
  return err.message;
}
