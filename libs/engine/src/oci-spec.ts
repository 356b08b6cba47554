/**
 * Image config + Config + HostConfig -> the OCI runtime spec of a container, with Docker's
 * defaults. Pure: everything read from disk (the seccomp profile, host devices, the
 * container's passwd, other containers' namespaces) arrives as input.
 */
import type { ContainerConfig, HostConfig } from '@berth/api';
import type { OciDevice, OciMount, OciSeccomp, OciSpec, OciUser } from '@berth/runtime';
import { capabilityNumbers, dockerDefaultCapabilities } from '@berth/runtime';
import { ID_RANGE_MESSAGE, MAX_ID, commandLine, idInRange, invalid, isNumericId, mountsOf, parseBind } from './config.js';
import { cpuThermalThrottlePaths, extraOf, type HostResources } from './resources.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Docker's sysctls for a container with a network namespace of its own: any user may bind ports
 * below 1024 and open ICMP echo sockets (ping) in it; both are the container's own business.
 */
const dockerNetSysctls: Readonly<Record<string, string>> = {
  'net.ipv4.ip_unprivileged_port_start': '0',
  'net.ipv4.ping_group_range': '0 2147483647',
};

/** Docker's default masked paths; the per-CPU thermal_throttle directories of the host are added to them at start (`maskedPathsOf`). */
export const dockerMaskedPaths = [
  '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const dockerReadonlyPaths = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface SecurityOptions {
  seccomp: { kind: 'default' } | { kind: 'unconfined' } | { kind: 'file'; path: string };
  noNewPrivileges: boolean;
  /** `systempaths=unconfined`: no masked or read-only paths (Docker's). */
  unconfinedPaths: boolean;
}

/** `--security-opt` values: seccomp=unconfined|<file>, no-new-privileges[:true|false]; label/apparmor accepted and ignored. */
export function parseSecurityOpts(opts: readonly string[] | null): SecurityOptions {
  const out: SecurityOptions = { seccomp: { kind: 'default' }, noNewPrivileges: false, unconfinedPaths: false };
  for (const [i, raw] of (opts ?? []).entries()) {
    const field = `HostConfig.SecurityOpt[${i}]`;
    if (raw === 'no-new-privileges') {
      out.noNewPrivileges = true;
      continue;
    }
    const sep = raw.includes('=') ? '=' : raw.includes(':') ? ':' : null;
    if (!sep) throw invalid(field, `Invalid --security-opt: ${JSON.stringify(raw)}`);
    const key = raw.slice(0, raw.indexOf(sep));
    const value = raw.slice(raw.indexOf(sep) + 1);
    if (key === 'no-new-privileges') {
      if (value !== 'true' && value !== 'false') throw invalid(field, `invalid --security-opt 2: ${JSON.stringify(raw)}`);
      out.noNewPrivileges = value === 'true';
    } else if (key === 'seccomp') {
      if (value === 'unconfined') out.seccomp = { kind: 'unconfined' };
      else if (value === 'builtin' || value === '') out.seccomp = { kind: 'default' };
      else out.seccomp = { kind: 'file', path: value };
    } else if (key === 'systempaths') {
      if (value !== 'unconfined') throw invalid(field, `invalid --security-opt systempaths=${value}: only "unconfined" is supported`);
      out.unconfinedPaths = true;
    } else if (key === 'label' || key === 'apparmor' || key === 'writable-cgroups') {
      // no LSM is loaded by Berth; the cgroup mount stays read-only
      continue;
    } else throw invalid(field, `invalid --security-opt 1: ${JSON.stringify(raw)}`);
  }
  return out;
}

function capName(raw: string, field: string): string {
  const up = raw.toUpperCase();
  if (up === 'ALL') return 'ALL';
  const name = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (capabilityNumbers[name] === undefined) throw invalid(field, `invalid ${field.includes('CapDrop') ? 'CapDrop' : 'CapAdd'}: unknown capability: ${JSON.stringify(name)}`);
  return name;
}

/** Docker's TweakCapabilities: defaults, then drops, then adds; ALL on either side. */
export function containerCapabilities(h: Pick<HostConfig, 'CapAdd' | 'CapDrop' | 'Privileged'>, available?: readonly string[]): string[] {
  // "All" is what the daemon itself may hand out (its bounding set), as Docker's privileged mode.
  const all = available ? Object.keys(capabilityNumbers).filter((c) => available.includes(c)) : Object.keys(capabilityNumbers);
  if (h.Privileged) return all;
  const adds = (h.CapAdd ?? []).map((c, i) => capName(c, `HostConfig.CapAdd[${i}]`));
  const drops = (h.CapDrop ?? []).map((c, i) => capName(c, `HostConfig.CapDrop[${i}]`));
  if (adds.includes('ALL')) return all.filter((c) => !drops.includes(c));
  let caps: string[] = drops.includes('ALL') ? [] : dockerDefaultCapabilities.filter((c) => !drops.includes(c));
  for (const a of adds) if (!caps.includes(a)) caps.push(a);
  caps = caps.sort((a, b) => capabilityNumbers[a]! - capabilityNumbers[b]!);
  return caps;
}

export interface ResolvedUser extends OciUser {
  additionalGids: number[];
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

function parseColonFile(text: string): string[][] {
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

/** A passwd/group id field as moby/sys/user reads it: a number, or 0 when it is not one. */
function idField(f: string | undefined): number {
  return f !== undefined && isNumericId(f) ? Number(f) : 0;
}

/**
 * `user[:group]` (names or numbers) against the container's /etc/passwd and /etc/group, as
 * Docker (moby/sys/user) resolves them: a name must exist; a number need not; the gid of a
 * named or found user is its passwd gid unless a group is given; supplementary groups are the
 * groups listing the user, plus GroupAdd. Every id must be within 0-2147483647: one given as a
 * number, and one read from the image's files (an id past 2^32 would wrap to root in the
 * runtime's 32-bit field).
 */
export function resolveUser(spec: string, passwd: string, group: string, groupAdd: readonly string[] = []): ResolvedUser {
  const users: PasswdEntry[] = parseColonFile(passwd)
    .filter((f) => f.length >= 4)
    .map((f) => ({ name: f[0]!, uid: idField(f[2]), gid: idField(f[3]) }));
  const groups = parseColonFile(group)
    .filter((f) => f.length >= 3)
    .map((f) => ({ name: f[0]!, gid: idField(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));
  const [userPart = '', groupPart] = spec.split(':');
  let uid = 0;
  let gid = 0;
  let name = '';
  const number = (s: string, field = 'User'): number => {
    if (!idInRange(s)) throw invalid(field, ID_RANGE_MESSAGE);
    return Number(s);
  };
  const fromFile = (id: number, what: string): number => {
    if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID) throw invalid('User', `${what} in the container's /etc/${what.startsWith('group') ? 'group' : 'passwd'} has id ${id}: ${ID_RANGE_MESSAGE}`);
    return id;
  };
  if (userPart === '') {
    const root = users.find((u) => u.uid === 0);
    name = root?.name ?? 'root';
  } else if (isNumericId(userPart)) {
    uid = number(userPart);
    const u = users.find((e) => e.uid === uid);
    if (u) {
      gid = fromFile(u.gid, `user ${u.name}'s group`);
      name = u.name;
    }
  } else {
    const u = users.find((e) => e.name === userPart);
    if (!u) throw invalid('User', `unable to find user ${userPart}: no matching entries in passwd file`);
    uid = fromFile(u.uid, `user ${u.name}`);
    gid = fromFile(u.gid, `user ${u.name}'s group`);
    name = u.name;
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (isNumericId(groupPart)) gid = number(groupPart);
    else {
      const g = groups.find((e) => e.name === groupPart);
      if (!g) throw invalid('User', `unable to find group ${groupPart}: no matching entries in group file`);
      gid = fromFile(g.gid, `group ${g.name}`);
    }
  }
  const additional = new Set<number>();
  if (name && (groupPart === undefined || groupPart === ''))
    for (const g of groups) if (g.members.includes(name)) additional.add(fromFile(g.gid, `group ${g.name}`));
  for (const ga of groupAdd) {
    if (isNumericId(ga)) additional.add(number(ga, 'HostConfig.GroupAdd'));
    else {
      const g = groups.find((e) => e.name === ga);
      if (!g) throw invalid('HostConfig.GroupAdd', `Unable to find group ${ga}`);
      additional.add(fromFile(g.gid, `group ${g.name}`));
    }
  }
  // As Docker: the primary group is the first supplementary group too (`id` shows groups=GID).
  additional.delete(gid);
  return { uid, gid, additionalGids: [gid, ...[...additional].sort((a, b) => a - b)] };
}

/** `rw,size=64m,mode=1777` style tmpfs options, as mount options (Docker adds noexec,nosuid,nodev). */
export function tmpfsOptions(opts: string): string[] {
  const given = opts.split(',').filter(Boolean);
  const out = ['noexec', 'nosuid', 'nodev'];
  for (const o of given) {
    if (o === 'exec') out.splice(out.indexOf('noexec'), 1);
    else if (o === 'suid') out.splice(out.indexOf('nosuid'), 1);
    else if (o === 'dev') out.splice(out.indexOf('nodev'), 1);
    else if (!out.includes(o)) out.push(o);
  }
  return out;
}

export function environment(cfg: ContainerConfig, hostname: string): string[] {
  const env: string[] = [];
  const keys = new Set<string>();
  const put = (e: string): void => {
    const k = e.includes('=') ? e.slice(0, e.indexOf('=')) : e;
    if (keys.has(k)) {
      const idx = env.findIndex((x) => x === k || x.startsWith(`${k}=`));
      env[idx] = e;
    } else {
      keys.add(k);
      env.push(e);
    }
  };
  put(`PATH=${DEFAULT_PATH}`);
  put(`HOSTNAME=${hostname}`);
  if (cfg.Tty) put('TERM=xterm');
  for (const e of cfg.Env ?? []) if (e.includes('=')) put(e);
  return env;
}

export function hostnameOf(id: string, cfg: ContainerConfig): string {
  return cfg.Hostname || id.slice(0, 12);
}

export interface SpecInput {
  id: string;
  config: ContainerConfig;
  hostConfig: HostConfig;
  rootfs: string;
  /** Host paths of the per-container files to bind. */
  files: { hostname: string; hosts: string; resolvConf: string };
  user: ResolvedUser;
  /** The profile already turned into OCI form (for these capabilities), or null for none. */
  seccomp: OciSeccomp | null;
  /** Namespace paths for `container:<ref>` modes. */
  joinNetns?: string | undefined;
  joinIpc?: string | undefined;
  /** `--ipc shareable` or `container:<ref>`: the host's tmpfs to bind at /dev/shm (shm.ts). */
  shmSource?: string | undefined;
  joinPid?: string | undefined;
  /** The host's devices, for --privileged. */
  hostDevices: OciDevice[];
  /** The daemon's bounding set; all known capabilities when absent. */
  availableCaps?: readonly string[];
  /** Device cgroup rule and node per `--device`. */
  devices?: OciDevice[];
  /** `--device` nodes and rules, `--device-cgroup-rule`, blkio devices: resolved on the host (resources.ts). */
  hostResources?: HostResources | undefined;
  /** The host's /sys/devices/system/cpu/cpu<N>/thermal_throttle directories; read from the host (once) when absent. */
  cpuThermalThrottle?: readonly string[];
}

/**
 * OCI linux.resources of a HostConfig (Docker's mapping): what the container's cgroup gets at
 * start, and what `update` applies to a running one (without `devices`, which only a start sets).
 */
export function linuxResources(h: HostConfig, extra?: Omit<HostResources, 'devices'> & { devices?: unknown }): Record<string, unknown> {
  const resources: Record<string, unknown> = {};
  resources.devices = h.Privileged ? [{ allow: true, access: 'rwm' }] : [{ allow: false, access: 'rwm' }, ...(extra?.deviceRules ?? [])];
  const memory: Record<string, unknown> = {};
  if (h.Memory > 0) memory.limit = h.Memory;
  if (h.MemorySwap !== 0 && h.Memory > 0) memory.swap = h.MemorySwap;
  else if (h.Memory > 0) memory.swap = h.Memory * 2;
  if (h.MemoryReservation > 0) memory.reservation = h.MemoryReservation;
  if (h.MemorySwappiness !== null && h.MemorySwappiness >= 0) memory.swappiness = h.MemorySwappiness;
  if (h.OomKillDisable) memory.disableOOMKiller = true;
  const x = extraOf(h);
  if ((x.KernelMemory ?? 0) > 0) memory.kernel = x.KernelMemory;
  if ((x.KernelMemoryTCP ?? 0) > 0) memory.kernelTCP = x.KernelMemoryTCP;
  if (Object.keys(memory).length) resources.memory = memory;
  const cpu: Record<string, unknown> = {};
  if (h.CpuShares > 0) cpu.shares = h.CpuShares;
  if (h.NanoCpus > 0) {
    cpu.period = 100_000;
    cpu.quota = Math.round((h.NanoCpus * 100_000) / 1e9);
  } else {
    if (h.CpuQuota !== 0) cpu.quota = h.CpuQuota;
    if (h.CpuPeriod > 0) cpu.period = h.CpuPeriod;
  }
  if (h.CpuRealtimePeriod > 0) cpu.realtimePeriod = h.CpuRealtimePeriod;
  if (h.CpuRealtimeRuntime !== 0) cpu.realtimeRuntime = h.CpuRealtimeRuntime;
  if (h.CpusetCpus) cpu.cpus = h.CpusetCpus;
  if (h.CpusetMems) cpu.mems = h.CpusetMems;
  if (Object.keys(cpu).length) resources.cpu = cpu;
  if (h.PidsLimit !== null && h.PidsLimit !== 0) resources.pids = { limit: h.PidsLimit };
  const blockIO: Record<string, unknown> = { ...(extra?.blockIO ?? {}) };
  if (h.BlkioWeight > 0) blockIO.weight = h.BlkioWeight;
  if (Object.keys(blockIO).length) resources.blockIO = blockIO;
  return resources;
}

const MiB = 1024 * 1024;

function rlimitType(name: string): string {
  return `RLIMIT_${name.toUpperCase()}`;
}

export function buildSpec(input: SpecInput): OciSpec {
  const { id, config: cfg, hostConfig: h } = input;
  const args = commandLine(cfg);
  if (args.length === 0) throw invalid('Cmd', 'No command specified');
  const hostname = hostnameOf(id, cfg);
  const caps = containerCapabilities(h, input.availableCaps);
  const sec = parseSecurityOpts(h.SecurityOpt);
  const shm = h.ShmSize > 0 ? h.ShmSize : 64 * MiB;
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', h.Privileged ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', h.Privileged ? 'rw' : 'ro'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  ];
  // IpcMode none: a private IPC namespace without /dev/shm (Docker mounts nothing there).
  if (h.IpcMode === 'host') mounts.push({ destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] });
  else if (input.shmSource) mounts.push({ destination: '/dev/shm', type: 'bind', source: input.shmSource, options: ['rbind', 'rprivate'] });
  else if (h.IpcMode !== 'none') mounts.push({ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${Math.floor(shm / 1024)}k`] });
  const dests = new Set<string>();
  const user: OciMount[] = [];
  for (const [i, b] of (h.Binds ?? []).entries()) {
    const bind = parseBind(b, `HostConfig.Binds[${i}]`);
    if (dests.has(bind.destination)) throw invalid(`HostConfig.Binds[${i}]`, `Duplicate mount point: ${bind.destination}`);
    dests.add(bind.destination);
    user.push({ destination: bind.destination, type: 'bind', source: bind.source, options: ['rbind', bind.propagation, bind.readonly ? 'ro' : 'rw'] });
  }
  for (const [dst, opts] of Object.entries(h.Tmpfs ?? {})) {
    if (dests.has(dst)) throw invalid('HostConfig.Tmpfs', `Duplicate mount point: ${dst}`);
    dests.add(dst);
    user.push({ destination: dst, type: 'tmpfs', source: 'tmpfs', options: tmpfsOptions(opts) });
  }
  for (const [i, m] of mountsOf(h).entries()) {
    const field = `HostConfig.Mounts[${i}]`;
    if (dests.has(m.Target)) throw invalid(field, `Duplicate mount point: ${m.Target}`);
    dests.add(m.Target);
    if (m.Type === 'tmpfs') {
      const opts = ['noexec', 'nosuid', 'nodev'];
      if ((m.TmpfsOptions?.SizeBytes ?? 0) > 0) opts.push(`size=${Math.ceil(m.TmpfsOptions!.SizeBytes! / 1024)}k`);
      if (m.TmpfsOptions?.Mode !== undefined) opts.push(`mode=${m.TmpfsOptions.Mode.toString(8)}`);
      if (m.ReadOnly) opts.push('ro');
      user.push({ destination: m.Target, type: 'tmpfs', source: 'tmpfs', options: opts });
    } else {
      const prop = m.BindOptions?.Propagation || 'rprivate';
      user.push({ destination: m.Target, type: 'bind', source: m.Source!, options: [m.BindOptions?.NonRecursive ? 'bind' : 'rbind', prop, m.ReadOnly ? 'ro' : 'rw'] });
    }
  }
  // User mounts over a default one replace it (Docker drops the default, e.g. a --tmpfs /dev/shm).
  const base = mounts.filter((m) => !dests.has(m.destination));
  const etc: OciMount[] = [
    { destination: '/etc/resolv.conf', type: 'bind', source: input.files.resolvConf, options: ['rbind', 'rprivate'] },
    { destination: '/etc/hostname', type: 'bind', source: input.files.hostname, options: ['rbind', 'rprivate'] },
    { destination: '/etc/hosts', type: 'bind', source: input.files.hosts, options: ['rbind', 'rprivate'] },
  ].filter((m) => !dests.has(m.destination));
  const allMounts = [...base, ...etc, ...user].sort((a, b) => depth(a.destination) - depth(b.destination));

  // runc's order, mount last; berth-init opens every namespace file before joining any, so the
  // order does not matter to exec.
  const namespaces: { type: string; path?: string }[] = [];
  // A sandbox from the network controller, or the namespace of the container named by container:<x>.
  if (input.joinNetns) namespaces.push({ type: 'network', path: input.joinNetns });
  else if (h.NetworkMode.startsWith('container:')) namespaces.push({ type: 'network', path: '' });
  else if (h.NetworkMode !== 'host') namespaces.push({ type: 'network' });
  if (h.PidMode.startsWith('container:')) namespaces.push({ type: 'pid', path: input.joinPid ?? '' });
  else if (h.PidMode !== 'host') namespaces.push({ type: 'pid' });
  if (h.IpcMode.startsWith('container:')) namespaces.push({ type: 'ipc', path: input.joinIpc ?? '' });
  else if (h.IpcMode !== 'host') namespaces.push({ type: 'ipc' });
  if (h.UTSMode !== 'host' && h.NetworkMode !== 'host') namespaces.push({ type: 'uts' });
  // A network namespace of its own gets Docker's defaults in it (the user's Sysctls win).
  const ownNetns = h.NetworkMode !== 'host' && !h.NetworkMode.startsWith('container:');
  if (h.CgroupnsMode !== 'host') namespaces.push({ type: 'cgroup' });
  namespaces.push({ type: 'mount' });

  const resources = linuxResources(h, input.hostResources);
  const userDevices = [...(input.devices ?? []), ...(input.hostResources?.devices ?? [])];

  const rlimits = (h.Ulimits ?? []).map((u) => ({ type: rlimitType(u.Name), soft: u.Soft, hard: u.Hard }));
  const noSeccomp = h.Privileged || sec.seccomp.kind === 'unconfined';
  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: cfg.Tty,
      user: { uid: input.user.uid, gid: input.user.gid, ...(input.user.additionalGids.length ? { additionalGids: input.user.additionalGids } : {}) },
      args,
      env: environment(cfg, hostname),
      cwd: cfg.WorkingDir || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      noNewPrivileges: sec.noNewPrivileges,
      ...(rlimits.length ? { rlimits } : {}),
      ...(h.OomScoreAdj ? { oomScoreAdj: h.OomScoreAdj } : {}),
      ...(cfg.Tty && h.ConsoleSize[0] > 0 && h.ConsoleSize[1] > 0 ? { consoleSize: { height: h.ConsoleSize[0], width: h.ConsoleSize[1] } } : {}),
    },
    root: { path: input.rootfs, readonly: h.ReadonlyRootfs },
    hostname: h.UTSMode === 'host' || h.NetworkMode === 'host' ? undefined as unknown as string : hostname,
    mounts: allMounts,
    annotations: { 'org.berth.container.id': id },
    linux: {
      namespaces,
      cgroupsPath: h.CgroupParent ? `${h.CgroupParent.replace(/\/+$/, '')}/${id}` : `berth/${id}`,
      resources,
      ...(ownNetns || h.Sysctls ? { sysctl: { ...(ownNetns ? dockerNetSysctls : {}), ...h.Sysctls } } : {}),
      maskedPaths: h.Privileged || sec.unconfinedPaths ? [] : h.MaskedPaths ?? [...dockerMaskedPaths, ...(input.cpuThermalThrottle ?? cpuThermalThrottlePaths())],
      readonlyPaths: h.Privileged || sec.unconfinedPaths ? [] : h.ReadonlyPaths ?? [...dockerReadonlyPaths],
      ...(h.Privileged ? { devices: input.hostDevices } : userDevices.length ? { devices: userDevices } : {}),
      ...(noSeccomp || !input.seccomp ? {} : { seccomp: input.seccomp }),
    },
  };
  if (spec.hostname === undefined) delete spec.hostname;
  if (cfg.Domainname) spec.domainname = cfg.Domainname;
  return spec;
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length;
}

/** Capability names in a CapBnd-style hex mask (/proc/self/status). */
export function capabilitiesOfMask(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  return Object.entries(capabilityNumbers)
    .filter(([, bit]) => (mask >> BigInt(bit)) & 1n)
    .map(([name]) => name);
}
