export {
  MS_RDONLY,
  MS_NOSUID,
  MS_NODEV,
  MS_NOEXEC,
  MS_SYNCHRONOUS,
  MS_REMOUNT,
  MS_MANDLOCK,
  MS_DIRSYNC,
  MS_NOSYMFOLLOW,
  MS_NOATIME,
  MS_NODIRATIME,
  MS_BIND,
  MS_MOVE,
  MS_REC,
  MS_SILENT,
  MS_POSIXACL,
  MS_UNBINDABLE,
  MS_PRIVATE,
  MS_SLAVE,
  MS_SHARED,
  MS_RELATIME,
  MS_I_VERSION,
  MS_STRICTATIME,
  MS_LAZYTIME,
  MNT_FORCE,
  MNT_DETACH,
  MNT_EXPIRE,
  UMOUNT_NOFOLLOW,
  CLONE_NEWTIME,
  CLONE_NEWNS,
  CLONE_NEWCGROUP,
  CLONE_NEWUTS,
  CLONE_NEWIPC,
  CLONE_NEWUSER,
  CLONE_NEWPID,
  CLONE_NEWNET,
  XATTR_CREATE,
  XATTR_REPLACE,
  S_IFMT,
  S_IFSOCK,
  S_IFLNK,
  S_IFREG,
  S_IFBLK,
  S_IFDIR,
  S_IFCHR,
  S_IFIFO,
  FsMagic,
  ST_RDONLY,
  ST_NOSUID,
  ST_NODEV,
  ST_NOEXEC,
  FS_TOPDIR_FL,
  SeccompFilterFlag,
} from './constants.js';
export { nativePaths } from './paths.js';
export type { NativePaths } from './paths.js';
export { realSyscalls, toSystemError } from './syscalls.js';
export type { Syscalls, StatfsInfo, BpfQuery } from './syscalls.js';
export { BPF_CGROUP_DEVICE, BPF_PROG_TYPE_CGROUP_DEVICE, BPF_F_ALLOW_OVERRIDE, BPF_F_ALLOW_MULTI, BPF_F_REPLACE } from './bpf.js';
export { inNetns } from './netns.js';
export { trimMallocHeap } from './memory.js';
export { spawnProcess, makePipe } from './spawn.js';
export type { SpawnOptions } from './spawn.js';
export { createNetns, deleteNetns, netnsExists } from './netns-files.js';
export { seccompActions, seccompOperators, seccompFilterFlags } from './seccomp.js';
export type {
  OciSeccomp,
  OciSeccompSyscall,
  OciSeccompArg,
  SeccompAction,
  SeccompOperator,
  CompiledSeccomp,
} from './seccomp.js';
export * from './plan.js';
