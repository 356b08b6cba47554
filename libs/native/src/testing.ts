// Fakes for unit tests: `@berth/native/testing`.
import { readdirSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { SystemError } from '@berth/errors';
import { XATTR_CREATE, XATTR_REPLACE } from './constants.js';
import type { CompiledSeccomp, OciSeccomp } from './seccomp.js';
import { realSyscalls, type BpfQuery, type StatfsInfo, type Syscalls } from './syscalls.js';
import { BPF_F_REPLACE } from './bpf.js';

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
  inodeFlags: 'ioctl_setflags',
  setns: 'setns',
  unshare: 'unshare',
  gettid: 'gettid',
  pidfdOpen: 'pidfd_open',
  pidfdSendSignal: 'pidfd_send_signal',
  compileSeccomp: 'seccomp_compile',
  compileSeccompDetailed: 'seccomp_compile',
  bpfProgLoadCgroupDevice: 'bpf_prog_load',
  bpfProgAttach: 'bpf_prog_attach',
  bpfProgDetach: 'bpf_prog_detach',
  bpfProgQuery: 'bpf_prog_query',
  bpfProgGetFdById: 'bpf_prog_get_fd_by_id',
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
    case 'inodeFlags':
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
 * process.pid; statfs answers zeros, inodeFlags keeps flags per path (0 at first), and compileSeccomp an allow-all program unless told
 * otherwise with `respond`. `failOn` makes a call throw the SystemError the real one would.
 * bpf: bpfProgLoadCgroupDevice hands out fds (from 1000 up) for programs with ids from 1 up;
 * attach / detach / query keep the list of program ids per target fd (BPF_F_REPLACE swaps the
 * replaced one in place); bpfProgGetFdById gives a new fd for a loaded id, else ENOENT.
 * `bpfAttached(targetFd)` returns the attached programs' instructions, in order.
 */
export class RecordingSyscalls implements Syscalls {
  readonly calls: SyscallCall[] = [];
  private readonly failures: Failure[] = [];
  private readonly responses = new Map<SyscallName, (...args: never[]) => unknown>();
  private readonly xattrs = new Map<string, Buffer>();
  private readonly flags = new Map<string, number>();
  private nextFd = 1000;
  private nextProgId = 1;
  /** fd -> program id, and program id -> its instructions. */
  private readonly progFds = new Map<number, number>();
  private readonly progInsns = new Map<number, Buffer>();
  /** target fd -> attached program ids, in attach order. */
  private readonly attachedIds = new Map<number, number[]>();

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
    this.flags.clear();
    this.progFds.clear();
    this.progInsns.clear();
    this.attachedIds.clear();
  }

  /** The instructions of the programs attached to `targetFd` (bpf model), in attach order. */
  bpfAttached(targetFd: number): Buffer[] {
    return (this.attachedIds.get(targetFd) ?? []).map((id) => Buffer.from(this.progInsns.get(id)!));
  }

  private bpfFail(code: 'EBADF' | 'ENOENT' | 'EEXIST', syscall: string): never {
    throw new SystemError({ errno: osConstants.errno[code], code, syscall });
  }

  private progId(fd: number, syscall: string): number {
    const id = this.progFds.get(fd);
    return id === undefined ? this.bpfFail('EBADF', syscall) : id;
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

  /** Model: flags per path, all 0 at first. */
  inodeFlags(path: string, set: number, clear: number): number {
    return this.run('inodeFlags', [path, set, clear], () => {
      const flags = ((this.flags.get(path) ?? 0) | set) & ~clear;
      this.flags.set(path, flags >>> 0);
      return flags >>> 0;
    });
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

  bpfProgLoadCgroupDevice(insns: Buffer, license: string): number {
    return this.run('bpfProgLoadCgroupDevice', [insns, license], () => {
      const id = this.nextProgId++;
      const fd = this.nextFd++;
      this.progInsns.set(id, Buffer.from(insns));
      this.progFds.set(fd, id);
      return fd;
    });
  }

  bpfProgAttach(progFd: number, targetFd: number, attachType: number, flags: number, replaceFd?: number): void {
    this.run('bpfProgAttach', [progFd, targetFd, attachType, flags, replaceFd], () => {
      const id = this.progId(progFd, 'bpf_prog_attach');
      const list = this.attachedIds.get(targetFd) ?? [];
      if (list.includes(id)) this.bpfFail('EEXIST', 'bpf_prog_attach');
      if (flags & BPF_F_REPLACE) {
        const at = list.indexOf(this.progId(replaceFd ?? -1, 'bpf_prog_attach'));
        if (at < 0) this.bpfFail('ENOENT', 'bpf_prog_attach');
        list[at] = id;
      } else {
        list.push(id);
      }
      this.attachedIds.set(targetFd, list);
    });
  }

  bpfProgDetach(progFd: number, targetFd: number, attachType: number): void {
    this.run('bpfProgDetach', [progFd, targetFd, attachType], () => {
      const id = this.progId(progFd, 'bpf_prog_detach');
      const list = this.attachedIds.get(targetFd) ?? [];
      const at = list.indexOf(id);
      if (at < 0) this.bpfFail('ENOENT', 'bpf_prog_detach');
      list.splice(at, 1);
    });
  }

  bpfProgQuery(targetFd: number, attachType: number): BpfQuery {
    return this.run('bpfProgQuery', [targetFd, attachType], () => {
      const progIds = [...(this.attachedIds.get(targetFd) ?? [])];
      return { attachFlags: 0, progIds };
    });
  }

  bpfProgGetFdById(id: number): number {
    return this.run('bpfProgGetFdById', [id], () => {
      if (!this.progInsns.has(id)) this.bpfFail('ENOENT', 'bpf_prog_get_fd_by_id');
      const fd = this.nextFd++;
      this.progFds.set(fd, id);
      return fd;
    });
  }
}

/** The addon's syscalls, or undefined where the addon is not built (a test then skips). */
export function realSyscallsIfBuilt(): Syscalls | undefined {
  try {
    return realSyscalls();
  } catch (err) {
    if ((err as { code?: string }).code === 'BERTH_NATIVE_UNAVAILABLE') return undefined;
    throw err;
  }
}

export { runSeccompBpf, seccompVerdict, evaluateSeccomp, AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64 } from './seccomp-bpf.js';
export type { SeccompData, SeccompVerdict } from './seccomp-bpf.js';

/** /proc/<pid>/status as a field map (`SigIgn`, `CapEff`, `NSpid`...), values trimmed. */
export function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** The fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]. */
export function procStat(pid: number): string[] {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** The children of `parent` (default: this process), from /proc: pid and state ('Z': a zombie). */
export function childProcesses(parent = process.pid): { pid: number; state: string }[] {
  const out: { pid: number; state: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const f = procStat(Number(name));
      if (Number(f[1]) === parent) out.push({ pid: Number(name), state: f[0]! });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
