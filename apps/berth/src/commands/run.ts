/**
 * `run` and `create`. The request sequence is docker's (engine-api.md §6): create (pulling on
 * "No such image") → attach (hijacked) → wait?condition=next-exit|removed (headers only, so the
 * wait is registered before the start) → start → resize for a TTY → the exit code from wait.
 */
import { readFileSync } from 'node:fs';
import type { HttpResponse } from '../http1.js';
import type { ContainerCreateBody, ContainerCreateResponse, HostConfig, WaitResponse } from '@berth/api/wire';
import { bool, int, list, str, UsageError, type CommandSpec, type FlagSpec, type ParsedArgs } from '../cli/args.js';
import { CliError, DaemonError, readAll, type Client } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { consoleSize, DEFAULT_DETACH_KEYS, monitorTtySize, proxySignals, runSession } from '../session.js';
import { absoluteBindSource, parseMountFlags } from './volume-mount.js';

const L = 'list';
const S = 'string';

/** Flags shared by run and create (docker's container options). */
export const CONTAINER_FLAGS: FlagSpec[] = [
  { name: 'add-host', type: 'list', valueName: L, description: 'Add a custom host-to-IP mapping (host:ip)' },
  { name: 'attach', short: 'a', type: 'list', valueName: L, description: 'Attach to STDIN, STDOUT or STDERR' },
  { name: 'blkio-weight', type: 'int', valueName: 'uint16', description: 'Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)' },
  { name: 'blkio-weight-device', type: 'list', valueName: L, description: 'Block IO weight (relative device weight)' },
  { name: 'cap-add', type: 'list', valueName: L, description: 'Add Linux capabilities' },
  { name: 'cap-drop', type: 'list', valueName: L, description: 'Drop Linux capabilities' },
  { name: 'cgroup-parent', type: 'string', valueName: S, description: 'Optional parent cgroup for the container' },
  { name: 'cgroupns', type: 'string', valueName: S, description: 'Cgroup namespace to use (host|private)' },
  { name: 'cpu-period', type: 'int', valueName: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) period' },
  { name: 'cpu-quota', type: 'int', valueName: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
  { name: 'cpu-shares', short: 'c', type: 'int', valueName: 'int', description: 'CPU shares (relative weight)' },
  { name: 'cpus', type: 'string', valueName: 'decimal', description: 'Number of CPUs' },
  { name: 'cpuset-cpus', type: 'string', valueName: S, description: 'CPUs in which to allow execution (0-3, 0,1)' },
  { name: 'cpuset-mems', type: 'string', valueName: S, description: 'MEMs in which to allow execution (0-3, 0,1)' },
  { name: 'device', type: 'list', valueName: L, description: 'Add a host device to the container' },
  { name: 'device-cgroup-rule', type: 'list', valueName: L, description: 'Add a rule to the cgroup allowed devices list' },
  { name: 'device-read-bps', type: 'list', valueName: L, description: 'Limit read rate (bytes per second) from a device' },
  { name: 'device-read-iops', type: 'list', valueName: L, description: 'Limit read rate (IO per second) from a device' },
  { name: 'device-write-bps', type: 'list', valueName: L, description: 'Limit write rate (bytes per second) to a device' },
  { name: 'device-write-iops', type: 'list', valueName: L, description: 'Limit write rate (IO per second) to a device' },
  { name: 'dns', type: 'list', valueName: L, description: 'Set custom DNS servers' },
  { name: 'dns-option', type: 'list', valueName: L, description: 'Set DNS options' },
  { name: 'dns-search', type: 'list', valueName: L, description: 'Set custom DNS search domains' },
  { name: 'domainname', type: 'string', valueName: S, description: 'Container NIS domain name' },
  { name: 'entrypoint', type: 'string', valueName: S, description: 'Overwrite the default ENTRYPOINT of the image' },
  { name: 'env', short: 'e', type: 'list', valueName: L, description: 'Set environment variables' },
  { name: 'env-file', type: 'list', valueName: L, description: 'Read in a file of environment variables' },
  { name: 'expose', type: 'list', valueName: L, description: 'Expose a port or a range of ports' },
  { name: 'group-add', type: 'list', valueName: L, description: 'Add additional groups to join' },
  { name: 'health-cmd', type: 'string', valueName: S, description: 'Command to run to check health' },
  { name: 'health-interval', type: 'string', valueName: 'duration', description: 'Time between running the check (ms|s|m|h) (default 0s)' },
  { name: 'health-retries', type: 'int', valueName: 'int', description: 'Consecutive failures needed to report unhealthy' },
  { name: 'health-start-interval', type: 'string', valueName: 'duration', description: 'Time between running the check during the start period (ms|s|m|h) (default 0s)' },
  { name: 'health-start-period', type: 'string', valueName: 'duration', description: 'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)' },
  { name: 'health-timeout', type: 'string', valueName: 'duration', description: 'Maximum time to allow one check to run (ms|s|m|h) (default 0s)' },
  { name: 'hostname', short: 'h', type: 'string', valueName: S, description: 'Container host name' },
  { name: 'init', type: 'bool', description: 'Run an init inside the container that forwards signals and reaps processes' },
  { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
  { name: 'ipc', type: 'string', valueName: S, description: 'IPC mode to use' },
  { name: 'kernel-memory', type: 'string', valueName: 'bytes', description: 'Kernel memory limit (deprecated; refused on cgroup v2)' },
  { name: 'label', short: 'l', type: 'list', valueName: L, description: 'Set meta data on a container' },
  { name: 'label-file', type: 'list', valueName: L, description: 'Read in a line delimited file of labels' },
  { name: 'link', type: 'list', valueName: L, description: 'Add link to another container' },
  { name: 'log-driver', type: 'string', valueName: S, description: 'Logging driver for the container' },
  { name: 'log-opt', type: 'list', valueName: L, description: 'Log driver options' },
  { name: 'memory', short: 'm', type: 'string', valueName: 'bytes', description: 'Memory limit' },
  { name: 'memory-reservation', type: 'string', valueName: 'bytes', description: 'Memory soft limit' },
  { name: 'memory-swap', type: 'string', valueName: 'bytes', description: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
  { name: 'name', type: 'string', valueName: S, description: 'Assign a name to the container' },
  { name: 'ip', type: 'string', valueName: S, description: 'IPv4 address (e.g., 172.30.100.104)' },
  { name: 'ip6', type: 'string', valueName: S, description: 'IPv6 address (e.g., 2001:db8::33)' },
  { name: 'mac-address', type: 'string', valueName: S, description: 'Container MAC address (e.g., 92:d0:c6:0a:29:33)' },
  { name: 'network', type: 'string', valueName: 'network', aliases: ['net'], description: 'Connect a container to a network' },
  { name: 'no-healthcheck', type: 'bool', description: 'Disable any container-specified HEALTHCHECK' },
  { name: 'network-alias', type: 'list', valueName: L, aliases: ['net-alias'], description: 'Add network-scoped alias for the container' },
  { name: 'oom-kill-disable', type: 'bool', description: 'Disable OOM Killer' },
  { name: 'oom-score-adj', type: 'int', valueName: 'int', description: "Tune host's OOM preferences (-1000 to 1000)" },
  { name: 'pid', type: 'string', valueName: S, description: 'PID namespace to use' },
  { name: 'pids-limit', type: 'int', valueName: 'int', description: 'Tune container pids limit (set -1 for unlimited)' },
  { name: 'platform', type: 'string', valueName: S, description: 'Set platform if server is multi-platform capable' },
  { name: 'privileged', type: 'bool', description: 'Give extended privileges to this container' },
  { name: 'publish', short: 'p', type: 'list', valueName: L, description: "Publish a container's port(s) to the host" },
  { name: 'publish-all', short: 'P', type: 'bool', description: 'Publish all exposed ports to random ports' },
  { name: 'read-only', type: 'bool', description: "Mount the container's root filesystem as read only" },
  { name: 'restart', type: 'string', valueName: S, description: 'Restart policy to apply when a container exits', default: 'no' },
  { name: 'rm', type: 'bool', description: 'Automatically remove the container and its associated anonymous volumes when it exits' },
  { name: 'runtime', type: 'string', valueName: S, description: 'Runtime to use for this container' },
  { name: 'security-opt', type: 'list', valueName: L, description: 'Security Options' },
  { name: 'shm-size', type: 'string', valueName: 'bytes', description: 'Size of /dev/shm' },
  { name: 'stop-signal', type: 'string', valueName: S, description: 'Signal to stop the container' },
  { name: 'stop-timeout', type: 'int', valueName: 'int', description: 'Timeout (in seconds) to stop a container' },
  { name: 'storage-opt', type: 'list', valueName: L, description: 'Storage driver options for the container' },
  { name: 'sysctl', type: 'list', valueName: 'map', description: 'Sysctl options' },
  { name: 'tmpfs', type: 'list', valueName: L, description: 'Mount a tmpfs directory' },
  { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
  { name: 'ulimit', type: 'list', valueName: 'ulimit', description: 'Ulimit options' },
  { name: 'user', short: 'u', type: 'string', valueName: S, description: 'Username or UID (format: <name|uid>[:<group|gid>])' },
  { name: 'userns', type: 'string', valueName: S, description: 'User namespace to use' },
  { name: 'uts', type: 'string', valueName: S, description: 'UTS namespace to use' },
  { name: 'volume', short: 'v', type: 'list', valueName: L, description: 'Bind mount a volume' },
  { name: 'volumes-from', type: 'list', valueName: L, description: 'Mount volumes from the specified container(s)' },
  { name: 'mount', type: 'list', valueName: 'mount', description: 'Attach a filesystem mount to the container' },
  { name: 'volume-driver', type: 'string', valueName: S, description: 'Optional volume driver for the container' },
  { name: 'workdir', short: 'w', type: 'string', valueName: S, description: 'Working directory inside the container' },
];

const RUN_ONLY: FlagSpec[] = [
  { name: 'detach', short: 'd', type: 'bool', description: 'Run container in background and print container ID' },
  { name: 'detach-keys', type: 'string', valueName: S, description: 'Override the key sequence for detaching a container' },
  { name: 'sig-proxy', type: 'bool', default: true, description: 'Proxy received signals to the process' },
];

function byName(a: FlagSpec, b: FlagSpec): number {
  return a.name < b.name ? -1 : 1;
}

const runSpec: CommandSpec = {
  usage: 'run [OPTIONS] IMAGE [COMMAND] [ARG...]',
  description: 'Create and run a new container from an image',
  flags: [...CONTAINER_FLAGS, ...RUN_ONLY].sort(byName),
  stopAtFirstPositional: true,
  minArgs: 1,
  aliases: ['berth container run', 'berth run'],
};

const createSpec: CommandSpec = {
  usage: 'create [OPTIONS] IMAGE [COMMAND] [ARG...]',
  description: 'Create a new container',
  flags: CONTAINER_FLAGS,
  stopAtFirstPositional: true,
  minArgs: 1,
  aliases: ['berth container create', 'berth create'],
};

/** docker's RAMInBytes: binary units, optional b/ib suffix. */
export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(s.trim());
  if (!m) throw new CliError(`invalid size: '${s}'`, 125);
  const mult: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.trunc(Number(m[1]) * (m[2] ? mult[m[2].toLowerCase()]! : 1));
}

/** docker's NanoCPUs flag: a decimal with at most 9 fractional digits (the sign is the daemon's to judge). */
export function parseCpus(s: string): number {
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(s.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new CliError(`invalid argument "${s}" for "--cpus" flag: failed to parse ${s} as a rational number`, 125);
  if ((m[3] ?? '').replace(/0+$/, '').length > 9) throw new CliError(`invalid argument "${s}" for "--cpus" flag: value is too precise`, 125);
  const n = Math.round(Number(`${m[2] || '0'}.${m[3] || '0'}`) * 1e9);
  return m[1] === '-' ? -n : n;
}

const DEVICE_MODE = /^[rwm]{1,3}$/;

/** `--device SRC[:DST][:PERMS]` (docker's parseDevice). */
export function parseDevice(spec: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  const parts = spec.split(':');
  let [src, dst, perms] = [parts[0] ?? '', '', 'rwm'];
  if (parts.length === 2) {
    if (DEVICE_MODE.test(parts[1]!)) perms = parts[1]!;
    else dst = parts[1]!;
  } else if (parts.length === 3) {
    dst = parts[1]!;
    perms = parts[2]!;
    if (!DEVICE_MODE.test(perms)) throw new CliError(`invalid argument "${spec}" for "--device" flag: invalid device mode: ${perms}`, 125);
  } else if (parts.length > 3) throw new CliError(`invalid argument "${spec}" for "--device" flag: invalid device specification: ${spec}`, 125);
  if (!src.startsWith('/')) throw new CliError(`invalid argument "${spec}" for "--device" flag: ${src} is not an absolute path`, 125);
  return { PathOnHost: src, PathInContainer: dst || src, CgroupPermissions: perms };
}

/** `--device-read-bps /dev/sda:1mb` and friends, `--blkio-weight-device /dev/sda:200`, `--kernel-memory`. */
function deviceResources(p: ParsedArgs): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const pair = (flag: string, v: string): [string, string] => {
    const i = v.lastIndexOf(':');
    if (i <= 0 || !v.startsWith('/')) throw new CliError(`invalid argument "${v}" for "--${flag}" flag: bad format: ${v}`, 125);
    return [v.slice(0, i), v.slice(i + 1)];
  };
  const throttles = [
    ['device-read-bps', 'BlkioDeviceReadBps', true],
    ['device-write-bps', 'BlkioDeviceWriteBps', true],
    ['device-read-iops', 'BlkioDeviceReadIOps', false],
    ['device-write-iops', 'BlkioDeviceWriteIOps', false],
  ] as const;
  for (const [flag, key, bytes] of throttles) {
    const items = list(p, flag).map((v) => {
      const [path, rate] = pair(flag, v);
      if (!bytes && !/^\d+$/.test(rate)) throw new CliError(`invalid argument "${v}" for "--${flag}" flag: invalid rate for device: ${v}. The correct format is <device-path>:<number>. Number must be a positive integer`, 125);
      return { Path: path, Rate: bytes ? parseBytes(rate) : Number(rate) };
    });
    if (items.length) out[key] = items;
  }
  const weights = list(p, 'blkio-weight-device').map((v) => {
    const [path, w] = pair('blkio-weight-device', v);
    if (!/^\d+$/.test(w)) throw new CliError(`invalid argument "${v}" for "--blkio-weight-device" flag: invalid weight for device: ${v}`, 125);
    return { Path: path, Weight: Number(w) };
  });
  if (weights.length) out.BlkioWeightDevice = weights;
  if (str(p, 'kernel-memory')) out.KernelMemory = parseBytes(str(p, 'kernel-memory'));
  return out;
}

/** `KEY=value` stays; a bare `KEY` takes the value from our environment when set. */
export function envEntry(e: string): string {
  if (e.includes('=')) return e;
  const v = process.env[e];
  return v === undefined ? e : `${e}=${v}`;
}

export function readEnvFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`open ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`, 125);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s+/, ''))
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map(envEntry);
}

/**
 * As the docker CLI does: `seccomp=<file>` goes to the daemon as the profile's JSON (compacted),
 * so that the file is read where the user is.
 */
export function securityOpt(opt: string): string {
  const m = /^seccomp[=:](.*)$/s.exec(opt);
  const path = m?.[1];
  if (path === undefined || ['unconfined', 'builtin', ''].includes(path) || path.trimStart().startsWith('{')) return opt;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message;
    throw new CliError(`opening seccomp profile (${path}) failed: open ${path}: ${why}`, 125);
  }
  try {
    return `seccomp=${JSON.stringify(JSON.parse(text))}`;
  } catch (err) {
    throw new CliError(`compacting json for seccomp profile (${path}) failed: ${(err as Error).message}`, 125);
  }
}

export interface PortSpec {
  exposed: Record<string, Record<string, never>>;
  bindings: Record<string, { HostIp: string; HostPort: string }[]>;
}

function range(s: string): [number, number] {
  const [a, b] = s.split('-');
  const lo = Number(a);
  const hi = b === undefined ? lo : Number(b);
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > 65535 || hi < lo) throw new CliError(`invalid port: ${s}`, 125);
  return [lo, hi];
}

/** `-p [ip:][hostPort:]containerPort[/proto]`, ranges included. */
export function parsePorts(specs: string[], expose: string[] = []): PortSpec {
  const out: PortSpec = { exposed: {}, bindings: {} };
  for (const e of expose) {
    const [p, proto = 'tcp'] = e.split('/');
    const [lo, hi] = range(p!);
    for (let port = lo; port <= hi; port++) out.exposed[`${port}/${proto}`] = {};
  }
  for (const spec of specs) {
    let rest = spec;
    let proto = 'tcp';
    const slash = rest.lastIndexOf('/');
    if (slash >= 0) {
      proto = rest.slice(slash + 1).toLowerCase();
      rest = rest.slice(0, slash);
    }
    let ip = '';
    if (rest.startsWith('[')) {
      const close = rest.indexOf(']');
      ip = rest.slice(1, close);
      rest = rest.slice(close + 2);
    }
    const parts = rest.split(':');
    let hostPart = '';
    let containerPart: string;
    if (parts.length === 1) containerPart = parts[0]!;
    else if (parts.length === 2) [hostPart, containerPart] = parts as [string, string];
    else if (parts.length === 3) {
      [ip, hostPart, containerPart] = parts as [string, string, string];
    } else throw new CliError(`invalid proxy spec: ${spec}`, 125);
    if (!containerPart) throw new CliError(`no port specified: ${spec}<empty>`, 125);
    const [clo, chi] = range(containerPart);
    const hostRange = hostPart ? range(hostPart) : undefined;
    const n = chi - clo;
    for (let k = 0; k <= n; k++) {
      const key = `${clo + k}/${proto}`;
      out.exposed[key] = {};
      let hostPort = '';
      if (hostRange) {
        if (hostRange[1] - hostRange[0] === n) hostPort = String(hostRange[0] + k);
        else hostPort = hostRange[0] === hostRange[1] ? String(hostRange[0]) : `${hostRange[0]}-${hostRange[1]}`;
      }
      (out.bindings[key] ??= []).push({ HostIp: ip, HostPort: hostPort });
    }
  }
  return out;
}

function parseRestart(s: string): HostConfig['RestartPolicy'] {
  const [name, max] = s.split(':');
  if (!['no', 'always', 'unless-stopped', 'on-failure', ''].includes(name!)) throw new CliError(`invalid restart policy '${name}'`, 125);
  if (max !== undefined && name !== 'on-failure') throw new CliError(`invalid restart policy format: maximum retry count can only be used with 'on-failure'`, 125);
  return { Name: name as HostConfig['RestartPolicy']['Name'], MaximumRetryCount: max ? Number(max) : 0 };
}

function parseUlimit(s: string): { Name: string; Soft: number; Hard: number } {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(s);
  if (!m) throw new CliError(`invalid ulimit argument: ${s}`, 125);
  const soft = Number(m[2]);
  return { Name: m[1]!, Soft: soft, Hard: m[3] !== undefined ? Number(m[3]) : soft };
}

function kvMap(items: string[], lookupEnv = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items) {
    const eq = it.indexOf('=');
    if (eq < 0) out[it] = lookupEnv ? (process.env[it] ?? '') : '';
    else out[it.slice(0, eq)] = it.slice(eq + 1);
  }
  return out;
}

/** Turns the parsed flags into the create body (Config flattened + HostConfig + NetworkingConfig). */
export function buildCreateBody(p: ParsedArgs, detach: boolean): ContainerCreateBody {
  const [image, ...cmd] = p.args;
  const attach = list(p, 'attach').map((a) => a.toLowerCase());
  for (const a of attach) if (!['stdin', 'stdout', 'stderr'].includes(a)) throw new CliError(`invalid argument "${a}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`, 125);
  if (detach && attach.length) throw new CliError('Conflicting options: -a and -d', 125);
  const interactive = bool(p, 'interactive');
  const tty = bool(p, 'tty');
  let attachStdin = false;
  let attachStdout = false;
  let attachStderr = false;
  if (attach.length) {
    attachStdin = attach.includes('stdin');
    attachStdout = attach.includes('stdout');
    attachStderr = attach.includes('stderr');
  } else if (!detach) {
    attachStdout = true;
    attachStderr = true;
    attachStdin = interactive;
  }
  const env = [...list(p, 'env-file').flatMap(readEnvFile), ...list(p, 'env').map(envEntry)];
  const labels: Record<string, string> = {};
  for (const f of list(p, 'label-file')) Object.assign(labels, kvMap(readEnvFile(f)));
  Object.assign(labels, kvMap(list(p, 'label')));
  const ports = parsePorts(list(p, 'publish'), list(p, 'expose'));
  const binds: string[] = [];
  const volumes: Record<string, Record<string, never>> = {};
  for (const v of list(p, 'volume')) {
    // As the docker CLI (23+): a host part `.` or `./...` is made absolute; any other relative one names a volume.
    if (v.includes(':')) binds.push(absoluteBindSource(v));
    else volumes[v] = {};
  }
  const tmpfs: Record<string, string> = {};
  for (const t of list(p, 'tmpfs')) {
    const i = t.indexOf(':');
    if (i < 0) tmpfs[t] = '';
    else tmpfs[t.slice(0, i)] = t.slice(i + 1);
  }
  let entrypoint: string[] | null = null;
  if (p.given.has('entrypoint')) entrypoint = [str(p, 'entrypoint')];
  const network = str(p, 'network') || 'default';
  let nanoCpus = 0;
  // A negative or too large value goes to the daemon, which answers with Docker's range message.
  if (str(p, 'cpus')) nanoCpus = parseCpus(str(p, 'cpus'));
  const memorySwap = str(p, 'memory-swap') === '-1' ? -1 : str(p, 'memory-swap') ? parseBytes(str(p, 'memory-swap')) : 0;
  const hostConfig: Partial<HostConfig> & Record<string, unknown> = {
    Binds: binds.length ? binds : null,
    ContainerIDFile: '',
    LogConfig: { Type: str(p, 'log-driver'), Config: kvMap(list(p, 'log-opt')) },
    NetworkMode: network,
    PortBindings: ports.bindings,
    RestartPolicy: parseRestart(str(p, 'restart')),
    AutoRemove: bool(p, 'rm'),
    VolumeDriver: str(p, 'volume-driver'),
    VolumesFrom: list(p, 'volumes-from').length ? list(p, 'volumes-from') : null,
    ConsoleSize: tty ? consoleSize() : [0, 0],
    CapAdd: list(p, 'cap-add').length ? list(p, 'cap-add') : null,
    CapDrop: list(p, 'cap-drop').length ? list(p, 'cap-drop') : null,
    CgroupnsMode: str(p, 'cgroupns'),
    Dns: list(p, 'dns'),
    DnsOptions: list(p, 'dns-option'),
    DnsSearch: list(p, 'dns-search'),
    ExtraHosts: list(p, 'add-host').length ? list(p, 'add-host') : null,
    GroupAdd: list(p, 'group-add').length ? list(p, 'group-add') : null,
    IpcMode: str(p, 'ipc'),
    Cgroup: '',
    Links: list(p, 'link').length ? list(p, 'link') : null,
    OomScoreAdj: int(p, 'oom-score-adj'),
    PidMode: str(p, 'pid'),
    Privileged: bool(p, 'privileged'),
    PublishAllPorts: bool(p, 'publish-all'),
    ReadonlyRootfs: bool(p, 'read-only'),
    SecurityOpt: list(p, 'security-opt').length ? list(p, 'security-opt').map(securityOpt) : null,
    UTSMode: str(p, 'uts'),
    UsernsMode: str(p, 'userns'),
    ShmSize: str(p, 'shm-size') ? parseBytes(str(p, 'shm-size')) : 0,
    Isolation: '',
    CpuShares: int(p, 'cpu-shares'),
    Memory: str(p, 'memory') ? parseBytes(str(p, 'memory')) : 0,
    NanoCpus: nanoCpus,
    CgroupParent: str(p, 'cgroup-parent'),
    BlkioWeight: int(p, 'blkio-weight'),
    CpuPeriod: int(p, 'cpu-period'),
    CpuQuota: int(p, 'cpu-quota'),
    CpuRealtimePeriod: 0,
    CpuRealtimeRuntime: 0,
    CpusetCpus: str(p, 'cpuset-cpus'),
    CpusetMems: str(p, 'cpuset-mems'),
    Devices: list(p, 'device').map(parseDevice),
    DeviceCgroupRules: list(p, 'device-cgroup-rule').length ? list(p, 'device-cgroup-rule') : null,
    MemoryReservation: str(p, 'memory-reservation') ? parseBytes(str(p, 'memory-reservation')) : 0,
    MemorySwap: memorySwap,
    MemorySwappiness: -1,
    OomKillDisable: bool(p, 'oom-kill-disable'),
    PidsLimit: int(p, 'pids-limit'),
    Ulimits: list(p, 'ulimit').length ? list(p, 'ulimit').map(parseUlimit) : null,
    MaskedPaths: null,
    ReadonlyPaths: null,
  };
  if (Object.keys(tmpfs).length) hostConfig.Tmpfs = tmpfs;
  if (list(p, 'mount').length) hostConfig.Mounts = parseMountFlags(list(p, 'mount'));
  Object.assign(hostConfig, deviceResources(p));
  if (list(p, 'sysctl').length) hostConfig.Sysctls = kvMap(list(p, 'sysctl'));
  if (list(p, 'storage-opt').length) hostConfig.StorageOpt = kvMap(list(p, 'storage-opt'));
  if (str(p, 'runtime')) hostConfig.Runtime = str(p, 'runtime');
  if (p.given.has('init')) hostConfig.Init = bool(p, 'init');
  const aliases = list(p, 'network-alias');
  const body: ContainerCreateBody = {
    Hostname: str(p, 'hostname'),
    Domainname: str(p, 'domainname'),
    User: str(p, 'user'),
    AttachStdin: attachStdin,
    AttachStdout: attachStdout,
    AttachStderr: attachStderr,
    Tty: tty,
    OpenStdin: interactive,
    StdinOnce: interactive && attachStdin,
    Env: env,
    Cmd: cmd.length ? cmd : null,
    Image: image!,
    Volumes: volumes,
    WorkingDir: str(p, 'workdir'),
    Entrypoint: entrypoint,
    OnBuild: null,
    Labels: labels,
    HostConfig: hostConfig,
    NetworkingConfig: {
      EndpointsConfig: {
        [network]: {
          IPAMConfig: str(p, 'ip') || str(p, 'ip6') ? { ...(str(p, 'ip') ? { IPv4Address: str(p, 'ip') } : {}), ...(str(p, 'ip6') ? { IPv6Address: str(p, 'ip6') } : {}) } : null,
          Links: null,
          Aliases: aliases.length ? aliases : null,
          ...(str(p, 'mac-address') ? { MacAddress: str(p, 'mac-address') } : {}),
        },
      },
    },
  };
  if (Object.keys(ports.exposed).length) body.ExposedPorts = ports.exposed;
  if (str(p, 'stop-signal')) body.StopSignal = str(p, 'stop-signal');
  if (p.given.has('stop-timeout')) body.StopTimeout = int(p, 'stop-timeout');
  const health = healthcheckOf(p);
  if (health) body.Healthcheck = health;
  return body;
}

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds (docker's duration flags), or Go's error text. */
export function parseGoDuration(orig: string): number | { error: string } {
  const q = JSON.stringify;
  const invalid = { error: `time: invalid duration ${q(orig)}` };
  let s = orig;
  const neg = s.startsWith('-');
  if (s.startsWith('-') || s.startsWith('+')) s = s.slice(1);
  if (s === '0') return 0;
  if (s === '') return invalid;
  let total = 0;
  while (s) {
    const num = /^(\d*)(?:\.(\d*))?/.exec(s)!;
    if (!/^[\d.]/.test(s) || (num[1] === '' && !num[2])) return invalid;
    s = s.slice(num[0].length);
    const unitText = /^[^\d.]*/.exec(s)![0];
    if (unitText === '') return { error: `time: missing unit in duration ${q(orig)}` };
    const unit = DURATION_UNITS[unitText];
    if (unit === undefined) return { error: `time: unknown unit ${q(unitText)} in duration ${q(orig)}` };
    total += Number(num[1] || '0') * unit + (num[2] ? Math.round(Number(`0.${num[2]}`) * unit) : 0);
    s = s.slice(unitText.length);
  }
  return neg ? -total : total;
}

function durationFlag(p: ParsedArgs, name: string): number {
  const raw = str(p, name);
  if (!p.given.has(name)) return 0;
  const ns = parseGoDuration(raw);
  if (typeof ns !== 'number') throw new UsageError(`invalid argument "${raw}" for "--${name}" flag: ${ns.error}`);
  return ns;
}

/** docker's healthcheck flags: --no-healthcheck is Test ["NONE"]; otherwise only what was set (Go's omitempty). */
export function healthcheckOf(p: ParsedArgs): NonNullable<ContainerCreateBody['Healthcheck']> | undefined {
  const cmd = str(p, 'health-cmd');
  const durations = {
    Interval: durationFlag(p, 'health-interval'),
    Timeout: durationFlag(p, 'health-timeout'),
    StartPeriod: durationFlag(p, 'health-start-period'),
    StartInterval: durationFlag(p, 'health-start-interval'),
  };
  const retries = p.given.has('health-retries') ? int(p, 'health-retries') : 0;
  const any = cmd !== '' || retries !== 0 || Object.values(durations).some((v) => v !== 0);
  if (bool(p, 'no-healthcheck')) {
    if (any) throw new CliError('--no-healthcheck conflicts with --health-* options', 125);
    return { Test: ['NONE'] };
  }
  if (!any) return undefined;
  const names = { Interval: 'interval', Timeout: 'timeout', StartPeriod: 'start-period', StartInterval: 'start-interval' } as const;
  for (const k of ['Interval', 'Timeout'] as const) if (durations[k] < 0) throw new CliError(`--health-${names[k]} cannot be negative`, 125);
  if (retries < 0) throw new CliError('--health-retries cannot be negative', 125);
  for (const k of ['StartPeriod', 'StartInterval'] as const) if (durations[k] < 0) throw new CliError(`--health-${names[k]} cannot be negative`, 125);
  const out: NonNullable<ContainerCreateBody['Healthcheck']> = {};
  if (cmd) out.Test = ['CMD-SHELL', cmd];
  for (const [k, v] of Object.entries(durations)) if (v !== 0) out[k as keyof typeof durations] = v;
  if (retries) out.Retries = retries;
  return out;
}

/** `name[:tag][@digest]` → (name, tag) as docker's pull sends them. */
export function splitReference(ref: string): { name: string; tag: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { name: ref.slice(0, at), tag: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { name: ref, tag: 'latest' };
}

/** Prints a JSON-message stream (pull, import) and throws on an in-band error. */
export async function printJsonMessages(res: HttpResponse, write: (s: string) => void): Promise<void> {
  let buf = '';
  let error: string | undefined;
  const handle = (line: string): void => {
    if (!line.trim()) return;
    let m: { stream?: string; status?: string; id?: string; progress?: string; error?: string; errorDetail?: { message: string } };
    try {
      m = JSON.parse(line);
    } catch {
      return;
    }
    if (m.errorDetail || m.error) error = m.errorDetail?.message ?? m.error;
    else if (m.stream !== undefined) write(m.stream);
    else if (m.status !== undefined && !m.progress) write(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
  };
  for await (const chunk of res) {
    buf += (chunk as Buffer).toString('utf8');
    let i: number;
    while ((i = buf.search(/\r?\n/)) >= 0) {
      handle(buf.slice(0, i));
      buf = buf.slice(i + 1).replace(/^\n/, '');
    }
  }
  handle(buf);
  if (error !== undefined) throw new CliError(error);
}

async function createContainer(ctx: Context, body: ContainerCreateBody, name: string, platform: string): Promise<ContainerCreateResponse> {
  const c = ctx.client;
  const query = { name: name || undefined, platform: platform || undefined };
  try {
    return await c.call<ContainerCreateResponse>('POST', '/containers/create', { query, body });
  } catch (err) {
    if (!(err instanceof DaemonError) || err.status !== 404 || !/No such image/i.test(err.daemonMessage)) throw err;
    const { name: repo, tag } = splitReference(body.Image!);
    ctx.err(`Unable to find image '${repo}:${tag}' locally\n`);
    const res = await c.stream('POST', '/images/create', {
      query: { fromImage: repo, tag, platform: platform || undefined },
      headers: { 'X-Registry-Auth': 'e30=' },
    });
    await printJsonMessages(res, ctx.err);
    return c.call<ContainerCreateResponse>('POST', '/containers/create', { query, body });
  }
}

/** Registers the wait before start: resolves once headers arrived, `result` when the body does. */
export async function startWait(c: Client, id: string, condition: string): Promise<{ result: Promise<WaitResponse>; cancel: () => void }> {
  const res = await c.stream('POST', `/containers/${encodeURIComponent(id)}/wait`, { query: { condition } });
  const result = readAll(res).then((b) => {
    const text = b.toString('utf8').trim();
    if (!text) throw new CliError('error waiting for container: unexpected EOF');
    return JSON.parse(text) as WaitResponse;
  });
  result.catch(() => {});
  return { result, cancel: () => res.destroy() };
}

/** docker's mapping of a start error to an exit status. */
export function startErrorStatus(message: string): number {
  if (/executable file not found|no such file or directory|system cannot find the file specified/.test(message)) return 127;
  if (/permission denied|is a directory/.test(message)) return 126;
  return 125;
}

function runError(err: unknown, code?: number): CliError {
  const msg = err instanceof Error ? err.message : String(err);
  return new CliError(`berth: ${msg}\n\nRun 'berth run --help' for more information`, code ?? (err instanceof CliError && err.code !== 1 ? err.code : 125));
}

async function run(ctx: Context, p: ParsedArgs): Promise<number> {
  const detach = bool(p, 'detach');
  let body: ContainerCreateBody;
  try {
    body = buildCreateBody(p, detach);
  } catch (err) {
    throw runError(err);
  }
  if (body.AttachStdin && body.Tty && !process.stdin.isTTY) throw runError(new CliError('the input device is not a TTY'), 1);
  const c = ctx.client;
  let created: ContainerCreateResponse;
  try {
    created = await createContainer(ctx, body, str(p, 'name'), str(p, 'platform'));
  } catch (err) {
    throw runError(err);
  }
  for (const w of created.Warnings ?? []) ctx.err(`WARNING: ${w}\n`);
  const id = created.Id;
  const tty = !!body.Tty;
  const attached = !!(body.AttachStdin || body.AttachStdout || body.AttachStderr);
  const detachKeys = p.given.has('detach-keys') ? str(p, 'detach-keys') : DEFAULT_DETACH_KEYS;

  // The attach and the wait are registered side by side (both before the start, so no output
  // and no exit is missed); the start waits for both.
  const waitFor = startWait(c, id, body.HostConfig?.AutoRemove ? 'removed' : 'next-exit');
  waitFor.catch(() => {});
  let hijacked: Awaited<ReturnType<Client['hijack']>> | undefined;
  if (attached) {
    const query: Record<string, string> = { stream: '1' };
    if (body.AttachStdin) query.stdin = '1';
    if (body.AttachStdout) query.stdout = '1';
    if (body.AttachStderr) query.stderr = '1';
    if (p.given.has('detach-keys')) query.detachKeys = detachKeys;
    try {
      hijacked = await c.hijack(`/containers/${id}/attach`, { query });
    } catch (err) {
      void waitFor.then((w) => w.cancel(), () => {});
      throw runError(err);
    }
  }
  const socket = hijacked?.socket;
  let wait: Awaited<ReturnType<typeof startWait>>;
  try {
    wait = await waitFor;
  } catch (err) {
    socket?.destroy();
    throw runError(err);
  }
  let session: Promise<'eof' | 'detached'> | undefined;
  if (hijacked) {
    session = runSession({ socket: hijacked.socket, head: hijacked.head, tty, stdin: !!body.AttachStdin, detachKeys });
    session.catch(() => {});
  }
  try {
    await c.call('POST', `/containers/${id}/start`);
  } catch (err) {
    socket?.destroy();
    wait.cancel();
    if (body.HostConfig?.AutoRemove) await c.call('DELETE', `/containers/${id}`, { query: { force: '1' } }).catch(() => {});
    const msg = err instanceof DaemonError ? err.daemonMessage : (err as Error).message;
    throw runError(err, startErrorStatus(msg));
  }
  if (!attached) {
    ctx.out(`${id}\n`);
    wait.cancel();
    return 0;
  }
  const stopResize = tty ? monitorTtySize((h, w) => c.call('POST', `/containers/${id}/resize`, { query: { h, w } })) : () => {};
  const stopProxy = !tty && bool(p, 'sig-proxy') ? proxySignals((signal) => c.call('POST', `/containers/${id}/kill`, { query: { signal } })) : () => {};
  let how: 'eof' | 'detached';
  try {
    how = await session!;
  } finally {
    stopResize();
  }
  if (how === 'detached') {
    stopProxy();
    wait.cancel();
    return 0;
  }
  const status = await wait.result;
  stopProxy();
  if (status.Error?.Message) throw new CliError(`berth: ${status.Error.Message}`, 125);
  return status.StatusCode;
}

async function create(ctx: Context, p: ParsedArgs): Promise<number> {
  const body = buildCreateBody(p, true);
  // create keeps docker's attach defaults (stdout/stderr attached) for a later `start -a`
  const attach = list(p, 'attach');
  if (!attach.length) {
    body.AttachStdout = true;
    body.AttachStderr = true;
    body.AttachStdin = bool(p, 'interactive');
    body.StdinOnce = body.AttachStdin;
  }
  const created = await createContainer(ctx, body, str(p, 'name'), str(p, 'platform'));
  for (const w of created.Warnings ?? []) ctx.err(`WARNING: ${w}\n`);
  ctx.out(`${created.Id}\n`);
  return 0;
}

export const commands: Record<string, Command> = {
  run: { spec: runSpec, run },
  create: { spec: createSpec, run: create },
};
