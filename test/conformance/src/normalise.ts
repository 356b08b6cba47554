import type { ProbeMount, ProbeReport } from '@berth/test-support';

/**
 * Normalisations applied before comparing what two runtimes show a container. Each rule names
 * the difference it hides and why it is legitimate; anything not listed must be equal.
 */

/**
 * Per-superblock options that are part of what a spec asks for (tmpfs mode/size, devpts gid...).
 * "ro"/"rw" of the superblock is not among them: runc mounts sysfs read-only at mount time
 * (superblock "ro"), crun mounts it and then remounts the mount read-only (superblock "rw");
 * what the container gets is the per-mount "ro", which stays compared.
 */
const KEY_SUPER_OPTIONS = new Set(['mode', 'size', 'gid', 'uid', 'ptmxmode', 'nr_inodes']);

export interface MountView {
  mountPoint: string;
  fstype: string;
  source?: string;
  root?: string;
  options?: string[];
  superOptions?: string[];
}

export interface MountContext {
  /** The bundle's rootfs path on the host (the root mount's `root` shows it). */
  rootfs: string;
  /** The spec's linux.cgroupsPath (cgroup v1 mounts show it as their root). */
  cgroupsPath?: string | undefined;
  maskedPaths?: string[] | undefined;
}

export function normaliseMount(m: ProbeMount, ctx: MountContext): MountView {
  const masked = ctx.maskedPaths?.includes(m.mountPoint) ?? false;
  let root = m.root;
  if (root === ctx.rootfs) root = '<rootfs>';
  else if (ctx.cgroupsPath && root === ctx.cgroupsPath) root = '<cgroupsPath>';

  // A masked file is a bind mount of a /dev/null: runc binds the container's own /dev/null (a
  // file on the container's /dev tmpfs, flags inherited from it: rw,nosuid), crun binds the
  // host's (devtmpfs) and remounts it read-only. Either reads as empty; only "masked" matters.
  if (masked && m.root.endsWith('/null')) return { mountPoint: m.mountPoint, fstype: '<masked file: bind of /dev/null>' };

  const view: MountView = {
    mountPoint: m.mountPoint,
    fstype: m.fstype,
    source: m.source,
    root,
    options: m.options,
    superOptions: m.superOptions.filter((o) => KEY_SUPER_OPTIONS.has(o.split('=')[0]!)),
  };
  // A masked directory is an empty read-only tmpfs: runc mounts it read-only (superblock "ro"),
  // crun mounts it with size=0k and remounts the mount read-only. The per-mount "ro" stays compared.
  if (masked && m.fstype === 'tmpfs') delete view.superOptions;
  // On cgroup v1 both emulate the "cgroup" mount with a tmpfs holding one bind per hierarchy;
  // the tmpfs is the runtime's own (runc: source "tmpfs", mode=755; crun: source "cgroup",
  // size=1024k). Compared: that it is a tmpfs at /sys/fs/cgroup with the same per-mount flags.
  if (m.mountPoint === '/sys/fs/cgroup' && m.fstype === 'tmpfs') {
    delete view.source;
    delete view.superOptions;
  }
  return view;
}

/**
 * The mount table as a comparable list. Sorted by mount point: runc applies readonlyPaths before
 * maskedPaths and mounts cgroup v1 hierarchies in /proc/self/mountinfo order, crun the other way
 * round; no path here is mounted over another, so order carries no meaning.
 */
export function normaliseMounts(mounts: ProbeMount[], ctx: MountContext): MountView[] {
  return mounts.map((m) => normaliseMount(m, ctx)).sort((a, b) => (a.mountPoint < b.mountPoint ? -1 : a.mountPoint > b.mountPoint ? 1 : 0));
}

/**
 * /dev as a comparable list. crun adds a /dev/core -> /proc/kcore symlink of its own (not in
 * the OCI default set that runc creates: fd, stdin, stdout, stderr, ptmx); it is dropped.
 */
export function normaliseDev(dev: ProbeReport['dev'], runtime: string): ProbeReport['dev'] {
  return dev.filter((d) => !(runtime === 'crun' && d.path === '/dev/core' && d.target === '/proc/kcore'));
}

/**
 * /proc/self/cgroup without the cgroup2 line ("0::/..."): crun runs with the hybrid host's
 * cgroup2 mount unmounted (see the wrapper), so it never joins a cgroup2 group and reports
 * "0::/"; runc joins it ("0::/<cgroupsPath>").
 */
export function normaliseCgroupLines(lines: string[] | null): string[] | null {
  return lines === null ? null : lines.filter((l) => l !== '' && !l.startsWith('0::'));
}

/**
 * Which of the process's namespaces differ from the host's (the inode numbers themselves are
 * per run): { ipc: true, mnt: true, ..., time: false }.
 */
export function namespacesDifferingFromHost(report: Record<string, string | null>, host: Record<string, string | null>): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const k of Object.keys(host).sort()) out[k] = report[k] !== host[k];
  return out;
}

/** The OCI namespace type for each /proc/self/ns entry name. */
export const NS_ENTRY_TO_OCI: Readonly<Record<string, string>> = {
  cgroup: 'cgroup',
  ipc: 'ipc',
  mnt: 'mount',
  net: 'network',
  pid: 'pid',
  pid_for_children: 'pid',
  time: 'time',
  time_for_children: 'time',
  user: 'user',
  uts: 'uts',
};

/** Capability names to the hex mask /proc/self/status shows. */
const CAP_BITS: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_DAC_READ_SEARCH: 2, CAP_FOWNER: 3, CAP_FSETID: 4, CAP_KILL: 5,
  CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8, CAP_LINUX_IMMUTABLE: 9, CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11, CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_IPC_LOCK: 14, CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16, CAP_SYS_RAWIO: 17, CAP_SYS_CHROOT: 18, CAP_SYS_PTRACE: 19, CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21, CAP_SYS_BOOT: 22, CAP_SYS_NICE: 23, CAP_SYS_RESOURCE: 24, CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26, CAP_MKNOD: 27, CAP_LEASE: 28, CAP_AUDIT_WRITE: 29, CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31, CAP_MAC_OVERRIDE: 32, CAP_MAC_ADMIN: 33, CAP_SYSLOG: 34, CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36, CAP_AUDIT_READ: 37, CAP_PERFMON: 38, CAP_BPF: 39, CAP_CHECKPOINT_RESTORE: 40,
};

export function capMask(names: readonly string[]): string {
  let mask = 0n;
  for (const n of names) {
    const bit = CAP_BITS[n];
    if (bit === undefined) throw new Error(`unknown capability ${n}`);
    mask |= 1n << BigInt(bit);
  }
  return mask.toString(16).padStart(16, '0');
}
