/**
 * The create body as stored: every Config and HostConfig key present (Docker serialises them
 * all), NetworkMode normalised, the image's defaults merged into Config by Docker's rules, and
 * values checked before anything is made.
 */
import type { ContainerConfig, ContainerCreateBody, HostConfig, ImageRuntimeConfig, RestartPolicy } from '@berth/api';
import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import { BerthError } from '@berth/errors';
import { apiSignal } from './signals.js';
import { mergeHealthcheck, normaliseHealthcheck, validateHealthcheck } from './health.js';
import { validateHostResources } from './resources.js';
import { volumeNameProblem } from './volumes.js';

export function invalid(field: string, message: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', message, { details: { field } });
}

/** Docker's (moby/sys/user) range of user and group ids: 0 to 2^31-1. */
export const MAX_ID = 2147483647;
export const ID_RANGE_MESSAGE = `uids and gids must be in range 0-${MAX_ID}`;

/** Whether `s` is a number as Go's strconv.Atoi takes it (moby/sys/user treats such a user or group as an id). */
export function isNumericId(s: string): boolean {
  return /^[+-]?\d+$/.test(s);
}

/** A numeric id within Docker's range (a decimal string of any length compares exactly). */
export function idInRange(s: string): boolean {
  const digits = s.replace(/^\+/, '');
  if (digits.startsWith('-')) return /^-0+$/.test(digits);
  return BigInt(digits) <= BigInt(MAX_ID);
}

/**
 * Create-time check of `user[:group]` and `--group-add`: a numeric uid or gid must be in range
 * (names and ids found in the image's files are resolved at start).
 */
export function validateUserIds(spec: string, groupAdd: readonly unknown[] | null): void {
  const [userPart = '', groupPart = ''] = spec.split(':');
  for (const part of [userPart, groupPart])
    if (isNumericId(part) && !idInRange(part)) throw invalid('User', ID_RANGE_MESSAGE);
  for (const [i, ga] of (groupAdd ?? []).entries()) {
    if (typeof ga !== 'string') throw invalid('HostConfig.GroupAdd', `invalid group at HostConfig.GroupAdd[${i}]: expected a string`);
    if (isNumericId(ga) && !idInRange(ga)) throw invalid('HostConfig.GroupAdd', ID_RANGE_MESSAGE);
  }
}

const arr = <T>(v: T[] | null | undefined): T[] | null => (Array.isArray(v) ? v : null);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const bool = (v: unknown): boolean => v === true;

/** Config as given, with every key present. `Cmd` and `Entrypoint` may arrive as strings. */
export function normaliseConfig(body: ContainerCreateBody): ContainerConfig {
  const list = (v: unknown, field: string): string[] | null => {
    if (v === undefined || v === null) return null;
    if (typeof v === 'string') return [v];
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
    throw invalid(field, `invalid ${field}: expected a list of strings`);
  };
  const env = list(body.Env, 'Env');
  for (const e of env ?? []) if (e === '' || e.startsWith('=')) throw invalid('Env', `invalid environment variable: ${e}`);
  const cfg: ContainerConfig = {
    Hostname: str(body.Hostname),
    Domainname: str(body.Domainname),
    User: str(body.User),
    AttachStdin: bool(body.AttachStdin),
    AttachStdout: bool(body.AttachStdout),
    AttachStderr: bool(body.AttachStderr),
    Tty: bool(body.Tty),
    OpenStdin: bool(body.OpenStdin),
    StdinOnce: bool(body.StdinOnce),
    Env: env,
    Cmd: list(body.Cmd, 'Cmd'),
    Image: str(body.Image),
    Volumes: body.Volumes && typeof body.Volumes === 'object' ? body.Volumes : null,
    WorkingDir: str(body.WorkingDir),
    Entrypoint: list(body.Entrypoint, 'Entrypoint'),
    OnBuild: arr(body.OnBuild),
    Labels: body.Labels && typeof body.Labels === 'object' ? { ...body.Labels } : {},
  };
  if (body.ExposedPorts && Object.keys(body.ExposedPorts).length) cfg.ExposedPorts = body.ExposedPorts;
  if (body.Healthcheck) {
    validateHealthcheck(body.Healthcheck);
    const hc = normaliseHealthcheck(body.Healthcheck);
    if (hc) cfg.Healthcheck = hc;
  }
  if (typeof body.StopSignal === 'string' && body.StopSignal) {
    apiSignal(body.StopSignal);
    cfg.StopSignal = body.StopSignal;
  }
  if (typeof body.StopTimeout === 'number') cfg.StopTimeout = body.StopTimeout;
  if (Array.isArray(body.Shell) && body.Shell.length) cfg.Shell = body.Shell;
  if (body.NetworkDisabled) cfg.NetworkDisabled = true;
  if (cfg.WorkingDir && !cfg.WorkingDir.startsWith('/'))
    throw invalid('WorkingDir', `the working directory '${cfg.WorkingDir}' is invalid, it needs to be an absolute path`);
  if (cfg.Hostname && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(cfg.Hostname)) throw invalid('Hostname', `invalid hostname format: ${cfg.Hostname}`);
  validateUserIds(cfg.User, null);
  return cfg;
}

const envKey = (e: string): string => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);

/** Docker's merge of the image config into the container config (daemon/commit.go merge). */
export function mergeImageConfig(cfg: ContainerConfig, img: ImageRuntimeConfig): ContainerConfig {
  const out: ContainerConfig = { ...cfg };
  if (!out.User) out.User = img.User ?? '';
  if (img.ExposedPorts && Object.keys(img.ExposedPorts).length) out.ExposedPorts = { ...img.ExposedPorts, ...(out.ExposedPorts ?? {}) };
  if (img.Env?.length) {
    const env = [...(out.Env ?? [])];
    const keys = new Set(env.map(envKey));
    for (const e of img.Env) if (!keys.has(envKey(e))) env.push(e);
    out.Env = env;
  }
  if (img.Labels) out.Labels = { ...img.Labels, ...(out.Labels ?? {}) };
  if (!out.Entrypoint || out.Entrypoint.length === 0) {
    if (!out.Cmd || out.Cmd.length === 0) out.Cmd = img.Cmd ?? null;
    if (out.Entrypoint === null) out.Entrypoint = img.Entrypoint ?? null;
  }
  const hc = mergeHealthcheck(out.Healthcheck, img.Healthcheck);
  if (hc) out.Healthcheck = hc;
  if (!out.WorkingDir) out.WorkingDir = img.WorkingDir ?? '';
  if (img.Volumes && Object.keys(img.Volumes).length) out.Volumes = { ...img.Volumes, ...(out.Volumes ?? {}) };
  if (!out.StopSignal && img.StopSignal) out.StopSignal = img.StopSignal;
  if ((!out.OnBuild || out.OnBuild.length === 0) && img.OnBuild?.length) out.OnBuild = img.OnBuild;
  if (!out.Shell && img.Shell?.length) out.Shell = img.Shell;
  return out;
}

/** The process: entrypoint + cmd, where `--entrypoint ""` (`[""]`) means none. */
export function commandLine(cfg: ContainerConfig): string[] {
  const ep = cfg.Entrypoint && !(cfg.Entrypoint.length === 1 && cfg.Entrypoint[0] === '') ? cfg.Entrypoint : [];
  return [...ep, ...(cfg.Cmd ?? [])];
}

const restartNames = new Set(['', 'no', 'always', 'unless-stopped', 'on-failure']);

/** HostConfig as stored: every key present with Docker's zero values. */
export function normaliseHostConfig(raw: Partial<HostConfig> | null | undefined): HostConfig {
  const h = raw ?? {};
  const rp = (h.RestartPolicy ?? { Name: '', MaximumRetryCount: 0 }) as Partial<RestartPolicy>;
  const restart: RestartPolicy = { Name: (rp.Name ?? '') as RestartPolicy['Name'], MaximumRetryCount: num(rp.MaximumRetryCount) };
  let networkMode = str(h.NetworkMode);
  if (networkMode === '' || networkMode === 'default') networkMode = 'bridge';
  const out: HostConfig = {
    Binds: arr(h.Binds),
    ContainerIDFile: str(h.ContainerIDFile),
    LogConfig: logConfig(h.LogConfig),
    NetworkMode: networkMode,
    PortBindings: h.PortBindings ?? {},
    RestartPolicy: restart,
    AutoRemove: bool(h.AutoRemove),
    VolumeDriver: str(h.VolumeDriver),
    VolumesFrom: arr(h.VolumesFrom),
    ConsoleSize: Array.isArray(h.ConsoleSize) ? [num(h.ConsoleSize[0]), num(h.ConsoleSize[1])] : [0, 0],
    CapAdd: arr(h.CapAdd),
    CapDrop: arr(h.CapDrop),
    CgroupnsMode: str(h.CgroupnsMode) || 'private',
    Dns: arr(h.Dns) ?? [],
    DnsOptions: arr(h.DnsOptions) ?? [],
    DnsSearch: arr(h.DnsSearch) ?? [],
    ExtraHosts: arr(h.ExtraHosts),
    GroupAdd: arr(h.GroupAdd),
    IpcMode: str(h.IpcMode) || 'private',
    Cgroup: str(h.Cgroup),
    Links: arr(h.Links),
    OomScoreAdj: num(h.OomScoreAdj),
    PidMode: str(h.PidMode),
    Privileged: bool(h.Privileged),
    PublishAllPorts: bool(h.PublishAllPorts),
    ReadonlyRootfs: bool(h.ReadonlyRootfs),
    SecurityOpt: arr(h.SecurityOpt),
    UTSMode: str(h.UTSMode),
    UsernsMode: str(h.UsernsMode),
    ShmSize: num(h.ShmSize) || 64 * 1024 * 1024,
    Runtime: str(h.Runtime) || 'runc',
    Isolation: str(h.Isolation),
    MaskedPaths: arr(h.MaskedPaths),
    ReadonlyPaths: arr(h.ReadonlyPaths),
    CpuShares: num(h.CpuShares),
    Memory: num(h.Memory),
    NanoCpus: num(h.NanoCpus),
    CgroupParent: str(h.CgroupParent),
    BlkioWeight: num(h.BlkioWeight),
    CpuPeriod: num(h.CpuPeriod),
    CpuQuota: num(h.CpuQuota),
    CpuRealtimePeriod: num(h.CpuRealtimePeriod),
    CpuRealtimeRuntime: num(h.CpuRealtimeRuntime),
    CpusetCpus: str(h.CpusetCpus),
    CpusetMems: str(h.CpusetMems),
    Devices: arr(h.Devices) ?? [],
    DeviceCgroupRules: arr(h.DeviceCgroupRules),
    MemoryReservation: num(h.MemoryReservation),
    MemorySwap: num(h.MemorySwap),
    MemorySwappiness: typeof h.MemorySwappiness === 'number' ? h.MemorySwappiness : null,
    OomKillDisable: typeof h.OomKillDisable === 'boolean' ? h.OomKillDisable : null,
    PidsLimit: typeof h.PidsLimit === 'number' ? h.PidsLimit : null,
    Ulimits: arr(h.Ulimits),
  };
  if (h.Tmpfs && typeof h.Tmpfs === 'object' && Object.keys(h.Tmpfs).length) out.Tmpfs = { ...h.Tmpfs };
  if (h.Sysctls && typeof h.Sysctls === 'object' && Object.keys(h.Sysctls).length) out.Sysctls = { ...h.Sysctls };
  if (h.StorageOpt && Object.keys(h.StorageOpt).length) out.StorageOpt = h.StorageOpt;
  if (typeof h.Init === 'boolean') out.Init = h.Init;
  const extra = h as Record<string, unknown>;
  for (const k of ['Mounts', 'Annotations', 'KernelMemory', 'KernelMemoryTCP', 'BlkioWeightDevice', 'BlkioDeviceReadBps', 'BlkioDeviceWriteBps', 'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps', 'DeviceRequests'])
    if (extra[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = extra[k];
  validateHostConfig(out, restartNames);
  return out;
}

/** Docker's logging drivers that Berth does not have (it writes json-file logs, or none). */
const otherLogDrivers = ['local', 'syslog', 'journald', 'gelf', 'fluentd', 'awslogs', 'splunk', 'etwlogs', 'gcplogs', 'logentries'];

/** LogConfig.Type: json-file (the default) or none; another is a 400 rather than a log that silently is json-file. */
function logDriver(type: string | undefined): string {
  const t = type || 'json-file';
  if (t === 'json-file' || t === 'none') return t;
  if (otherLogDrivers.includes(t)) throw invalid('HostConfig.LogConfig.Type', `logging driver "${t}" is not supported: Berth writes json-file logs (or none)`);
  throw invalid('HostConfig.LogConfig.Type', `error looking up logging plugin ${t}: plugin "${t}" not found`);
}

/** LogConfig as stored: the driver checked, and for json-file its options (as Docker's json-file checks them). */
function logConfig(raw: { Type?: string; Config?: Record<string, string> } | undefined): HostConfig['LogConfig'] {
  const Type = logDriver(raw?.Type);
  const Config = { ...(raw?.Config ?? {}) };
  // dockerd does not look at the options of the none driver either.
  if (Type === 'json-file') jsonFileLogLimits(Config);
  return { Type, Config };
}

/**
 * Options of Docker's json-file driver. labels, labels-regex, env, env-regex and tag only add
 * attributes to Docker's records (attrs); Berth accepts and ignores them.
 */
const jsonFileOpts = new Set(['max-size', 'max-file', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag']);

/** docker/go-units RAMInBytes: a decimal number, an optional space, an optional k/m/g/t/p unit (1024-based), optional i and b. */
function ramInBytes(v: string): number | null {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m) return null;
  const n = Number.parseFloat(m[1]!);
  const unit = m[2] ? 'kmgtp'.indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.trunc(n * 1024 ** unit);
}

/**
 * The json-file options checked with Docker's words (dockerd checks them when the logger starts,
 * Berth at create: the same 400 text, earlier): the rotation limits for the shim. maxSize 0 is
 * no limit (without max-size dockerd accepts max-file and does not rotate; so does Berth).
 */
export function jsonFileLogLimits(config: Record<string, string>): { maxSize: number; maxFiles: number } {
  const field = 'HostConfig.LogConfig.Config';
  for (const k of Object.keys(config)) if (!jsonFileOpts.has(k)) throw invalid(field, `unknown log opt '${k}' for json-file log driver`);
  let maxSize = 0;
  const size = config['max-size'];
  if (size !== undefined && size !== '') {
    const n = ramInBytes(size);
    if (n === null) throw invalid(field, `invalid size: '${size}'`);
    if (n <= 0) throw invalid(field, 'max-size must be a positive number');
    maxSize = n;
  }
  let maxFiles = 1;
  const files = config['max-file'];
  if (files !== undefined && files !== '') {
    if (!/^[+-]?\d+$/.test(files)) throw invalid(field, `strconv.Atoi: parsing ${JSON.stringify(files)}: invalid syntax`);
    maxFiles = Number(files);
    if (maxFiles < 1) throw invalid(field, 'max-file cannot be less than 1');
  }
  const compress = config['compress'];
  if (compress !== undefined && compress !== '') {
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(compress))
      throw invalid(field, 'compress is not supported: Berth does not compress rotated logs (use compress=false or leave it out)');
    if (!['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(compress)) throw invalid(field, `strconv.ParseBool: parsing ${JSON.stringify(compress)}: invalid syntax`);
  }
  return { maxSize, maxFiles };
}

/**
 * The shim's log limits (ContainerIo) for a json-file LogConfig.Config. Options stored before
 * they were checked at create and that do not pass give no limit rather than a failed start.
 */
export function logRotation(config: Record<string, string>): { logMaxSize?: number; logMaxFiles?: number } {
  try {
    const { maxSize, maxFiles } = jsonFileLogLimits(config);
    return maxSize > 0 ? { logMaxSize: maxSize, logMaxFiles: maxFiles } : {};
  } catch {
    return {};
  }
}

/** Berth has no device drivers (GPUs): a DeviceRequests entry (`--gpus`) is refused as dockerd refuses one it cannot serve. */
function validateDeviceRequests(requests: unknown): void {
  if (requests === undefined || requests === null) return;
  if (!Array.isArray(requests)) throw invalid('HostConfig.DeviceRequests', 'invalid HostConfig.DeviceRequests: expected a list');
  for (const [i, r] of requests.entries()) {
    const req = (r ?? {}) as { Driver?: unknown; Capabilities?: unknown };
    const driver = typeof req.Driver === 'string' ? req.Driver : '';
    const caps = Array.isArray(req.Capabilities) ? req.Capabilities.map((c) => `[${Array.isArray(c) ? c.join(' ') : ''}]`).join(' ') : '';
    throw invalid(`HostConfig.DeviceRequests[${i}]`, `could not select device driver "${driver}" with capabilities: [${caps}]`);
  }
}

function validateHostConfig(h: HostConfig, names: Set<string>): void {
  validateDeviceRequests((h as { DeviceRequests?: unknown }).DeviceRequests);
  const rp = h.RestartPolicy;
  if (!names.has(rp.Name)) throw invalid('HostConfig.RestartPolicy.Name', `invalid restart policy '${rp.Name}'`);
  if (rp.MaximumRetryCount < 0) throw invalid('HostConfig.RestartPolicy.MaximumRetryCount', 'invalid value for MaximumRetryCount: must be a positive integer');
  if (rp.MaximumRetryCount > 0 && rp.Name !== 'on-failure')
    throw invalid('HostConfig.RestartPolicy.MaximumRetryCount', `invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  if (h.AutoRemove && rp.Name !== '' && rp.Name !== 'no')
    throw invalid('HostConfig.AutoRemove', `can't create 'AutoRemove' container with restart policy`);
  if (h.Memory < 0) throw invalid('HostConfig.Memory', 'invalid value for Memory: must be positive');
  if (h.Memory > 0 && h.Memory < 6 * 1024 * 1024) throw invalid('HostConfig.Memory', 'Minimum memory limit allowed is 6MB');
  if (h.MemorySwap > 0 && h.Memory > 0 && h.MemorySwap < h.Memory)
    throw invalid('HostConfig.MemorySwap', 'Minimum memoryswap limit should be larger than memory limit, see usage');
  if (h.MemorySwap > 0 && h.Memory === 0) throw invalid('HostConfig.MemorySwap', 'You should always set the Memory limit when using Memoryswap limit, see usage');
  if (h.NanoCpus > 0 && h.CpuPeriod > 0) throw invalid('HostConfig.NanoCpus', 'Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (h.NanoCpus > 0 && h.CpuQuota > 0) throw invalid('HostConfig.NanoCpus', 'Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (h.CpuPeriod !== 0 && (h.CpuPeriod < 1000 || h.CpuPeriod > 1_000_000))
    throw invalid('HostConfig.CpuPeriod', 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  if (h.CpuQuota > 0 && h.CpuQuota < 1000) throw invalid('HostConfig.CpuQuota', 'CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if (h.CpuShares < 0) throw invalid('HostConfig.CpuShares', 'invalid value for CpuShares: must be positive');
  if (h.BlkioWeight !== 0 && (h.BlkioWeight < 10 || h.BlkioWeight > 1000))
    throw invalid('HostConfig.BlkioWeight', 'Range of blkio weight is from 10 to 1000');
  if (h.CpusetCpus && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(h.CpusetCpus)) throw invalid('HostConfig.CpusetCpus', `Invalid value ${h.CpusetCpus} for cpuset cpus: invalid format: ${h.CpusetCpus}`);
  if (h.CpusetMems && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(h.CpusetMems)) throw invalid('HostConfig.CpusetMems', `Invalid value ${h.CpusetMems} for cpuset mems: invalid format: ${h.CpusetMems}`);
  if (h.ShmSize < 0) throw invalid('HostConfig.ShmSize', 'SHM size can not be less than 0');
  if (h.OomScoreAdj < -1000 || h.OomScoreAdj > 1000) throw invalid('HostConfig.OomScoreAdj', `Invalid value ${h.OomScoreAdj}, range for oom score adj is [-1000, 1000]`);
  const nm = h.NetworkMode;
  if (nm === 'container:') throw invalid('HostConfig.NetworkMode', 'invalid container format container:<name|id>');
  for (const [field, mode] of [['HostConfig.PidMode', h.PidMode], ['HostConfig.IpcMode', h.IpcMode], ['HostConfig.UTSMode', h.UTSMode]] as const) {
    if (field === 'HostConfig.IpcMode') {
      if (!['', 'private', 'shareable', 'host', 'none'].includes(mode) && !mode.startsWith('container:'))
        throw invalid(field, `invalid IPC mode: ${mode}`);
    } else if (mode !== '' && mode !== 'host' && !(field === 'HostConfig.PidMode' && mode.startsWith('container:')))
      throw invalid(field, `invalid ${field === 'HostConfig.PidMode' ? 'PID' : 'UTS'} mode: ${mode}`);
  }
  if (!['private', 'host'].includes(h.CgroupnsMode)) throw invalid('HostConfig.CgroupnsMode', `invalid cgroup namespace mode: ${h.CgroupnsMode}`);
  if (h.UsernsMode !== '' && h.UsernsMode !== 'host') throw invalid('HostConfig.UsernsMode', `invalid USER mode: ${h.UsernsMode}`);
  validateUserIds('', h.GroupAdd);
  for (const [i, b] of (h.Binds ?? []).entries()) {
    if (isVolumeBind(b)) parseVolumeBind(b, `HostConfig.Binds[${i}]`);
    else parseBind(b, `HostConfig.Binds[${i}]`);
  }
  for (const [i, v] of (h.VolumesFrom ?? []).entries()) parseVolumesFrom(v, `HostConfig.VolumesFrom[${i}]`);
  for (const dst of Object.keys(h.Tmpfs ?? {})) {
    if (!dst.startsWith('/')) throw invalid('HostConfig.Tmpfs', `invalid mount path: '${dst}' mount path must be absolute`);
    const problem = mountDestinationProblem(dst);
    if (problem) throw invalid('HostConfig.Tmpfs', `invalid specification: ${problem}`);
  }
  validateMounts((h as { Mounts?: unknown }).Mounts);
  for (const [i, u] of (h.Ulimits ?? []).entries()) {
    if (!u || typeof u.Name !== 'string' || !rlimitNames.has(u.Name)) throw invalid(`HostConfig.Ulimits[${i}]`, `invalid ulimit type: ${String(u?.Name)}`);
    if (u.Soft > u.Hard) throw invalid(`HostConfig.Ulimits[${i}]`, `ulimit soft limit must be less than or equal to hard limit: ${u.Soft} > ${u.Hard}`);
  }
  validateHostResources(h);
}

export const rlimitNames = new Set(['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack', 'as']);

export interface Bind {
  source: string;
  destination: string;
  readonly: boolean;
  propagation: string;
  mode: string;
}

/**
 * Whether a Binds entry names a volume rather than a host path: `name:/dst[:opts]` (a source
 * that is not an absolute path) or a lone `/dst` (an anonymous volume).
 */
export function isVolumeBind(spec: string): boolean {
  const parts = spec.split(':');
  return parts.length === 1 || (parts.length <= 3 && parts[0] !== '' && !parts[0]!.startsWith('/'));
}

export interface VolumeBind {
  /** '' for an anonymous volume. */
  name: string;
  destination: string;
  readonly: boolean;
  nocopy: boolean;
  /** As given (Docker shows `z` when none was). */
  mode: string;
}

const volumeModes = new Set(['ro', 'rw', 'nocopy', 'z', 'Z', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);

/** `name:/dst[:ro|rw][,nocopy]` or `/dst`, checked as Docker checks it (the name by the local driver's rule). */
export function parseVolumeBind(spec: string, field: string): VolumeBind {
  const parts = spec.split(':');
  const [name, destination, mode = ''] = (parts.length === 1 ? ['', parts[0]!] : parts) as [string, string, string?];
  if (!destination.startsWith('/')) throw invalid(field, `invalid volume specification: '${spec}': invalid mount config for type "volume": invalid mount path: '${destination}' mount path must be absolute`);
  const problem = mountDestinationProblem(destination);
  if (problem) throw invalid(field, `invalid volume specification: '${spec}': invalid mount config for type "volume": invalid specification: ${problem}`);
  if (name) {
    const bad = volumeNameProblem(name);
    if (bad) throw invalid(field, `create ${name}: ${bad}`);
  }
  let readonly = false;
  let nocopy = false;
  for (const o of mode.split(',').filter(Boolean)) {
    if (!volumeModes.has(o)) throw invalid(field, `invalid mode: ${mode}`);
    if (o === 'ro') readonly = true;
    else if (o === 'rw') readonly = false;
    else if (o === 'nocopy') nocopy = true;
  }
  return { name, destination: cleanPath(destination), readonly, nocopy, mode: parts.length === 1 ? '' : mode || 'z' };
}

/** `container[:ro|rw]` of HostConfig.VolumesFrom. */
export function parseVolumesFrom(spec: string, field: string): { container: string; mode: '' | 'ro' | 'rw' } {
  const i = spec.lastIndexOf(':');
  const [container, mode] = i > 0 ? [spec.slice(0, i), spec.slice(i + 1)] : [spec, ''];
  if (!container) throw invalid(field, `invalid volumes-from specification: '${spec}'`);
  if (mode !== '' && mode !== 'ro' && mode !== 'rw') throw invalid(field, `invalid mode: ${mode}`);
  return { container, mode };
}

/** A destination as Docker compares them (filepath.Clean). */
export function cleanPath(p: string): string {
  return posix.normalize(p).replace(/(.)\/+$/, '$1');
}

/** `src:dst[:opts]` with opts among ro, rw, z, Z, and a propagation mode; a volume's spec is parseVolumeBind's. */
export function parseBind(spec: string, field: string): Bind {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3) throw invalid(field, `invalid volume specification: '${spec}'`);
  const [source, destination, mode = ''] = parts as [string, string, string?];
  // Docker names the type by the source: a path is a bind, a name a volume.
  if (!destination.startsWith('/'))
    throw invalid(field, `invalid volume specification: '${spec}': invalid mount config for type "${source.startsWith('/') ? 'bind' : 'volume'}": invalid mount path: '${destination}' mount path must be absolute`);
  const problem = mountDestinationProblem(destination);
  if (problem) throw invalid(field, `invalid volume specification: '${spec}': invalid mount config for type "bind": invalid specification: ${problem}`);
  if (!source.startsWith('/')) return { ...parseVolumeBind(spec, field), source: '', propagation: '' };
  let readonly = false;
  let propagation = 'rprivate';
  for (const o of mode.split(',').filter(Boolean)) {
    if (o === 'ro') readonly = true;
    else if (o === 'rw') readonly = false;
    else if (['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'].includes(o)) propagation = o;
    else if (o === 'z' || o === 'Z' || o === 'nocopy') continue;
    else throw invalid(field, `invalid mode: ${mode}`);
  }
  return { source, destination, readonly, propagation, mode };
}

/** runc's allow-list inside /proc: the files lxcfs provides, which a bind may cover. */
const procMountAllowed = new Set([
  '/proc/cpuinfo', '/proc/diskstats', '/proc/meminfo', '/proc/stat', '/proc/swaps', '/proc/uptime', '/proc/loadavg',
  '/proc/slabinfo', '/proc/net/dev', '/proc/sys/kernel/ns_last_pid',
]);

/**
 * Why a user mount (bind, volume, tmpfs) may not go at `destination`, or null: not on `/`
 * (Docker), not over /proc or /sys (the default mount would be dropped: the container would see
 * the source instead of its own procfs, and the masked paths with it), and inside /proc only
 * runc's allow-list (a mount there could hide a masked or read-only path).
 */
export function mountDestinationProblem(destination: string): string | null {
  const d = posix.normalize(destination).replace(/(.)\/+$/, '$1');
  if (d === '/') return "destination can't be '/'";
  if (d === '/proc' || d === '/sys') return `destination can't be '${d}': it would replace the container's ${d === '/proc' ? 'procfs' : 'sysfs'}`;
  if (d.startsWith('/proc/') && !procMountAllowed.has(d)) return `'${d}' cannot be mounted because it is inside /proc`;
  return null;
}

/** One HostConfig.Mounts entry (the `--mount` form): bind, tmpfs, volume. */
export interface MountSpec {
  Type: 'bind' | 'tmpfs' | 'volume';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string> | null; DriverConfig?: { Name?: string; Options?: Record<string, string> | null } | null } | null;
}

/** HostConfig.Mounts as validated at create (empty when absent). */
export function mountsOf(h: HostConfig): MountSpec[] {
  const m = (h as { Mounts?: unknown }).Mounts;
  return Array.isArray(m) ? (m as MountSpec[]) : [];
}

const propagations = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

/**
 * HostConfig.Mounts, with Docker's words (volume/mounts/validate.go): an absolute Target that
 * `mountDestinationProblem` allows; a bind's Source absolute and present on the host; a tmpfs
 * without a Source; a volume's Source empty (anonymous) or a valid volume name.
 */
function validateMounts(mounts: unknown): void {
  if (mounts === undefined || mounts === null) return;
  if (!Array.isArray(mounts)) throw invalid('HostConfig.Mounts', 'invalid HostConfig.Mounts: expected a list of mounts');
  for (const [i, raw] of mounts.entries()) {
    const field = `HostConfig.Mounts[${i}]`;
    const m = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    const type = typeof m.Type === 'string' ? m.Type : '';
    const bad = (why: string): BerthError => invalid(field, `invalid mount config for type "${type}": ${why}`);
    const target = m.Target;
    if (typeof target !== 'string' || target === '') throw bad('field Target must not be empty');
    if (!target.startsWith('/')) throw bad(`invalid mount path: '${target}' mount path must be absolute`);
    const problem = mountDestinationProblem(target);
    if (problem) throw bad(`invalid specification: ${problem}`);
    const source = typeof m.Source === 'string' ? m.Source : '';
    if (type === 'bind') {
      if (m.TmpfsOptions) throw bad('field TmpfsOptions must not be specified');
      if (m.VolumeOptions) throw bad('field VolumeOptions must not be specified');
      if (source === '') throw bad('field Source must not be empty');
      if (!source.startsWith('/')) throw bad(`invalid mount path: '${source}' mount path must be absolute`);
      if (!existsSync(source)) throw bad(`bind source path does not exist: ${source}`);
      const prop = (m.BindOptions as { Propagation?: unknown } | null | undefined)?.Propagation;
      if (prop !== undefined && prop !== '' && (typeof prop !== 'string' || !propagations.includes(prop))) throw bad(`invalid propagation mode: ${String(prop)}`);
    } else if (type === 'tmpfs') {
      if (source !== '') throw bad('field Source must not be specified');
      if (m.BindOptions) throw bad('field BindOptions must not be specified');
      if (m.VolumeOptions) throw bad('field VolumeOptions must not be specified');
      const t = (m.TmpfsOptions ?? {}) as { SizeBytes?: unknown; Mode?: unknown };
      if (t.SizeBytes !== undefined && (typeof t.SizeBytes !== 'number' || !Number.isSafeInteger(t.SizeBytes) || t.SizeBytes < 0)) throw bad(`invalid tmpfs size: ${String(t.SizeBytes)}`);
      if (t.Mode !== undefined && (typeof t.Mode !== 'number' || !Number.isInteger(t.Mode) || t.Mode < 0 || t.Mode > 0o7777)) throw bad(`invalid tmpfs mode: ${String(t.Mode)}`);
    } else if (type === 'volume') {
      if (m.BindOptions) throw bad('field BindOptions must not be specified');
      if (m.TmpfsOptions) throw bad('field TmpfsOptions must not be specified');
      if (source !== '') {
        const problem2 = volumeNameProblem(source);
        if (problem2) throw invalid(field, `create ${source}: ${problem2}`);
      }
      const vo = m.VolumeOptions;
      if (vo !== undefined && vo !== null) {
        if (typeof vo !== 'object') throw bad('invalid VolumeOptions');
        const v = vo as { NoCopy?: unknown; Labels?: unknown; DriverConfig?: unknown };
        if (v.NoCopy !== undefined && typeof v.NoCopy !== 'boolean') throw bad('invalid VolumeOptions.NoCopy: expected a boolean');
        for (const [k, map] of [['Labels', v.Labels], ['DriverConfig.Options', (v.DriverConfig as { Options?: unknown } | null | undefined)?.Options]] as const)
          if (map !== undefined && map !== null && (typeof map !== 'object' || Object.values(map).some((x) => typeof x !== 'string'))) throw bad(`invalid VolumeOptions.${k}: expected an object of strings`);
      }
    }
    else throw bad('mount type unknown');
  }
}
