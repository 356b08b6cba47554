// Fakes for unit tests: `@berth/native/testing`.
import { constants as osConstants } from 'node:os';
import { SystemError } from '@berth/errors';
import { XATTR_CREATE, XATTR_REPLACE } from './constants.js';
import type { CompiledSeccomp, OciSeccomp } from './seccomp.js';
import type { StatfsInfo, Syscalls } from './syscalls.js';

export type SyscallName = keyof Syscalls;

/** One recorded call, in the order made. */
export interface SyscallCall<K extends SyscallName = SyscallName> {
  name: K;
  args: Parameters<Syscalls[K]>;
}

interface Failure {
  name: SyscallName;
  code: string;
  errno: number;
  predicate: ((...args: never[]) => boolean) | undefined;
}

/** The kernel's name for each call, as the real implementation reports it. */
const kernelName: Record<SyscallName, string> = {
  mount: 'mount',
  umount2: 'umount2',
  mknod: 'mknod',
  lchown: 'lchown',
  lsetxattr: 'lsetxattr',
  lgetxattr: 'lgetxattr',
  statfs: 'statfs',
  setns: 'setns',
  unshare: 'unshare',
  gettid: 'gettid',
  pidfdOpen: 'pidfd_open',
  pidfdSendSignal: 'pidfd_send_signal',
  compileSeccomp: 'seccomp_compile',
  compileSeccompDetailed: 'seccomp_compile',
};

/** path and dest of the error the real call would throw for these arguments. */
function errorPaths(name: SyscallName, args: readonly unknown[]): { path?: string; dest?: string } {
  switch (name) {
    case 'mount': {
      const [source, target] = args as [string | null, string];
      return source === null ? { path: target } : { path: source, dest: target };
    }
    case 'umount2':
    case 'mknod':
    case 'lchown':
    case 'lsetxattr':
    case 'lgetxattr':
    case 'statfs':
      return { path: args[0] as string };
    default:
      return {};
  }
}

/** A one-instruction program, `ret SECCOMP_RET_ALLOW`: what the fake compiles by default. */
function allowAllProgram(): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(0x06, 0); // BPF_RET | BPF_K
  b.writeUInt32LE(0x7fff0000, 4); // SECCOMP_RET_ALLOW
  return b;
}

/**
 * A `Syscalls` that touches no kernel: it records every call `{ name, args }` in order and
 * answers from a small model. xattrs set with lsetxattr are returned by lgetxattr (with
 * XATTR_CREATE / XATTR_REPLACE honoured); pidfdOpen hands out fds from 1000 up; gettid is
 * process.pid; statfs answers zeros and compileSeccomp an allow-all program unless told
 * otherwise with `respond`. `failOn` makes a call throw the SystemError the real one would.
 */
export class RecordingSyscalls implements Syscalls {
  readonly calls: SyscallCall[] = [];
  private readonly failures: Failure[] = [];
  private readonly responses = new Map<SyscallName, (...args: never[]) => unknown>();
  private readonly xattrs = new Map<string, Buffer>();
  private nextFd = 1000;

  /**
   * From now on, calls to `name` (those matching `predicate`, if given) throw a SystemError
   * with errno `code` ('ENOENT', 'EBUSY'...). The failing call is still recorded.
   */
  failOn<K extends SyscallName>(name: K, code: string, predicate?: (...args: Parameters<Syscalls[K]>) => boolean): this {
    const errno = (osConstants.errno as Record<string, number | undefined>)[code];
    if (errno === undefined) throw new TypeError(`failOn: ${code} is not an errno name`);
    this.failures.push({ name, code, errno, predicate: predicate as Failure['predicate'] });
    return this;
  }

  /** Answers calls to `name` with `impl` (after recording them) instead of the model. */
  respond<K extends SyscallName>(name: K, impl: Syscalls[K]): this {
    this.responses.set(name, impl as (...args: never[]) => unknown);
    return this;
  }

  /** The names of the calls made, in order. */
  names(): SyscallName[] {
    return this.calls.map((c) => c.name);
  }

  /** The calls made to `name`. */
  callsTo<K extends SyscallName>(name: K): SyscallCall<K>[] {
    return this.calls.filter((c): c is SyscallCall<K> => c.name === name);
  }

  /** Forgets the recorded calls, failures and responses. */
  reset(): void {
    this.calls.length = 0;
    this.failures.length = 0;
    this.responses.clear();
    this.xattrs.clear();
  }

  private run<K extends SyscallName>(name: K, args: Parameters<Syscalls[K]>, model: () => ReturnType<Syscalls[K]>): ReturnType<Syscalls[K]> {
    this.calls.push({ name, args } as unknown as SyscallCall);
    for (const f of this.failures) {
      if (f.name !== name) continue;
      if (f.predicate !== undefined && !f.predicate(...(args as never[]))) continue;
      throw new SystemError({ errno: f.errno, code: f.code, syscall: kernelName[name], ...errorPaths(name, args) });
    }
    const response = this.responses.get(name);
    if (response !== undefined) return response(...(args as never[])) as ReturnType<Syscalls[K]>;
    return model();
  }

  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void {
    this.run('mount', [source, target, fstype, flags, data], () => undefined);
  }

  umount2(target: string, flags: number): void {
    this.run('umount2', [target, flags], () => undefined);
  }

  mknod(path: string, mode: number, major: number, minor: number): void {
    this.run('mknod', [path, mode, major, minor], () => undefined);
  }

  lchown(path: string, uid: number, gid: number): void {
    this.run('lchown', [path, uid, gid], () => undefined);
  }

  lsetxattr(path: string, name: string, value: Buffer, flags: number): void {
    this.run('lsetxattr', [path, name, value, flags], () => {
      const key = `${path}\0${name}`;
      const exists = this.xattrs.has(key);
      const fail = (code: 'EEXIST' | 'ENODATA'): never => {
        throw new SystemError({ errno: osConstants.errno[code], code, syscall: 'lsetxattr', path });
      };
      if (flags & XATTR_CREATE && exists) fail('EEXIST');
      if (flags & XATTR_REPLACE && !exists) fail('ENODATA');
      this.xattrs.set(key, Buffer.from(value));
    });
  }

  lgetxattr(path: string, name: string): Buffer | null {
    return this.run('lgetxattr', [path, name], () => {
      const v = this.xattrs.get(`${path}\0${name}`);
      return v === undefined ? null : Buffer.from(v);
    });
  }

  statfs(path: string): StatfsInfo {
    return this.run('statfs', [path], () => ({ type: 0, bsize: 0, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, flags: 0 }));
  }

  setns(fd: number, nstype: number): void {
    this.run('setns', [fd, nstype], () => undefined);
  }

  unshare(flags: number): void {
    this.run('unshare', [flags], () => undefined);
  }

  gettid(): number {
    return this.run('gettid', [], () => process.pid);
  }

  pidfdOpen(pid: number): number {
    return this.run('pidfdOpen', [pid], () => this.nextFd++);
  }

  pidfdSendSignal(pidfd: number, signal: number): void {
    this.run('pidfdSendSignal', [pidfd, signal], () => undefined);
  }

  compileSeccomp(profile: OciSeccomp): Buffer {
    return this.run('compileSeccomp', [profile], () => allowAllProgram());
  }

  compileSeccompDetailed(profile: OciSeccomp): CompiledSeccomp {
    return this.run('compileSeccompDetailed', [profile], () => ({ bpf: allowAllProgram(), skipped: [], sameAsDefault: [] }));
  }
}

export { runSeccompBpf, seccompVerdict, evaluateSeccomp, AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64 } from './seccomp-bpf.js';
export type { SeccompData, SeccompVerdict } from './seccomp-bpf.js';
