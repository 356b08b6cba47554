/**
 * Kernel constants for the calls of `Syscalls`, as the Linux UAPI headers define them on
 * x86_64 and aarch64. test/constants.test.ts compiles a C program against the system headers
 * and checks every value here.
 */

/** mount(2) flags. */
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOSYMFOLLOW = 0x100;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_SILENT = 0x8000;
export const MS_POSIXACL = 0x10000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_I_VERSION = 0x800000;
export const MS_STRICTATIME = 0x1000000;
export const MS_LAZYTIME = 0x2000000;

/** umount2(2) flags. */
export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;
export const MNT_EXPIRE = 0x4;
export const UMOUNT_NOFOLLOW = 0x8;

/** Namespace types for setns(2) and unshare(2). */
export const CLONE_NEWTIME = 0x80;
export const CLONE_NEWNS = 0x20000;
export const CLONE_NEWCGROUP = 0x2000000;
export const CLONE_NEWUTS = 0x4000000;
export const CLONE_NEWIPC = 0x8000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

/** lsetxattr(2) flags. */
export const XATTR_CREATE = 0x1;
export const XATTR_REPLACE = 0x2;

/** File type bits of a mode, for mknod(2). */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** statfs(2) `type` values (linux/magic.h). */
export const FsMagic = {
  TMPFS: 0x01021994,
  EXT4: 0xef53,
  XFS: 0x58465342,
  BTRFS: 0x9123683e,
  OVERLAYFS: 0x794c7630,
  AUFS: 0x61756673,
  PROC: 0x9fa0,
  SYSFS: 0x62656572,
  CGROUP: 0x27e0eb,
  CGROUP2: 0x63677270,
  NSFS: 0x6e736673,
  DEVPTS: 0x1cd1,
  SQUASHFS: 0x73717368,
  ZFS: 0x2fc12fc1,
} as const;

/** statfs(2) `flags` bits (ST_* in sys/statvfs.h). */
export const ST_RDONLY = 0x1;
export const ST_NOSUID = 0x2;
export const ST_NODEV = 0x4;
export const ST_NOEXEC = 0x8;

/**
 * Inode flags (chattr, FS_IOC_GETFLAGS/SETFLAGS in linux/fs.h). FS_TOPDIR_FL marks the top of a
 * directory hierarchy: ext2/3/4's Orlov allocator spreads the subdirectories made in it over the
 * block groups as it does those of the filesystem root.
 */
export const FS_TOPDIR_FL = 0x00020000;

/** seccomp(2) SECCOMP_SET_MODE_FILTER flags, by their OCI names. */
export const SeccompFilterFlag = {
  SECCOMP_FILTER_FLAG_TSYNC: 0x1,
  SECCOMP_FILTER_FLAG_LOG: 0x2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 0x4,
  SECCOMP_FILTER_FLAG_NEW_LISTENER: 0x8,
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH: 0x10,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 0x20,
} as const;
