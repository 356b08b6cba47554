/**
 * Healthchecks, as Docker runs them (moby daemon/health.go): Config.Healthcheck merged with the
 * image's, validated at create; while the container runs and is not paused, one timer per
 * container runs the probe in it as an exec (exec_create/exec_start/exec_die events, no entry
 * in ExecIDs, nothing left behind), and State.Health keeps the status, the failing streak and
 * the last five results. A status change is a `health_status: <status>` event.
 */
import { rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { ContainerConfig, ContainerState, HealthConfig } from '@berth/api';
import { BerthError } from '@berth/errors';
import { ShimClient } from '@berth/runtime';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { execFailedText, execProcess, type ExecRec } from './exec.js';
import { newId } from './names.js';
import { watchShim } from './shim-watch.js';
import { nowNanos, parseRfc3339Nano, rfc3339Nano } from './time.js';

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** State.Health, stored in the record with the rest of State. */
export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthResult[];
}

/** Docker's defaults (nanoseconds) and limits. */
export const DEFAULT_INTERVAL_NS = 30_000_000_000;
export const DEFAULT_TIMEOUT_NS = 30_000_000_000;
export const DEFAULT_START_INTERVAL_NS = 5_000_000_000;
export const DEFAULT_RETRIES = 3;
/** containertypes.MinimumDuration: 1ms. */
export const MIN_DURATION_NS = 1_000_000;
export const MAX_LOG_ENTRIES = 5;
export const MAX_OUTPUT_LEN = 4096;
export const HEALTH_FILTER_VALUES = ['starting', 'healthy', 'unhealthy', 'none'];
/** How long past its timeout a killed probe may take to be reported before the monitor moves on. */
const PROBE_GRACE_MS = 10_000;

function invalidHealth(field: string, message: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', message, { details: { field: `Healthcheck.${field}` } });
}

/** Docker's validateHealthCheck, with the same texts (StartInterval as API 1.44+ checks it). */
export function validateHealthcheck(h: HealthConfig | null | undefined): void {
  if (!h) return;
  for (const field of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval'] as const) {
    const v = h[field] ?? 0;
    if (v !== 0 && v < MIN_DURATION_NS) throw invalidHealth(field, `${field} in Healthcheck cannot be less than ${goDuration(MIN_DURATION_NS)}`);
    if (field === 'Timeout' && (h.Retries ?? 0) < 0) throw invalidHealth('Retries', 'Retries in Healthcheck cannot be negative');
  }
}

/** The create body's Healthcheck as stored: null fields dropped, as Go's omitempty shows them. */
export function normaliseHealthcheck(h: HealthConfig | null | undefined): HealthConfig | undefined {
  if (!h || typeof h !== 'object') return undefined;
  const out: HealthConfig = {};
  if (Array.isArray(h.Test) && h.Test.length) out.Test = [...h.Test];
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
    const v = h[k];
    if (typeof v === 'number' && v !== 0) out[k] = v;
  }
  return out;
}

/** Docker's merge (daemon/commit.go): the container's fields win, each unset one comes from the image. */
export function mergeHealthcheck(user: HealthConfig | undefined, image: HealthConfig | null | undefined): HealthConfig | undefined {
  if (!image) return user;
  if (!user) return normaliseHealthcheck(image);
  const out: HealthConfig = { ...user };
  if (!out.Test?.length && image.Test?.length) out.Test = [...image.Test];
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
    if (!out[k] && image[k]) out[k] = image[k];
  }
  return out;
}

/** The probe's argv, or null where there is none (no Test, ["NONE"], an unknown kind): no State.Health then. */
export function probeCommand(cfg: ContainerConfig): string[] | null {
  const test = cfg.Healthcheck?.Test;
  if (!test?.length) return null;
  if (test[0] === 'CMD') return test.length > 1 ? test.slice(1) : null;
  if (test[0] === 'CMD-SHELL') return [...(cfg.Shell?.length ? cfg.Shell : ['/bin/sh', '-c']), ...test.slice(1)];
  return null;
}

const nsOr = (v: number | undefined, dflt: number): number => (typeof v === 'number' && v > 0 ? v : dflt);

/** Go's time.Duration.String() for whole nanoseconds. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let n = Math.abs(Math.round(ns));
  const sign = neg ? '-' : '';
  const frac = (v: number, digits: number): string => {
    const s = String(v).padStart(digits, '0').replace(/0+$/, '');
    return s ? `.${s}` : '';
  };
  if (n < 1000) return `${sign}${n}ns`;
  if (n < 1_000_000) return `${sign}${Math.floor(n / 1000)}${frac(n % 1000, 3)}µs`;
  if (n < 1_000_000_000) return `${sign}${Math.floor(n / 1_000_000)}${frac(n % 1_000_000, 6)}ms`;
  const h = Math.floor(n / 3_600_000_000_000);
  n -= h * 3_600_000_000_000;
  const m = Math.floor(n / 60_000_000_000);
  n -= m * 60_000_000_000;
  const s = `${Math.floor(n / 1_000_000_000)}${frac(n % 1_000_000_000, 9)}s`;
  if (h > 0) return `${sign}${h}h${m}m${s}`;
  if (m > 0) return `${sign}${m}m${s}`;
  return `${sign}${s}`;
}

type WithHealth = ContainerState & { Health?: HealthState };

export function healthOf(state: ContainerState): HealthState | undefined {
  return (state as WithHealth).Health;
}

function setHealth(state: ContainerState, h: HealthState): void {
  (state as WithHealth).Health = h;
}

/** Docker's Health.String(). */
export function healthText(h: HealthState): string {
  return h.Status === 'starting' ? 'health: starting' : h.Status;
}

/** ps's Status: Docker adds the health to "Up ..." (not to Paused or Restarting). */
export function withHealthText(text: string, state: ContainerState): string {
  const h = healthOf(state);
  if (!h || !state.Running || state.Paused || state.Restarting) return text;
  return `${text} (${healthText(h)})`;
}

/** The value `ps --filter health=` compares: the status, or `none` without a healthcheck. */
export function healthFilterValue(state: ContainerState): string {
  return healthOf(state)?.Status ?? 'none';
}

export function checkHealthFilter(values: Set<string> | undefined): void {
  for (const v of values ?? [])
    if (!HEALTH_FILTER_VALUES.includes(v))
      throw new BerthError('BERTH_INVALID_ARGUMENT', `Unrecognised filter value for health: ${v}`, { details: { field: 'filters.health' } });
}

/**
 * Docker's handleProbeResult on State.Health: the log keeps the last five; exit 0 is healthy;
 * a failure while starting and within the start period does not count; Retries failures in a
 * row are unhealthy. Answers the new status when it changed.
 */
export function applyProbeResult(
  h: HealthState,
  result: HealthResult,
  cfg: HealthConfig,
  startedAtNs: bigint | null,
): HealthStatus | null {
  const before = h.Status;
  h.Log = [...h.Log, result].slice(-MAX_LOG_ENTRIES);
  if (result.ExitCode === 0) {
    h.FailingStreak = 0;
    h.Status = 'healthy';
  } else {
    let count = true;
    if (h.Status === 'starting') {
      const start = parseRfc3339Nano(result.Start);
      const period = BigInt(Math.max(0, cfg.StartPeriod ?? 0));
      if (start !== null && startedAtNs !== null && start - startedAtNs < period) count = false;
    }
    if (count) {
      h.FailingStreak++;
      if (h.FailingStreak >= nsOr(cfg.Retries, DEFAULT_RETRIES)) h.Status = 'unhealthy';
    }
  }
  return h.Status === before ? null : h.Status;
}

/** Milliseconds to the next probe: the start interval while starting within the start period. */
export function nextProbeDelayMs(cfg: HealthConfig, status: HealthStatus, sinceStartNs: number): number {
  const interval = nsOr(cfg.Interval, DEFAULT_INTERVAL_NS);
  const period = nsOr(cfg.StartPeriod, 0);
  const ns = sinceStartNs < period && status === 'starting' ? nsOr(cfg.StartInterval, DEFAULT_START_INTERVAL_NS) : interval;
  return Math.max(1, Math.round(ns / 1e6));
}

/** Output as Docker's limitedBuffer keeps it: the first 4096 bytes, "..." when cut. */
export class LimitedOutput {
  private readonly parts: Buffer[] = [];
  private size = 0;
  private truncated = false;

  write(data: Buffer): void {
    const keep = Math.min(MAX_OUTPUT_LEN - this.size, data.length);
    if (keep > 0) {
      this.parts.push(Buffer.from(data.subarray(0, keep)));
      this.size += keep;
    }
    if (keep < data.length) this.truncated = true;
  }

  toString(): string {
    const out = Buffer.concat(this.parts).toString('utf8');
    return this.truncated ? `${out}...` : out;
  }
}

/** Reads Docker's multiplexed frames (8-byte header, then the payload) into `sink`, stdout and stderr alike. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);
  private left = 0;

  constructor(private readonly sink: (payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length) {
      if (this.left > 0) {
        const n = Math.min(this.left, buf.length);
        this.sink(buf.subarray(0, n));
        this.left -= n;
        buf = buf.subarray(n);
        continue;
      }
      if (buf.length < 8) {
        this.pending = Buffer.from(buf);
        return;
      }
      this.left = buf.readUInt32BE(4);
      buf = buf.subarray(8);
    }
  }
}

// ---------------------------------------------------------------- the monitor

interface RunningProbe {
  result: Promise<HealthResult>;
  /** Kills the probe's process; the result still settles (after its clean-up). */
  cancel(): void;
}

interface Monitor {
  timer: NodeJS.Timeout | null;
  probe: RunningProbe | null;
  closed: boolean;
}

/** One per container with an open monitor: its only timer, and the probe in flight. */
const monitors = new WeakMap<Ctr, Monitor>();

/** Docker's initHealthMonitor, at each start: status starting, streak 0, the log kept. */
export function startHealth(ctx: EngineContext, c: Ctr): void {
  closeMonitor(c);
  if (!probeCommand(c.rec.Config)) return;
  const h = healthOf(c.rec.State);
  setHealth(c.rec.State, { Status: 'starting', FailingStreak: 0, Log: h?.Log ?? [] });
  openMonitor(ctx, c);
}

/**
 * Docker's updateHealthMonitor: a running, unpaused container with a probe has a monitor (after
 * unpause, after a daemon restart re-adopted it); the status stays as it was.
 */
export function resumeHealth(ctx: EngineContext, c: Ctr): void {
  const s = c.rec.State;
  if (!probeCommand(c.rec.Config) || !s.Running || s.Paused) return;
  if (!healthOf(s)) setHealth(s, { Status: 'starting', FailingStreak: 0, Log: [] });
  openMonitor(ctx, c);
}

/**
 * Stops the monitor (exit, pause, removal): the probe in flight is killed and its result
 * dropped. As Docker's CloseMonitorChannel, a monitor that was open leaves the status unhealthy.
 */
export function stopHealth(c: Ctr): void {
  if (!closeMonitor(c)) return;
  const h = healthOf(c.rec.State);
  if (h) h.Status = 'unhealthy';
}

/** The daemon is closing: monitoring stops, the status stays for the next daemon to resume. */
export function suspendHealth(c: Ctr): void {
  closeMonitor(c);
}

function closeMonitor(c: Ctr): boolean {
  const m = monitors.get(c);
  if (!m) return false;
  monitors.delete(c);
  m.closed = true;
  if (m.timer) clearTimeout(m.timer);
  m.timer = null;
  m.probe?.cancel();
  return true;
}

function openMonitor(ctx: EngineContext, c: Ctr): void {
  if (monitors.has(c)) return;
  const m: Monitor = { timer: null, probe: null, closed: false };
  monitors.set(c, m);
  schedule(ctx, c, m);
}

function schedule(ctx: EngineContext, c: Ctr, m: Monitor): void {
  const cfg = c.rec.Config.Healthcheck ?? {};
  const started = parseRfc3339Nano(c.rec.State.StartedAt);
  const since = started === null ? Number.MAX_SAFE_INTEGER : Number(nowNanos() - started);
  const delay = nextProbeDelayMs(cfg, healthOf(c.rec.State)?.Status ?? 'starting', since);
  m.timer = setTimeout(() => {
    m.timer = null;
    void tick(ctx, c, m).catch((err: unknown) => ctx.log.warn({ err, containerId: c.id }, 'health check failed'));
  }, delay);
  // The daemon's lifetime is not the monitor's to hold.
  m.timer.unref();
}

async function tick(ctx: EngineContext, c: Ctr, m: Monitor): Promise<void> {
  const cmd = probeCommand(c.rec.Config);
  if (m.closed || !cmd) return;
  const cfg = c.rec.Config.Healthcheck ?? {};
  const probe = runProbe(ctx, c, cmd, nsOr(cfg.Timeout, DEFAULT_TIMEOUT_NS));
  m.probe = probe;
  const result = await probe.result;
  m.probe = null;
  // Stopped while probing: the result is dropped, as Docker's.
  if (m.closed) return;
  const h = healthOf(c.rec.State);
  if (!h) return;
  const changed = applyProbeResult(h, result, cfg, parseRfc3339Nano(c.rec.State.StartedAt));
  if (changed) {
    try {
      // The status outlives a daemon restart; the log and streak in between are not worth an fsync.
      ctx.save(c, false, false);
    } catch (err) {
      ctx.log.warn({ err, containerId: c.id }, 'saving the health status failed');
    }
    ctx.emit(c, `health_status: ${changed}`);
  }
  schedule(ctx, c, m);
}

/**
 * One probe: an exec of the command in the container (the container's env, user and working
 * directory, no tty), its stdout and stderr read into a limited buffer, killed at the timeout.
 * The exec's shim socket, its runtime files and its connections are gone when the result settles.
 */
function runProbe(ctx: EngineContext, c: Ctr, cmd: string[], timeoutNs: number): RunningProbe {
  const id = newId();
  const start = nowNanos();
  const e: ExecRec = {
    id, containerId: c.id, cmd, user: '', privileged: false, tty: false, env: [], workingDir: '', attachStdin: false,
    attachStdout: true, attachStderr: true, detachKeys: null, consoleSize: null, running: false, started: true, exitCode: null, pid: 0,
    socket: ctx.socketOf(id), exitFile: '', watch: null,
  };
  let pid = 0;
  let exited = false;
  let killed = false;
  let timedOut = false;
  const kill = (): void => {
    killed = true;
    if (pid > 0 && !exited) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  };
  const run = async (): Promise<HealthResult> => {
    ctx.emit(c, `exec_create: ${cmd.join(' ')}`, { execID: id });
    ctx.emit(c, `exec_start: ${cmd.join(' ')}`, { execID: id });
    const output = new LimitedOutput();
    let conn: Socket | null = null;
    let timer: NodeJS.Timeout | undefined;
    try {
      const proc = execProcess(ctx, c, e, false);
      rmSync(e.socket, { force: true });
      const started = await ctx.runtime.execProcess(c.id, id, proc, { socket: e.socket, tty: false, stdin: false, stdinOnce: false, hold: true });
      pid = started.pid;
      e.exitFile = started.exitFile;
      if (killed) kill();
      timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, Math.max(1, Math.round(timeoutNs / 1e6)));
      const watch = watchShim(e.socket, started.exitFile);
      e.watch = watch;
      // The attach ends the shim's hold; it closes once the process exited and its output is drained.
      const drained = ShimClient.attach(e.socket, { stdin: false, stdout: true, stderr: true }).then(
        (s) =>
          new Promise<void>((resolve) => {
            conn = s;
            const frames = new FrameReader((p) => output.write(p));
            s.on('data', (d: Buffer) => frames.push(d));
            s.on('close', () => resolve());
            s.on('error', () => resolve());
            s.resume();
          }),
        // Without our attach the shim would hold the exit back: an empty attach releases it.
        () =>
          ShimClient.attach(e.socket, { stdin: false, stdout: false, stderr: false }).then(
            (s) => {
              conn = s;
              s.on('error', () => undefined);
              s.resume();
            },
            () => undefined,
          ),
      );
      // A process the kill could not end (a shim gone astray) must not stop the monitor for good.
      let giveUp: NodeJS.Timeout | undefined;
      const code = await Promise.race([
        watch.result.catch(() => -1),
        new Promise<number>((r) => (giveUp = setTimeout(() => {
          timedOut = true;
          r(-1);
        }, Math.round(timeoutNs / 1e6) + PROBE_GRACE_MS))),
      ]);
      clearTimeout(giveUp);
      exited = true;
      clearTimeout(timer);
      // Output after the exit is drained; a descendant holding the pipe does not keep the probe waiting.
      await Promise.race([drained, new Promise((r) => setTimeout(r, 1000).unref())]);
      e.exitCode = code;
      if (ctx.containers.has(c.id)) ctx.emit(c, 'exec_die', { execID: id, exitCode: String(code) });
      const end = rfc3339Nano(nowNanos());
      if (timedOut) return { Start: rfc3339Nano(start), End: end, ExitCode: -1, Output: `Health check exceeded timeout (${goDuration(timeoutNs)})` };
      return { Start: rfc3339Nano(start), End: end, ExitCode: code, Output: output.toString() };
    } catch (err) {
      const code = err instanceof BerthError && typeof err.details?.exitCode === 'number' ? err.details.exitCode : 126;
      if (ctx.containers.has(c.id)) ctx.emit(c, 'exec_die', { execID: id, exitCode: String(code) });
      const message = err instanceof Error ? err.message : String(err);
      // Docker's text for an exec the runtime could not start, around the runtime's reason.
      const output = code === 126 || code === 127 ? execFailedText(message) : message;
      return { Start: rfc3339Nano(start), End: rfc3339Nano(nowNanos()), ExitCode: -1, Output: output };
    } finally {
      clearTimeout(timer);
      e.watch?.cancel();
      e.watch = null;
      (conn as Socket | null)?.destroy();
      rmSync(e.socket, { force: true });
      // The runtime keeps an exec's record, pid and exit files in the container's state dir
      // until the container is deleted: a probe every second must not pile them up.
      if (e.exitFile.endsWith('.exit')) {
        const base = e.exitFile.slice(0, -'.exit'.length);
        for (const ext of ['exit', 'pid', 'json']) rmSync(`${base}.${ext}`, { force: true });
      }
    }
  };
  return { result: run(), cancel: kill };
}
