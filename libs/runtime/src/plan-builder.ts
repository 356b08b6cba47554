/**
 * OCI spec -> init plan. Everything the init does is decided here, so that it can be unit
 * tested without root and pinned by golden files; berth-init only carries the steps out.
 */
import { existsSync, statSync, statfsSync } from 'node:fs';
import { isAbsolute, join, posix, resolve } from 'node:path';
import { BerthError } from '@berth/errors';
import {
  CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS,
  MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE, S_IFBLK, S_IFCHR,
  S_IFIFO, emptyPlan, seccompFilterFlags,
  type InitPlan, type RootfsStep, type PlanMount,
} from '@berth/native';
import { validateUser, type NamespaceType, type OciSpec, type OciDevice, type OciIdMapping } from './spec.js';
import { capabilityMask } from './capabilities.js';
import { planRlimits } from './rlimits.js';
import { parseMountOptions, parsePropagation } from './mount-options.js';
import { checkInRoot, isSymlinkInRoot } from './root-paths.js';
import { withHome } from './home.js';

export const namespaceFlags: Readonly<Record<NamespaceType, number>> = {
  pid: CLONE_NEWPID, network: CLONE_NEWNET, mount: CLONE_NEWNS, ipc: CLONE_NEWIPC, uts: CLONE_NEWUTS,
  user: CLONE_NEWUSER, cgroup: CLONE_NEWCGROUP,
};

/** /proc/PID/ns/<file> per namespace type. */
export const namespaceFiles: Readonly<Record<NamespaceType, string>> = {
  pid: 'pid', network: 'net', mount: 'mnt', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup',
};

const RAMFS_MAGIC = 0x858458f6;

/** One cgroup hierarchy as the container's /sys/fs/cgroup shows it. */
export interface CgroupMountSource {
  /** Directory name under /sys/fs/cgroup (the host mount point's basename): cpu, systemd, unified... */
  name: string;
  /** The container's own cgroup directory in that hierarchy on the host. */
  hostDir: string;
  /** cgroup v1 mount data ("cpu", "none,name=systemd") or null for cgroup2. */
  subsystems: string | null;
}

export interface PlanContext {
  bundle: string;
  pidFile: string;
  cgroupProcs: string[];
  cgroupMounts: CgroupMountSource[];
  seccomp: Buffer | null;
  consoleSocket: string | null;
  startFifo: string | null;
  /** PID 1 is a reaper that runs the process as its child (Docker's --init). */
  reaper?: boolean;
}

interface DefaultDevice {
  path: string;
  major: number;
  minor: number;
}

/** The nodes every container gets (runc's and Docker's list), 0666 root:root. */
export const defaultDevices: readonly DefaultDevice[] = [
  { path: '/dev/null', major: 1, minor: 3 },
  { path: '/dev/zero', major: 1, minor: 5 },
  { path: '/dev/full', major: 1, minor: 7 },
  { path: '/dev/random', major: 1, minor: 8 },
  { path: '/dev/urandom', major: 1, minor: 9 },
  { path: '/dev/tty', major: 5, minor: 0 },
];

function invalid(field: string, message: string): BerthError {
  return new BerthError('BERTH_SPEC_INVALID', `${field}: ${message}`, { details: { field } });
}

function idMap(maps: OciIdMapping[] | undefined): string | null {
  if (!maps || maps.length === 0) return null;
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

function fileTypeBits(dev: OciDevice, field: string): number {
  switch (dev.type) {
    case 'c':
    case 'u':
      return S_IFCHR;
    case 'b':
      return S_IFBLK;
    case 'p':
      return S_IFIFO;
    default:
      throw invalid(`${field}.type`, `unknown device type "${dev.type}"`);
  }
}

const nsFileOf: Partial<Record<NamespaceType, string>> = { network: 'net', ipc: 'ipc', uts: 'uts' };

/** True when `path` is this host's namespace of that type (the runtime's own, as runc checks). */
function isHostNamespace(type: NamespaceType, path: string): boolean {
  const file = nsFileOf[type];
  if (file === undefined) return false;
  try {
    const a = statSync(path);
    const b = statSync(`/proc/self/ns/${file}`);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

/** Sysctls a container may set, by the namespace that isolates them (runc's rule). */
function checkSysctl(key: string, ns: Set<string>): void {
  const field = `linux.sysctl["${key}"]`;
  if (!/^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$/.test(key)) throw invalid(field, 'not a sysctl name');
  const ipc = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];
  if (ipc.includes(key) || key.startsWith('fs.mqueue.')) {
    if (!ns.has('ipc')) throw invalid(field, 'needs a private ipc namespace');
    return;
  }
  if (key.startsWith('net.')) {
    if (!ns.has('network')) throw invalid(field, 'needs a private network namespace');
    return;
  }
  if (key === 'kernel.hostname' || key === 'kernel.domainname') {
    if (!ns.has('uts')) throw invalid(field, 'needs a private uts namespace');
    return;
  }
  throw invalid(field, 'is not namespaced; a container may not change it for the whole host');
}

function bindSource(bundle: string, source: string | undefined, field: string): string {
  if (!source) throw invalid(`${field}.source`, 'a bind mount needs a source');
  return isAbsolute(source) ? source : resolve(bundle, source);
}

const PROC_SUPER_MAGIC = 0x9fa0;

/** Under /proc only these may be mounted over, by lxcfs-style binds (runc's list). */
export const procMountAllowed: readonly string[] = [
  '/proc/cpuinfo', '/proc/diskstats', '/proc/meminfo', '/proc/stat', '/proc/swaps', '/proc/uptime', '/proc/loadavg',
  '/proc/slabinfo', '/proc/net/dev', '/proc/sys/kernel/ns_last_pid',
];

/**
 * runc's checkProcMount, and the same for /sys: a mount over /proc must be procfs (or a bind of
 * one), one under /proc only an allowed lxcfs file, and /sys itself only sysfs. Anything else
 * could hide the masks or put a writable file where the kernel's should be.
 */
function checkProcSysMount(resolved: string, type: string | undefined, source: string | null, field: string): void {
  if (resolved === '/proc') {
    if (type === 'proc') return;
    if (type === 'bind' && source !== null) {
      try {
        if (statfsSync(source).type === PROC_SUPER_MAGIC) return;
      } catch {
        // a missing source is reported as the source's fault below
      }
    }
    throw invalid(`${field}.destination`, `/proc cannot be mounted over by a mount of type ${type ?? '(none)'}; only proc`);
  }
  if (resolved.startsWith('/proc/') && !procMountAllowed.includes(resolved))
    throw invalid(`${field}.destination`, `${resolved} is inside /proc; only ${procMountAllowed.join(', ')} may be mounted there`);
  if (resolved === '/sys' && type !== 'sysfs')
    throw invalid(`${field}.destination`, `/sys cannot be mounted over by a mount of type ${type ?? '(none)'}; only sysfs`);
}

/** Expands a `cgroup` mount into a tmpfs with one mount per hierarchy (v1), as runc does. */
function cgroupSteps(dest: string, flags: number, ctx: PlanContext, privateCgroupNs: boolean): RootfsStep[] {
  const base: Omit<PlanMount, 'source' | 'destination' | 'fstype' | 'flags' | 'data'> = {
    kind: 'mount', propagation: 0, create: 'dir', remount: 0, noSymlinks: true,
  };
  const only = ctx.cgroupMounts[0];
  if (ctx.cgroupMounts.length === 1 && only && only.name === '') {
    // cgroup v2: one mount of the container's own group at /sys/fs/cgroup.
    return [privateCgroupNs
      ? { ...base, source: 'cgroup', destination: dest, fstype: 'cgroup2', flags, data: null }
      : { ...base, source: only.hostDir, destination: dest, fstype: null, flags: MS_BIND | MS_REC, data: null, remount: MS_BIND | MS_REMOUNT | flags }];
  }
  const inner = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
  const steps: RootfsStep[] = [
    { ...base, source: 'tmpfs', destination: dest, fstype: 'tmpfs', flags: inner, data: 'mode=755' },
  ];
  for (const h of ctx.cgroupMounts) {
    const at = posix.join(dest, h.name);
    if (privateCgroupNs) {
      steps.push({ ...base, source: 'cgroup', destination: at, fstype: h.subsystems === null ? 'cgroup2' : 'cgroup', flags, data: h.subsystems });
    } else {
      steps.push({
        ...base, source: h.hostDir, destination: at, fstype: null, flags: MS_BIND | MS_REC,
        data: null, remount: MS_BIND | MS_REMOUNT | flags,
      });
    }
  }
  // Like runc, the tmpfs holding the hierarchies stays writable; each hierarchy is read-only.
  return steps;
}

export function buildCreatePlan(spec: OciSpec, ctx: PlanContext): InitPlan {
  const process = spec.process!;
  const linux = spec.linux ?? {};
  const plan = emptyPlan();
  plan.mode = 'create';

  // Namespaces
  const created = new Set<string>();
  // The namespaces the container does not share with this host: made, or joined from a path
  // that is not the host's own (a network namespace made for it, as an engine's sandbox).
  const own = new Set<string>();
  for (const [i, ns] of (linux.namespaces ?? []).entries()) {
    const type = ns.type as NamespaceType;
    const flag = namespaceFlags[type];
    if (ns.path) {
      if (!existsSync(ns.path)) throw invalid(`linux.namespaces[${i}].path`, `${ns.path} does not exist`);
      plan.nsJoin.push({ type: flag, path: ns.path });
      if (!isHostNamespace(type, ns.path)) own.add(type);
    } else {
      own.add(type);
      plan.nsFlags |= flag;
      created.add(type);
    }
  }
  if (!created.has('mount')) throw invalid('linux.namespaces', 'a new mount namespace is required');
  if (spec.hostname && !created.has('uts')) throw invalid('hostname', 'setting the hostname needs a private uts namespace');
  if (created.has('user')) {
    plan.uidMap = idMap(linux.uidMappings);
    plan.gidMap = idMap(linux.gidMappings);
    if (!plan.uidMap || !plan.gidMap) throw invalid('linux.uidMappings', 'a new user namespace needs uid and gid mappings');
  } else if (linux.uidMappings?.length || linux.gidMappings?.length) {
    if (!(linux.namespaces ?? []).some((n) => n.type === 'user')) throw invalid('linux.uidMappings', 'mappings without a user namespace');
  }
  plan.cgroupProcs = ctx.cgroupProcs;
  plan.pidFile = ctx.pidFile;

  // Root
  const rootfs = resolve(ctx.bundle, spec.root!.path);
  let rootStat;
  try {
    rootStat = statSync(rootfs);
  } catch {
    throw invalid('root.path', `${rootfs} does not exist`);
  }
  if (!rootStat.isDirectory()) throw invalid('root.path', `${rootfs} is not a directory`);
  plan.rootfs = rootfs;
  plan.rootReadonly = spec.root!.readonly === true;
  const propagation = parsePropagation(linux.rootfsPropagation, MS_SLAVE | MS_REC);
  if (propagation === undefined) throw invalid('linux.rootfsPropagation', `unknown propagation "${String(linux.rootfsPropagation)}"`);
  plan.rootPropagation = propagation;
  plan.pivot = statfsSync(rootfs).type === RAMFS_MAGIC ? 'chroot' : 'pivot_root';

  // Mounts, in order
  let devMounted = false;
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    const field = `mounts[${i}]`;
    const dest = posix.normalize(m.destination);
    const resolved = checkInRoot(rootfs, m.destination, `${field}.destination`);
    const opts = parseMountOptions(m.options);
    const type = m.type ?? (opts.flags & MS_BIND ? 'bind' : undefined);
    const isBind = type === 'bind' || (opts.flags & MS_BIND) !== 0;
    checkProcSysMount(resolved, isBind ? 'bind' : type, isBind && m.source ? bindSource(ctx.bundle, m.source, field) : null, field);
    if (type === 'proc' || type === 'sysfs') {
      if (isSymlinkInRoot(rootfs, dest))
        throw invalid(`${field}.destination`, `${dest} is a symlink in the rootfs; ${type} must be mounted on an ordinary directory`);
    }
    if (type === 'cgroup') {
      plan.steps.push(...cgroupSteps(dest, opts.flags, ctx, created.has('cgroup')));
      continue;
    }
    if (type === 'bind' || opts.flags & MS_BIND) {
      const source = bindSource(ctx.bundle, m.source, field);
      let isDir: boolean;
      try {
        isDir = statSync(source).isDirectory();
      } catch {
        throw invalid(`${field}.source`, `${source} does not exist`);
      }
      const extra = opts.flags & ~(MS_BIND | MS_REC);
      plan.steps.push({
        kind: 'mount', source, destination: dest, fstype: null, flags: MS_BIND | (opts.flags & MS_REC),
        propagation: opts.propagation, data: null, create: isDir ? 'dir' : 'file',
        remount: extra ? MS_BIND | MS_REMOUNT | extra : 0, noSymlinks: false,
      });
      continue;
    }
    if (!type) throw invalid(`${field}.type`, 'missing');
    if (dest === '/dev') devMounted = true;
    plan.steps.push({
      kind: 'mount', source: m.source ?? type, destination: dest, fstype: type, flags: opts.flags,
      propagation: opts.propagation, data: opts.data, create: 'dir', remount: 0,
      noSymlinks: type === 'proc' || type === 'sysfs',
    });
  }

  // Device nodes and links on a fresh /dev
  if (devMounted) {
    const userns = created.has('user');
    const devices = new Map<string, RootfsStep>();
    for (const d of defaultDevices) {
      devices.set(d.path, userns
        ? { kind: 'bind-device', source: d.path, destination: d.path }
        : { kind: 'mknod', destination: d.path, mode: S_IFCHR | 0o666, major: d.major, minor: d.minor, uid: 0, gid: 0 });
    }
    for (const [i, d] of (linux.devices ?? []).entries()) {
      const field = `linux.devices[${i}]`;
      if (!d.path?.startsWith('/dev/')) throw invalid(`${field}.path`, `"${String(d.path)}" is not under /dev`);
      checkInRoot(rootfs, d.path, `${field}.path`);
      const bits = fileTypeBits(d, field);
      devices.set(d.path, userns
        ? { kind: 'bind-device', source: d.path, destination: d.path }
        : {
            kind: 'mknod', destination: d.path, mode: bits | ((d.fileMode ?? 0o666) & 0o7777),
            major: d.major ?? 0, minor: d.minor ?? 0, uid: d.uid ?? 0, gid: d.gid ?? 0,
          });
    }
    plan.steps.push(...devices.values());
    const links: [string, string][] = [
      ['/proc/self/fd', '/dev/fd'], ['/proc/self/fd/0', '/dev/stdin'], ['/proc/self/fd/1', '/dev/stdout'],
      ['/proc/self/fd/2', '/dev/stderr'],
    ];
    if (existsSync('/proc/kcore')) links.push(['/proc/kcore', '/dev/core']);
    links.push(['pts/ptmx', '/dev/ptmx']);
    for (const [target, destination] of links) plan.steps.push({ kind: 'symlink', target, destination });
  }

  plan.maskedPaths = linux.maskedPaths ?? [];
  plan.readonlyPaths = linux.readonlyPaths ?? [];
  plan.sysctls = Object.entries(linux.sysctl ?? {}).map(([k, v]) => {
    checkSysctl(k, own);
    return [k, String(v)];
  });
  plan.hostname = spec.hostname ?? null;
  plan.domainname = spec.domainname ?? null;
  applyProcess(plan, spec, ctx);
  plan.reaper = ctx.reaper === true;
  plan.env = withHome(plan.env, rootfs, plan.uid);
  return plan;
}

/** The process half, shared by create and exec. */
export function applyProcess(plan: InitPlan, spec: OciSpec, ctx: Pick<PlanContext, 'seccomp' | 'consoleSocket' | 'startFifo'>): void {
  const p = spec.process!;
  validateUser(p.user); // exec's process does not come through validateSpec
  plan.cwd = p.cwd;
  plan.args = p.args;
  plan.env = p.env ?? [];
  plan.uid = p.user.uid;
  plan.gid = p.user.gid;
  plan.additionalGids = p.user.additionalGids ?? [];
  plan.umask = p.user.umask ?? null;
  plan.rlimits = planRlimits(p.rlimits);
  if (p.capabilities) {
    const c = p.capabilities;
    plan.capabilities = {
      bounding: capabilityMask(c.bounding, 'process.capabilities.bounding'),
      effective: capabilityMask(c.effective, 'process.capabilities.effective'),
      permitted: capabilityMask(c.permitted, 'process.capabilities.permitted'),
      inheritable: capabilityMask(c.inheritable, 'process.capabilities.inheritable'),
      ambient: capabilityMask(c.ambient, 'process.capabilities.ambient'),
    };
    // The kernel raises an ambient capability only when it is permitted and inheritable; runc
    // skips the others without a word (runc's own default spec asks for ambient ones it cannot get).
    plan.capabilities.ambient &= plan.capabilities.permitted & plan.capabilities.inheritable;
  }
  plan.noNewPrivileges = p.noNewPrivileges === true;
  plan.oomScoreAdj = p.oomScoreAdj ?? null;
  plan.terminal = p.terminal === true;
  if (plan.terminal && !ctx.consoleSocket) throw invalid('process.terminal', 'a terminal needs --console-socket to hand the pty to');
  plan.consoleSocket = plan.terminal ? ctx.consoleSocket : null;
  plan.seccomp = ctx.seccomp;
  plan.seccompFlags = ctx.seccomp && spec.linux?.seccomp ? seccompFilterFlags(spec.linux.seccomp) : 0;
  plan.startFifo = ctx.startFifo;
}

/** Joins a running container (`exec`): its namespaces and cgroup, no root setup. */
export function buildExecPlan(
  spec: OciSpec,
  containerPid: number,
  ctx: Pick<PlanContext, 'seccomp' | 'consoleSocket' | 'pidFile' | 'cgroupProcs'> & { rootfs?: string },
): InitPlan {
  const plan = emptyPlan();
  plan.mode = 'exec';
  for (const ns of spec.linux?.namespaces ?? []) {
    const type = ns.type as NamespaceType;
    plan.nsJoin.push({ type: namespaceFlags[type], path: ns.path ?? join('/proc', String(containerPid), 'ns', namespaceFiles[type]) });
  }
  plan.cgroupProcs = ctx.cgroupProcs;
  plan.pidFile = ctx.pidFile;
  applyProcess(plan, spec, { ...ctx, startFifo: null });
  plan.env = withHome(plan.env, ctx.rootfs ?? null, plan.uid);
  return plan;
}
