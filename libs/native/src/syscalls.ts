import { BerthError, SystemError } from '@berth/errors';
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
    setns: (fd, nstype) => call(() => a.setns(fd, nstype)),
    unshare: (flags) => call(() => a.unshare(flags)),
    gettid: () => a.gettid(),
    pidfdOpen: (pid) => call(() => a.pidfdOpen(pid)),
    pidfdSendSignal: (pidfd, signal) => call(() => a.pidfdSendSignal(pidfd, signal)),
    compileSeccomp: (profile) => compile(a, profile).bpf,
    compileSeccompDetailed: (profile) => compile(a, profile),
  };
  return real;
}
