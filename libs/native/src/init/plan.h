/*
 * The init plan: what berth-init carries out, computed in full by the TypeScript runtime
 * (libs/native/src/plan.ts encodes it; a golden test pins the bytes).
 *
 * Wire: "BRTHPLAN" | u32 version | u32 body length | records. A record is
 * u16 tag | u32 length | payload, little endian, no padding. Strings carry no NUL on the wire.
 * Nested records (mounts, device nodes...) hold records of their own in the payload. Unknown
 * top-level tags are an error: a plan from a newer runtime must not half-run.
 */
#ifndef BERTH_PLAN_H
#define BERTH_PLAN_H

#include <stdint.h>
#include <sys/types.h>

#include "../common/util.h"

#define PLAN_MAGIC "BRTHPLAN"
#define PLAN_VERSION 1

enum plan_tag {
  /* process mode */
  T_MODE = 1,            /* u32: 0 create a container, 1 exec into one (join only) */
  T_NS_FLAGS = 2,        /* u32: CLONE_NEW* to create */
  T_NS_JOIN = 3,         /* nested: F_NS_TYPE u32, F_PATH */
  T_UID_MAP = 4,         /* string, /proc/PID/uid_map content */
  T_GID_MAP = 5,         /* string */
  T_CGROUP_PROCS = 6,    /* string, a cgroup.procs file to write our pid to (repeated) */
  T_PID_FILE = 7,        /* string, host path the container's host pid is written to */
  T_ROOTFS = 10,         /* string, absolute host path */
  T_ROOT_PROPAGATION = 11, /* u32 mount flags for "/" before anything (MS_SLAVE|MS_REC...) */
  T_PIVOT = 12,          /* u32: 0 pivot_root (chroot if the kernel refuses), 1 chroot */
  T_ROOT_READONLY = 13,  /* u32 bool */
  T_MOUNT = 14,          /* nested: F_SRC F_DST F_FSTYPE F_FLAGS F_PROPAGATION F_DATA F_MKDIR F_REMOUNT F_NOSYMLINK */
  T_MKNOD = 15,          /* nested: F_DST F_MODE F_MAJOR F_MINOR F_UID F_GID */
  T_SYMLINK = 16,        /* nested: F_SRC (link target) F_DST (link path) */
  T_BIND_DEV = 17,       /* nested: F_SRC (host device) F_DST */
  T_MASK = 18,           /* string path inside the container (after pivot) */
  T_READONLY_PATH = 19,  /* string */
  T_SYSCTL = 20,         /* nested: F_KEY F_VALUE */
  T_HOSTNAME = 21,       /* string */
  T_DOMAINNAME = 22,     /* string */
  T_CWD = 30,            /* string */
  T_ARG = 31,            /* string (repeated, in order) */
  T_ENV = 32,            /* string (repeated) */
  T_UID = 33,            /* u32 */
  T_GID = 34,            /* u32 */
  T_GROUP = 35,          /* u32 additional gid (repeated) */
  T_UMASK = 36,          /* u32 */
  T_RLIMIT = 37,         /* nested: F_TYPE F_SOFT F_HARD */
  T_CAPS = 38,           /* 5 x u64: bounding, effective, permitted, inheritable, ambient */
  T_NO_NEW_PRIVS = 39,   /* u32 bool */
  T_SECCOMP = 40,        /* bytes: struct sock_filter[] */
  T_SECCOMP_FLAGS = 41,  /* u32 SECCOMP_FILTER_FLAG_* */
  T_OOM_SCORE_ADJ = 42,  /* string (a number) */
  T_TERMINAL = 43,       /* u32 bool */
  T_CONSOLE_SOCKET = 44, /* string, unix socket path the pty master is sent to */
  T_START_FIFO = 45,     /* string, host path; the init waits on it before exec */
  T_EXEC_PATH = 46,      /* string: the program to exec (args[0] resolved against PATH inside) */
  T_REAPER = 47,         /* u32 bool: PID 1 forks the process and reaps (Docker's --init) */
};

enum plan_field {
  F_SRC = 1, F_DST = 2, F_FSTYPE = 3, F_FLAGS = 4, F_PROPAGATION = 5, F_DATA = 6, F_MKDIR = 7,
  F_REMOUNT = 8, F_NOSYMLINK = 9, F_NS_TYPE = 10, F_PATH = 11, F_MODE = 12, F_MAJOR = 13,
  F_MINOR = 14, F_UID = 15, F_GID = 16, F_KEY = 17, F_VALUE = 18, F_TYPE = 19, F_SOFT = 20,
  F_HARD = 21,
};

/* Mount step. mkdir: 0 directory, 1 file, 2 do not create. */
struct plan_mount {
  const char *src, *dst, *fstype, *data;
  unsigned long flags, propagation, remount;
  uint32_t mkdir_kind;
  uint32_t nosymlink;
};

/* One step of the root filesystem setup, in plan order. */
enum step_kind { STEP_MOUNT, STEP_MKNOD, STEP_SYMLINK, STEP_BIND_DEV };
struct plan_step {
  enum step_kind kind;
  struct plan_mount m;     /* STEP_MOUNT, STEP_BIND_DEV (src, dst) */
  const char *src, *dst;   /* STEP_SYMLINK */
  uint32_t mode, major, minor, uid, gid; /* STEP_MKNOD */
};

struct plan_kv { const char *key, *value; };
struct plan_ns { uint32_t type; const char *path; };
struct plan_rlimit { uint32_t type; uint64_t soft, hard; };

#define PLAN_MAX 512

struct plan {
  uint32_t mode, ns_flags, pivot, root_readonly, uid, gid, umask, has_umask, no_new_privs,
      terminal, seccomp_flags, reaper;
  unsigned long root_propagation;
  const char *uid_map, *gid_map, *pid_file, *rootfs, *hostname, *domainname, *cwd,
      *oom_score_adj, *console_socket, *start_fifo, *exec_path;
  uint64_t caps[5];
  int has_caps;
  const unsigned char *seccomp;
  uint32_t seccomp_len;

  struct plan_ns ns_join[16]; int n_ns_join;
  const char *cgroup_procs[32]; int n_cgroup_procs;
  struct plan_step steps[PLAN_MAX]; int n_steps;
  const char *masks[128]; int n_masks;
  const char *readonly_paths[128]; int n_readonly;
  struct plan_kv sysctls[64]; int n_sysctls;
  char *args[PLAN_MAX]; int n_args;   /* NULL-terminated */
  char *env[PLAN_MAX]; int n_env;     /* NULL-terminated */
  gid_t groups[64]; int n_groups;
  struct plan_rlimit rlimits[32]; int n_rlimits;
};

/* Parses buf (kept alive by the caller: strings point into a copy made here). */
int plan_parse(const char *buf, size_t len, struct plan *p, struct berr *e);

#endif
