import { BerthError, SystemError, wrap } from '@berth/errors';
import { loadAddon, type NativeAddon } from './addon.js';
import type { CompiledSeccomp, OciSeccomp } from './seccomp.js';

/** statfs(2), the fields Berth uses. `type` is the filesystem magic (see `FsMagic`). */
export interface StatfsInfo {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  /** ST_* mount flags. */
  flags: number;
}

/** BPF_PROG_QUERY on a cgroup: the programs attached to it directly, and their attach flags. */
export interface BpfQuery {
  attachFlags: number;
  progIds: number[];
}

/**
 * Every kernel call of Berth that Node lacks. All are synchronous and run on the calling JS
 * thread; namespace calls (setns, unshare) move that thread only, never the libuv pool.
 * Failures throw a SystemError (errno, code, syscall, path, dest).
 */
export interface Syscalls {
  /** mount(2). A failure names path = source (when given) and dest = target. */
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  /** mknod(2) with dev = makedev(major, minor); `mode` carries the type bits (S_IFCHR...). */
  mknod(path: string, mode: number, major: number, minor: number): void;
  /** lchown(2); -1 leaves an id unchanged. */
  lchown(path: string, uid: number, gid: number): void;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): void;
  /** lgetxattr(2); null when the attribute is absent. */
  lgetxattr(path: string, name: string): Buffer | null;
  statfs(path: string): StatfsInfo;
  /**
   * The inode flags of `path` (FS_IOC_GETFLAGS: FS_TOPDIR_FL...) after setting the bits of `set`
   * and clearing those of `clear` (FS_IOC_SETFLAGS, only when that changes them; 0, 0 reads).
   * Filesystems without inode flags fail with ENOTTY or EOPNOTSUPP (syscall ioctl_getflags /
   * ioctl_setflags); a symlink is not followed (ELOOP).
   */
  inodeFlags(path: string, set: number, clear: number): number;
  setns(fd: number, nstype: number): void;
  unshare(flags: number): void;
  gettid(): number;
  /** pidfd_open(2); the fd is close-on-exec. */
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, signal: number): void;
  /**
   * Compiles `linux.seccomp` to a BPF program (struct sock_filter[], 8 bytes each).
   * A profile the compiler refuses throws BerthError BERTH_SECCOMP_PROFILE naming the field.
   */
  compileSeccomp(profile: OciSeccomp): Buffer;
  /** compileSeccomp, also reporting the syscall names that were left out and why. */
  compileSeccompDetailed(profile: OciSeccomp): CompiledSeccomp;
  /**
   * bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE program: `insns` is struct bpf_insn[]
   * (8 bytes each). Returns the program fd (close-on-exec); the caller closes it. A verifier
   * refusal throws a SystemError with syscall bpf_prog_load (EACCES / EINVAL).
   */
  bpfProgLoadCgroupDevice(insns: Buffer, license: string): number;
  /**
   * bpf(BPF_PROG_ATTACH): attaches `progFd` to `targetFd` (a cgroup directory fd) for
   * `attachType` (BPF_CGROUP_DEVICE) with BPF_F_* `flags`; `replaceFd` with BPF_F_REPLACE.
   * The attachment outlives both fds; it ends with a detach or the cgroup's removal.
   */
  bpfProgAttach(progFd: number, targetFd: number, attachType: number, flags: number, replaceFd?: number): void;
  /** bpf(BPF_PROG_DETACH) of one program from a cgroup. */
  bpfProgDetach(progFd: number, targetFd: number, attachType: number): void;
  /** bpf(BPF_PROG_QUERY): the programs attached to the cgroup itself (not inherited ones). */
  bpfProgQuery(targetFd: number, attachType: number): BpfQuery;
  /** bpf(BPF_PROG_GET_FD_BY_ID): a new fd (close-on-exec) for a loaded program. */
  bpfProgGetFdById(id: number): number;
}

interface AddonErrorFields {
  errno: number;
  code: string;
  syscall: string;
  path?: string;
  dest?: string;
  reason?: string;
}

function isAddonError(err: unknown): err is Error & AddonErrorFields {
  if (!(err instanceof Error)) return false;
  const e = err as Error & Partial<AddonErrorFields>;
  return typeof e.errno === 'number' && typeof e.code === 'string' && typeof e.syscall === 'string';
}

/** Turns an addon failure into a SystemError; anything else (a TypeError) passes through. */
export function toSystemError(err: unknown): unknown {
  if (!isAddonError(err)) return err;
  return new SystemError({ errno: err.errno, code: err.code, syscall: err.syscall, path: err.path, dest: err.dest });
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toSystemError(err);
  }
}

function compile(addon: NativeAddon, profile: OciSeccomp): CompiledSeccomp {
  try {
    return addon.compileSeccomp(profile);
  } catch (err) {
    if (!isAddonError(err)) throw err;
    if (err.syscall === 'seccomp_compile') {
      const field = err.path ?? 'seccomp';
      throw new BerthError('BERTH_SECCOMP_PROFILE', `seccomp profile: ${field}: ${err.reason ?? err.code}`, {
        details: { field },
      });
    }
    const cause = toSystemError(err);
    if (err.syscall === 'seccomp_rule_add' || err.syscall === 'seccomp_arch_add') {
      const what = err.syscall === 'seccomp_rule_add' ? `the rule for syscall ${err.path}` : `architecture ${err.path}`;
      const why = err.code === 'EEXIST' ? ' (it conflicts with an earlier rule)' : '';
      throw new BerthError('BERTH_SECCOMP_PROFILE', `seccomp profile: libseccomp refused ${what}: ${err.code}${why}`, {
        cause,
        details: { syscall: err.path },
      });
    }
    throw cause;
  }
}

/** bpf_prog_load; a verifier refusal keeps its errno (cause) and says why (the log's last lines). */
function bpfLoad(addon: NativeAddon, insns: Buffer, license: string): number {
  try {
    return addon.bpfProgLoadCgroupDevice(insns, license);
  } catch (err) {
    const cause = toSystemError(err);
    if (!isAddonError(err) || err.reason === undefined) throw cause;
    const lines = err.reason.trim().split('\n').slice(-3).join(' | ');
    throw wrap(cause, `BPF verifier refused the program (${lines})`);
  }
}

let real: Syscalls | undefined;

/**
 * The addon-backed implementation. Loads the addon on first use; throws BerthError
 * BERTH_NATIVE_UNAVAILABLE when it is not built.
 */
export function realSyscalls(): Syscalls {
  if (real !== undefined) return real;
  const a = loadAddon();
  real = {
    mount: (source, target, fstype, flags, data) => call(() => a.mount(source, target, fstype, flags, data)),
    umount2: (target, flags) => call(() => a.umount2(target, flags)),
    mknod: (path, mode, major, minor) => call(() => a.mknod(path, mode, major, minor)),
    lchown: (path, uid, gid) => call(() => a.lchown(path, uid, gid)),
    lsetxattr: (path, name, value, flags) => call(() => a.lsetxattr(path, name, value, flags)),
    lgetxattr: (path, name) => call(() => a.lgetxattr(path, name)),
    statfs: (path) => call(() => a.statfs(path)),
    inodeFlags: (path, set, clear) => call(() => a.inodeFlags(path, set, clear)),
    setns: (fd, nstype) => call(() => a.setns(fd, nstype)),
    unshare: (flags) => call(() => a.unshare(flags)),
    gettid: () => a.gettid(),
    pidfdOpen: (pid) => call(() => a.pidfdOpen(pid)),
    pidfdSendSignal: (pidfd, signal) => call(() => a.pidfdSendSignal(pidfd, signal)),
    compileSeccomp: (profile) => compile(a, profile).bpf,
    compileSeccompDetailed: (profile) => compile(a, profile),
    bpfProgLoadCgroupDevice: (insns, license) => bpfLoad(a, insns, license),
    bpfProgAttach: (progFd, targetFd, attachType, flags, replaceFd) => call(() => a.bpfProgAttach(progFd, targetFd, attachType, flags, replaceFd)),
    bpfProgDetach: (progFd, targetFd, attachType) => call(() => a.bpfProgDetach(progFd, targetFd, attachType)),
    bpfProgQuery: (targetFd, attachType) => call(() => a.bpfProgQuery(targetFd, attachType)),
    bpfProgGetFdById: (id) => call(() => a.bpfProgGetFdById(id)),
  };
  return real;
}
