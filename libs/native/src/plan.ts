/**
 * The init plan and its wire encoding, the one contract between the TypeScript runtime and
 * berth-init (src/init/plan.h holds the same tags). The runtime computes everything; the C
 * side only carries it out in order.
 */

export const PLAN_MAGIC = 'BRTHPLAN';
export const PLAN_VERSION = 1;

const T = {
  MODE: 1, NS_FLAGS: 2, NS_JOIN: 3, UID_MAP: 4, GID_MAP: 5, CGROUP_PROCS: 6, PID_FILE: 7,
  ROOTFS: 10, ROOT_PROPAGATION: 11, PIVOT: 12, ROOT_READONLY: 13, MOUNT: 14, MKNOD: 15,
  SYMLINK: 16, BIND_DEV: 17, MASK: 18, READONLY_PATH: 19, SYSCTL: 20, HOSTNAME: 21,
  DOMAINNAME: 22, CWD: 30, ARG: 31, ENV: 32, UID: 33, GID: 34, GROUP: 35, UMASK: 36,
  RLIMIT: 37, CAPS: 38, NO_NEW_PRIVS: 39, SECCOMP: 40, SECCOMP_FLAGS: 41, OOM_SCORE_ADJ: 42,
  TERMINAL: 43, CONSOLE_SOCKET: 44, START_FIFO: 45, EXEC_PATH: 46, REAPER: 47,
} as const;

const F = {
  SRC: 1, DST: 2, FSTYPE: 3, FLAGS: 4, PROPAGATION: 5, DATA: 6, MKDIR: 7, REMOUNT: 8,
  NOSYMLINK: 9, NS_TYPE: 10, PATH: 11, MODE: 12, MAJOR: 13, MINOR: 14, UID: 15, GID: 16,
  KEY: 17, VALUE: 18, TYPE: 19, SOFT: 20, HARD: 21,
} as const;

/** A mount carried out relative to the rootfs, before the root is entered. */
export interface PlanMount {
  kind: 'mount';
  source: string | null;
  /** Absolute path inside the container. */
  destination: string;
  fstype: string | null;
  flags: number;
  /** Propagation flags applied after the mount (MS_SHARED|MS_REC...), 0 for none. */
  propagation: number;
  data: string | null;
  /** What to create when the destination is missing. */
  create: 'dir' | 'file' | 'none';
  /** Flags of a second, remounting call (bind mounts made read-only), 0 for none. */
  remount: number;
  /** Refuse any symlink on the way (procfs and sysfs must land on real directories). */
  noSymlinks: boolean;
}

export interface PlanMknod {
  kind: 'mknod';
  destination: string;
  /** Includes the file type bits (S_IFCHR...). */
  mode: number;
  major: number;
  minor: number;
  uid: number;
  gid: number;
}

export interface PlanSymlink {
  kind: 'symlink';
  target: string;
  destination: string;
}

/** A host device bound onto an empty file (in a user namespace, where mknod is refused). */
export interface PlanBindDevice {
  kind: 'bind-device';
  source: string;
  destination: string;
}

export type RootfsStep = PlanMount | PlanMknod | PlanSymlink | PlanBindDevice;

export interface PlanRlimit {
  type: number;
  soft: bigint;
  hard: bigint;
}

export interface CapabilitySets {
  bounding: bigint;
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
  ambient: bigint;
}

export interface InitPlan {
  /** 'create' builds a new container; 'exec' joins one (nsJoin) and runs a process there. */
  mode: 'create' | 'exec';
  /** CLONE_NEW* flags of the namespaces to create. */
  nsFlags: number;
  nsJoin: { type: number; path: string }[];
  uidMap: string | null;
  gidMap: string | null;
  cgroupProcs: string[];
  pidFile: string | null;
  rootfs: string | null;
  rootPropagation: number;
  pivot: 'pivot_root' | 'chroot';
  rootReadonly: boolean;
  steps: RootfsStep[];
  maskedPaths: string[];
  readonlyPaths: string[];
  sysctls: [string, string][];
  hostname: string | null;
  domainname: string | null;
  cwd: string;
  args: string[];
  env: string[];
  uid: number;
  gid: number;
  additionalGids: number[];
  umask: number | null;
  rlimits: PlanRlimit[];
  capabilities: CapabilitySets | null;
  noNewPrivileges: boolean;
  seccomp: Buffer | null;
  seccompFlags: number;
  oomScoreAdj: number | null;
  terminal: boolean;
  consoleSocket: string | null;
  startFifo: string | null;
  /** The program to exec when it is not args[0] looked up in the container's PATH. */
  execPath: string | null;
  /**
   * PID 1 forks after the start fifo: the child execs the process, PID 1 forwards signals,
   * reaps every zombie and exits with the child's status (Docker's --init). Create mode only.
   */
  reaper?: boolean;
}

class Writer {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  raw(tag: number, payload: Buffer): this {
    const head = Buffer.allocUnsafe(6);
    head.writeUInt16LE(tag, 0);
    head.writeUInt32LE(payload.length, 2);
    this.chunks.push(head, payload);
    this.size += 6 + payload.length;
    return this;
  }

  str(tag: number, value: string | null): this {
    return value === null ? this : this.raw(tag, Buffer.from(value, 'utf8'));
  }

  u32(tag: number, value: number): this {
    // Never truncated: 2^32 must not become 0 (root) on the way to the init.
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
      throw new RangeError(`plan record ${tag}: ${String(value)} is not an integer in 0..4294967295`);
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(value, 0);
    return this.raw(tag, b);
  }

  u64(tag: number, value: bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, value), 0);
    return this.raw(tag, b);
  }

  nested(tag: number, build: (w: Writer) => void): this {
    const inner = new Writer();
    build(inner);
    return this.raw(tag, inner.bytes());
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

const mkdirKind = { dir: 0, file: 1, none: 2 } as const;

function noNul(what: string, value: string): string {
  if (value.includes('\0')) throw new TypeError(`${what} contains a NUL byte`);
  return value;
}

/** The largest uid or gid a process may get: 4294967295 is (uid_t)-1, "unchanged" to setresuid. */
export const MAX_ID = 4294967294;

function id(what: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_ID)
    throw new RangeError(`${what}: ${String(value)} is not an integer in 0..${MAX_ID}`);
  return value;
}

/** Encodes a plan into the bytes berth-init reads on fd 3. */
export function encodePlan(plan: InitPlan): Buffer {
  const w = new Writer();
  w.u32(T.MODE, plan.mode === 'create' ? 0 : 1);
  w.u32(T.NS_FLAGS, plan.nsFlags);
  for (const ns of plan.nsJoin) w.nested(T.NS_JOIN, (n) => n.u32(F.NS_TYPE, ns.type).str(F.PATH, ns.path));
  w.str(T.UID_MAP, plan.uidMap).str(T.GID_MAP, plan.gidMap);
  for (const p of plan.cgroupProcs) w.str(T.CGROUP_PROCS, p);
  w.str(T.PID_FILE, plan.pidFile).str(T.ROOTFS, plan.rootfs);
  if (plan.rootPropagation) w.u32(T.ROOT_PROPAGATION, plan.rootPropagation);
  w.u32(T.PIVOT, plan.pivot === 'pivot_root' ? 0 : 1);
  if (plan.rootReadonly) w.u32(T.ROOT_READONLY, 1);
  for (const s of plan.steps) {
    switch (s.kind) {
      case 'mount':
        w.nested(T.MOUNT, (m) => {
          m.str(F.SRC, s.source).str(F.DST, s.destination).str(F.FSTYPE, s.fstype).u32(F.FLAGS, s.flags);
          if (s.propagation) m.u32(F.PROPAGATION, s.propagation);
          m.str(F.DATA, s.data).u32(F.MKDIR, mkdirKind[s.create]);
          if (s.remount) m.u32(F.REMOUNT, s.remount);
          if (s.noSymlinks) m.u32(F.NOSYMLINK, 1);
        });
        break;
      case 'mknod':
        w.nested(T.MKNOD, (m) =>
          m.str(F.DST, s.destination).u32(F.MODE, s.mode).u32(F.MAJOR, s.major).u32(F.MINOR, s.minor).u32(F.UID, s.uid).u32(F.GID, s.gid),
        );
        break;
      case 'symlink':
        w.nested(T.SYMLINK, (m) => m.str(F.SRC, s.target).str(F.DST, s.destination));
        break;
      case 'bind-device':
        w.nested(T.BIND_DEV, (m) => m.str(F.SRC, s.source).str(F.DST, s.destination));
        break;
    }
  }
  for (const p of plan.maskedPaths) w.str(T.MASK, p);
  for (const p of plan.readonlyPaths) w.str(T.READONLY_PATH, p);
  for (const [k, v] of plan.sysctls) w.nested(T.SYSCTL, (n) => n.str(F.KEY, k).str(F.VALUE, v));
  w.str(T.HOSTNAME, plan.hostname).str(T.DOMAINNAME, plan.domainname).str(T.CWD, plan.cwd);
  plan.args.forEach((a, i) => w.str(T.ARG, noNul(`args[${i}]`, a)));
  plan.env.forEach((e, i) => w.str(T.ENV, noNul(`env[${i}]`, e)));
  w.u32(T.UID, id('process.user.uid', plan.uid)).u32(T.GID, id('process.user.gid', plan.gid));
  plan.additionalGids.forEach((g, i) => w.u32(T.GROUP, id(`process.user.additionalGids[${i}]`, g)));
  if (plan.umask !== null) w.u32(T.UMASK, plan.umask);
  for (const r of plan.rlimits) w.nested(T.RLIMIT, (n) => n.u32(F.TYPE, r.type).u64(F.SOFT, r.soft).u64(F.HARD, r.hard));
  if (plan.capabilities) {
    const c = plan.capabilities;
    const b = Buffer.alloc(40);
    [c.bounding, c.effective, c.permitted, c.inheritable, c.ambient].forEach((v, i) => b.writeBigUInt64LE(v, i * 8));
    w.raw(T.CAPS, b);
  }
  if (plan.noNewPrivileges) w.u32(T.NO_NEW_PRIVS, 1);
  if (plan.seccomp) w.raw(T.SECCOMP, plan.seccomp).u32(T.SECCOMP_FLAGS, plan.seccompFlags);
  if (plan.oomScoreAdj !== null) w.str(T.OOM_SCORE_ADJ, String(plan.oomScoreAdj));
  if (plan.terminal) w.u32(T.TERMINAL, 1);
  w.str(T.CONSOLE_SOCKET, plan.consoleSocket).str(T.START_FIFO, plan.startFifo).str(T.EXEC_PATH, plan.execPath);
  if (plan.reaper) w.u32(T.REAPER, 1);
  const body = w.bytes();
  const head = Buffer.alloc(16);
  head.write(PLAN_MAGIC, 0, 'latin1');
  head.writeUInt32LE(PLAN_VERSION, 8);
  head.writeUInt32LE(body.length, 12);
  return Buffer.concat([head, body]);
}

/** A plan with every optional part empty; callers fill in what they need. */
export function emptyPlan(): InitPlan {
  return {
    mode: 'create', nsFlags: 0, nsJoin: [], uidMap: null, gidMap: null, cgroupProcs: [], pidFile: null,
    rootfs: null, rootPropagation: 0, pivot: 'pivot_root', rootReadonly: false, steps: [], maskedPaths: [],
    readonlyPaths: [], sysctls: [], hostname: null, domainname: null, cwd: '/', args: [], env: [], uid: 0,
    gid: 0, additionalGids: [], umask: null, rlimits: [], capabilities: null, noNewPrivileges: false,
    seccomp: null, seccompFlags: 0, oomScoreAdj: null, terminal: false, consoleSocket: null, startFifo: null, execPath: null,
  };
}
