/* probe: reports, as one JSON object on stdout, what a process observes from inside a container.
 *
 * Modes:
 *   probe               report (the default; also `probe report`)
 *   probe exit N        exit with status N, printing nothing
 *   probe sleep [SECS]  sleep (forever without SECS); prints nothing
 *   probe signal        catch every catchable signal, write "probe: ready\n" to stderr, wait;
 *                       on a signal print {"mode":"signal","signal":N,"name":"SIGTERM"} and exit 128+N
 *   probe write PATH    try to create/truncate PATH and write to it, report the outcome
 *   probe syscall NR [ARG...]  make raw system call NR (up to 6 integer args, decimal or 0x hex)
 *                       and report {"mode":"syscall","nr":N,"ret":R,"errno":"ENOSYS"|null}: how
 *                       a seccomp filter answers a call no busybox applet makes
 *
 * Statically linked, no dependencies: it must run in a rootfs that holds nothing but busybox.
 * Every observation that can fail is reported with the errno name instead of aborting, so a
 * test can compare failures across runtimes as well as successes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

extern char **environ;

#define PROBE_FORMAT_VERSION 1

/* ---- small helpers ---------------------------------------------------------------------- */

static const char *errno_name(int e) {
  switch (e) {
    case 0: return NULL;
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG";
    case ENOEXEC: return "ENOEXEC";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case ETXTBSY: return "ETXTBSY";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case ESPIPE: return "ESPIPE";
    case EROFS: return "EROFS";
    case EMLINK: return "EMLINK";
    case EPIPE: return "EPIPE";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ELOOP: return "ELOOP";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EDQUOT: return "EDQUOT";
    default: {
      static char buf[32];
      snprintf(buf, sizeof buf, "E%d", e);
      return buf;
    }
  }
}

static void jw_kerrno(struct jw *w, const char *key, int e) {
  if (e == 0) jw_knull(w, key);
  else jw_kstr(w, key, errno_name(e));
}

/* Reads a whole (small, procfs-style) file. Returns a malloc'd buffer or NULL with errno set. */
static char *read_file(const char *path, size_t limit, size_t *len_out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap + 1);
  if (buf == NULL) {
    close(fd);
    errno = ENOMEM;
    return NULL;
  }
  for (;;) {
    if (len == cap) {
      if (cap >= limit) break;
      cap *= 2;
      char *nb = realloc(buf, cap + 1);
      if (nb == NULL) break;
      buf = nb;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      free(buf);
      close(fd);
      errno = e;
      return NULL;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  if (len_out) *len_out = len;
  return buf;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted names of a directory (without . and ..). Returns count, or -1 with errno. */
static int list_dir(const char *path, char ***out) {
  DIR *d = opendir(path);
  if (d == NULL) return -1;
  int n = 0, cap = 16;
  char **names = malloc(sizeof(char *) * (size_t)cap);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (n == cap) {
      cap *= 2;
      names = realloc(names, sizeof(char *) * (size_t)cap);
    }
    names[n++] = strdup(de->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof(char *), cmp_str);
  *out = names;
  return n;
}

static void free_list(char **names, int n) {
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

static int is_numeric(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

static const char *type_of_mode(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "symlink";
  if (S_ISCHR(m)) return "char";
  if (S_ISBLK(m)) return "block";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  return "unknown";
}

/* Splits s at sep into a JSON array of strings. */
static void jw_split(struct jw *w, const char *s, char sep) {
  jw_arr_open(w);
  const char *start = s;
  for (const char *p = s;; p++) {
    if (*p == sep || *p == '\0') {
      if (p > start) jw_strn(w, start, (size_t)(p - start));
      if (*p == '\0') break;
      start = p + 1;
    }
  }
  jw_arr_close(w);
}

/* ---- observations ----------------------------------------------------------------------- */

static void obs_ids(struct jw *w) {
  jw_kint(w, "pid", getpid());
  jw_kint(w, "ppid", getppid());
  jw_kint(w, "uid", getuid());
  jw_kint(w, "gid", getgid());
  jw_kint(w, "euid", geteuid());
  jw_kint(w, "egid", getegid());
  gid_t groups[256];
  int n = getgroups(256, groups);
  jw_key(w, "groups");
  jw_arr_open(w);
  for (int i = 0; i < n; i++) jw_int(w, groups[i]);
  jw_arr_close(w);
}

static void obs_cwd_host_env(struct jw *w) {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf) != NULL) jw_kstr(w, "cwd", buf);
  else jw_kstr(w, "cwd", NULL);
  char host[256];
  if (gethostname(host, sizeof host) == 0) {
    host[sizeof host - 1] = '\0';
    jw_kstr(w, "hostname", host);
  } else {
    jw_kstr(w, "hostname", NULL);
  }
  jw_key(w, "env");
  jw_arr_open(w);
  for (char **e = environ; e && *e; e++) jw_str(w, *e);
  jw_arr_close(w);
  mode_t old = umask(0);
  umask(old);
  char um[8];
  snprintf(um, sizeof um, "%04o", (unsigned)old);
  jw_kstr(w, "umask", um);
}

static void obs_status(struct jw *w) {
  static const char *keys[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                               "NoNewPrivs", "Seccomp", "Seccomp_filters", NULL};
  jw_key(w, "status");
  jw_obj_open(w);
  char *s = read_file("/proc/self/status", 1 << 20, NULL);
  if (s != NULL) {
    char *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      char *colon = strchr(line, ':');
      if (colon == NULL) continue;
      *colon = '\0';
      for (int i = 0; keys[i]; i++) {
        if (strcmp(line, keys[i]) == 0) {
          char *v = colon + 1;
          while (*v == ' ' || *v == '\t') v++;
          jw_kstr(w, line, v);
        }
      }
    }
    free(s);
  }
  jw_obj_close(w);
}

static void obs_processes(struct jw *w) {
  jw_key(w, "processes");
  jw_arr_open(w);
  char **names;
  int n = list_dir("/proc", &names);
  for (int i = 0; i < n; i++) {
    if (!is_numeric(names[i])) continue;
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/stat", names[i]);
    char *stat = read_file(path, 8192, NULL);
    if (stat == NULL) continue; /* exited meanwhile */
    char *open_paren = strchr(stat, '(');
    char *close_paren = strrchr(stat, ')');
    if (open_paren == NULL || close_paren == NULL) {
      free(stat);
      continue;
    }
    char state = '?';
    long ppid = -1;
    sscanf(close_paren + 1, " %c %ld", &state, &ppid);
    jw_obj_open(w);
    jw_kint(w, "pid", atol(names[i]));
    jw_kint(w, "ppid", ppid);
    jw_key(w, "comm");
    jw_strn(w, open_paren + 1, (size_t)(close_paren - open_paren - 1));
    char st[2] = {state, 0};
    jw_kstr(w, "state", st);
    snprintf(path, sizeof path, "/proc/%s/cmdline", names[i]);
    size_t len = 0;
    char *cmd = read_file(path, 65536, &len);
    jw_key(w, "cmdline");
    jw_arr_open(w);
    if (cmd != NULL) {
      size_t start = 0;
      for (size_t k = 0; k < len; k++) {
        if (cmd[k] == '\0') {
          jw_strn(w, cmd + start, k - start);
          start = k + 1;
        }
      }
      if (start < len) jw_strn(w, cmd + start, len - start);
      free(cmd);
    }
    jw_arr_close(w);
    jw_obj_close(w);
    free(stat);
  }
  if (n >= 0) free_list(names, n);
  jw_arr_close(w);
}

/* /proc/self/mountinfo without mount ids, parent ids and device numbers, which differ per boot
 * and per runtime and say nothing about the container's view. */
static void obs_mounts(struct jw *w) {
  jw_key(w, "mounts");
  jw_arr_open(w);
  char *s = read_file("/proc/self/mountinfo", 1 << 22, NULL);
  if (s != NULL) {
    char *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      char *f[64];
      int nf = 0;
      char *save2 = NULL;
      for (char *tok = strtok_r(line, " ", &save2); tok && nf < 64; tok = strtok_r(NULL, " ", &save2))
        f[nf++] = tok;
      if (nf < 10) continue;
      int dash = -1;
      for (int i = 6; i < nf; i++)
        if (strcmp(f[i], "-") == 0) {
          dash = i;
          break;
        }
      if (dash < 0 || dash + 3 > nf) continue;
      jw_obj_open(w);
      jw_kstr(w, "mountPoint", f[4]);
      jw_kstr(w, "root", f[3]);
      jw_kstr(w, "fstype", f[dash + 1]);
      jw_kstr(w, "source", f[dash + 2]);
      jw_key(w, "options");
      jw_split(w, f[5], ',');
      jw_key(w, "superOptions");
      jw_split(w, dash + 3 < nf ? f[dash + 3] : "", ',');
      jw_key(w, "propagation");
      jw_arr_open(w);
      for (int i = 6; i < dash; i++) jw_str(w, f[i]);
      jw_arr_close(w);
      jw_obj_close(w);
    }
    free(s);
  }
  jw_arr_close(w);
}

static void obs_namespaces(struct jw *w) {
  jw_key(w, "namespaces");
  jw_obj_open(w);
  char **names;
  int n = list_dir("/proc/self/ns", &names);
  for (int i = 0; i < n; i++) {
    char path[128], target[256];
    snprintf(path, sizeof path, "/proc/self/ns/%s", names[i]);
    ssize_t len = readlink(path, target, sizeof target - 1);
    if (len < 0) {
      jw_knull(w, names[i]);
      continue;
    }
    target[len] = '\0';
    jw_kstr(w, names[i], target);
  }
  if (n >= 0) free_list(names, n);
  jw_obj_close(w);
}

static void jw_rlim(struct jw *w, const char *key, rlim_t v) {
  if (v == RLIM_INFINITY) jw_kstr(w, key, "unlimited");
  else jw_kint(w, key, (long long)v);
}

static void obs_rlimits(struct jw *w) {
  static const struct {
    const char *name;
    int res;
  } lims[] = {
      {"as", RLIMIT_AS},         {"core", RLIMIT_CORE},       {"cpu", RLIMIT_CPU},
      {"data", RLIMIT_DATA},     {"fsize", RLIMIT_FSIZE},     {"locks", RLIMIT_LOCKS},
      {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
      {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},     {"rss", RLIMIT_RSS},
      {"rtprio", RLIMIT_RTPRIO}, {"rttime", RLIMIT_RTTIME},   {"sigpending", RLIMIT_SIGPENDING},
      {"stack", RLIMIT_STACK},   {NULL, 0},
  };
  jw_key(w, "rlimits");
  jw_obj_open(w);
  for (int i = 0; lims[i].name; i++) {
    struct rlimit rl;
    jw_key(w, lims[i].name);
    if (getrlimit(lims[i].res, &rl) != 0) {
      jw_null(w);
      continue;
    }
    jw_obj_open(w);
    jw_rlim(w, "soft", rl.rlim_cur);
    jw_rlim(w, "hard", rl.rlim_max);
    jw_obj_close(w);
  }
  jw_obj_close(w);
}

static void dev_walk(struct jw *w, const char *dir, int depth) {
  char **names;
  int n = list_dir(dir, &names);
  for (int i = 0; i < n; i++) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct stat st;
    if (lstat(path, &st) != 0) continue;
    jw_obj_open(w);
    jw_kstr(w, "path", path);
    jw_kstr(w, "type", type_of_mode(st.st_mode));
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
    jw_kstr(w, "mode", mode);
    jw_kint(w, "uid", st.st_uid);
    jw_kint(w, "gid", st.st_gid);
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      char mm[32];
      snprintf(mm, sizeof mm, "%u:%u", major(st.st_rdev), minor(st.st_rdev));
      jw_kstr(w, "device", mm);
    }
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t len = readlink(path, target, sizeof target - 1);
      if (len >= 0) {
        target[len] = '\0';
        jw_kstr(w, "target", target);
      }
    }
    jw_obj_close(w);
    if (S_ISDIR(st.st_mode) && depth < 3) dev_walk(w, path, depth + 1);
  }
  if (n >= 0) free_list(names, n);
}

static void obs_dev(struct jw *w) {
  jw_key(w, "dev");
  jw_arr_open(w);
  dev_walk(w, "/dev", 0);
  jw_arr_close(w);
}

static void obs_root_write(struct jw *w) {
  char path[64];
  snprintf(path, sizeof path, "/.probe-write-test-%d", (int)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  int e = fd < 0 ? errno : 0;
  if (fd >= 0) {
    close(fd);
    unlink(path);
  }
  jw_key(w, "rootWrite");
  jw_obj_open(w);
  jw_kbool(w, "ok", fd >= 0);
  jw_kerrno(w, "errno", e);
  jw_obj_close(w);
}

/* What a process sees at the paths runtimes mask: a masked file reads as empty (a bind of
 * /dev/null), a masked directory lists empty (a read-only tmpfs). */
static void obs_paths(struct jw *w) {
  static const char *paths[] = {"/proc/acpi",         "/proc/asound",       "/proc/kcore",
                                "/proc/keys",         "/proc/latency_stats", "/proc/timer_list",
                                "/proc/timer_stats",  "/proc/sched_debug",  "/proc/scsi",
                                "/sys/firmware",      NULL};
  jw_key(w, "paths");
  jw_obj_open(w);
  for (int i = 0; paths[i]; i++) {
    jw_key(w, paths[i]);
    jw_obj_open(w);
    struct stat st;
    if (stat(paths[i], &st) != 0) {
      jw_kbool(w, "exists", 0);
      jw_kerrno(w, "errno", errno);
      jw_obj_close(w);
      continue;
    }
    jw_kbool(w, "exists", 1);
    jw_kstr(w, "type", type_of_mode(st.st_mode));
    if (S_ISDIR(st.st_mode)) {
      char **names;
      int n = list_dir(paths[i], &names);
      jw_key(w, "entries");
      if (n < 0) {
        jw_null(w);
        jw_kerrno(w, "errno", errno);
      } else {
        jw_arr_open(w);
        for (int k = 0; k < n; k++) jw_str(w, names[k]);
        jw_arr_close(w);
        free_list(names, n);
      }
    } else {
      /* Reads at most 64 KiB: enough to tell empty from not, and /proc/kcore is huge. */
      int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        jw_kerrno(w, "errno", errno);
      } else {
        static char buf[65536];
        size_t total = 0;
        int e = 0;
        for (;;) {
          ssize_t n = read(fd, buf + total, sizeof buf - total);
          if (n < 0) {
            if (errno == EINTR) continue;
            e = errno;
            break;
          }
          if (n == 0 || (total += (size_t)n) == sizeof buf) break;
        }
        close(fd);
        jw_kint(w, "bytesRead", (long long)total);
        jw_kerrno(w, "errno", e);
        if (strcmp(paths[i], "/proc/kcore") != 0) {
          jw_key(w, "text");
          jw_strn(w, buf, total > 1024 ? 1024 : total);
        }
      }
    }
    jw_obj_close(w);
  }
  jw_obj_close(w);
}

static void obs_readonly(struct jw *w) {
  static const char *paths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                "/proc/sysrq-trigger", "/sys", "/", NULL};
  jw_key(w, "readonly");
  jw_obj_open(w);
  for (int i = 0; paths[i]; i++) {
    jw_key(w, paths[i]);
    jw_obj_open(w);
    struct statvfs sv;
    if (statvfs(paths[i], &sv) != 0) {
      jw_kbool(w, "exists", 0);
      jw_kerrno(w, "errno", errno);
    } else {
      jw_kbool(w, "exists", 1);
      jw_kbool(w, "mountReadOnly", (sv.f_flag & ST_RDONLY) != 0);
    }
    jw_obj_close(w);
  }
  jw_obj_close(w);
  /* Opening (never writing) a per-UTS-namespace sysctl tells whether /proc/sys accepts writes. */
  int fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC);
  int e = fd < 0 ? errno : 0;
  if (fd >= 0) close(fd);
  jw_key(w, "procSysWrite");
  jw_obj_open(w);
  jw_kbool(w, "ok", fd >= 0);
  jw_kerrno(w, "errno", e);
  jw_obj_close(w);
}

static void jw_idmap(struct jw *w, const char *key, const char *path) {
  jw_key(w, key);
  char *s = read_file(path, 65536, NULL);
  if (s == NULL) {
    jw_null(w);
    return;
  }
  jw_arr_open(w);
  char *save = NULL;
  for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    long long a, b, c;
    if (sscanf(line, " %lld %lld %lld", &a, &b, &c) == 3) {
      jw_arr_open(w);
      jw_int(w, a);
      jw_int(w, b);
      jw_int(w, c);
      jw_arr_close(w);
    }
  }
  jw_arr_close(w);
  free(s);
}

static void obs_idmaps(struct jw *w) {
  jw_idmap(w, "uidMap", "/proc/self/uid_map");
  jw_idmap(w, "gidMap", "/proc/self/gid_map");
}

static void obs_cgroup(struct jw *w) {
  jw_key(w, "cgroup");
  char *s = read_file("/proc/self/cgroup", 65536, NULL);
  if (s == NULL) {
    jw_null(w);
    return;
  }
  jw_split(w, s, '\n');
  free(s);
}

static const char *fd_kind(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return "closed";
  if (isatty(fd)) return "tty";
  if (S_ISFIFO(st.st_mode)) return "pipe";
  if (S_ISSOCK(st.st_mode)) return "socket";
  if (S_ISCHR(st.st_mode)) return "char";
  if (S_ISREG(st.st_mode)) return "file";
  if (S_ISDIR(st.st_mode)) return "dir";
  return "other";
}

static void obs_fds(struct jw *w) {
  jw_key(w, "stdio");
  jw_arr_open(w);
  for (int fd = 0; fd < 3; fd++) jw_str(w, fd_kind(fd));
  jw_arr_close(w);

  jw_key(w, "fds");
  jw_arr_open(w);
  DIR *d = opendir("/proc/self/fd");
  if (d != NULL) {
    int self = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      if (!is_numeric(de->d_name)) continue;
      int fd = atoi(de->d_name);
      if (fd == self) continue;
      char path[64], target[PATH_MAX];
      snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
      ssize_t len = readlink(path, target, sizeof target - 1);
      target[len < 0 ? 0 : len] = '\0';
      jw_obj_open(w);
      jw_kint(w, "fd", fd);
      jw_kstr(w, "kind", fd_kind(fd));
      jw_kstr(w, "target", target);
      jw_obj_close(w);
    }
    closedir(d);
  }
  jw_arr_close(w);
}

static int report(int argc, char **argv) {
  struct jw w;
  jw_init(&w, stdout);
  jw_obj_open(&w);
  jw_kint(&w, "probe", PROBE_FORMAT_VERSION);
  jw_kstr(&w, "mode", "report");
  jw_key(&w, "argv");
  jw_arr_open(&w);
  for (int i = 0; i < argc; i++) jw_str(&w, argv[i]);
  jw_arr_close(&w);
  /* fds first: the later observations open and close descriptors of their own. */
  obs_fds(&w);
  obs_ids(&w);
  obs_cwd_host_env(&w);
  obs_status(&w);
  obs_processes(&w);
  obs_mounts(&w);
  obs_namespaces(&w);
  obs_rlimits(&w);
  obs_dev(&w);
  obs_root_write(&w);
  obs_paths(&w);
  obs_readonly(&w);
  obs_idmaps(&w);
  obs_cgroup(&w);
  jw_obj_close(&w);
  fputc('\n', stdout);
  return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- other modes ------------------------------------------------------------------------ */

static volatile sig_atomic_t caught;

static void on_signal(int sig) { caught = sig; }

static const char *signal_name(int sig) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGCHLD: return "SIGCHLD";
    case SIGCONT: return "SIGCONT";
    case SIGWINCH: return "SIGWINCH";
    default: return NULL;
  }
}

static int mode_signal(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  /* A container's PID 1 gets only the signals it has handlers for; install one for each. */
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD || sig == SIGCONT) continue;
    sigaction(sig, &sa, NULL);
  }
  static const char ready[] = "probe: ready\n";
  if (write(STDERR_FILENO, ready, sizeof ready - 1) < 0) {
    /* Nobody to tell; go on waiting anyway. */
  }
  while (caught == 0) pause();
  int sig = caught;
  struct jw w;
  jw_init(&w, stdout);
  jw_obj_open(&w);
  jw_kint(&w, "probe", PROBE_FORMAT_VERSION);
  jw_kstr(&w, "mode", "signal");
  jw_kint(&w, "pid", getpid());
  jw_kint(&w, "signal", sig);
  jw_kstr(&w, "name", signal_name(sig));
  jw_obj_close(&w);
  fputc('\n', stdout);
  fflush(stdout);
  return 128 + sig;
}

static int mode_write(const char *path) {
  int e = 0;
  const char *syscall = NULL;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    e = errno;
    syscall = "open";
  } else {
    static const char data[] = "probe\n";
    if (write(fd, data, sizeof data - 1) < 0) {
      e = errno;
      syscall = "write";
    }
    close(fd);
  }
  struct jw w;
  jw_init(&w, stdout);
  jw_obj_open(&w);
  jw_kint(&w, "probe", PROBE_FORMAT_VERSION);
  jw_kstr(&w, "mode", "write");
  jw_kstr(&w, "path", path);
  jw_kbool(&w, "ok", e == 0);
  jw_kerrno(&w, "errno", e);
  jw_kstr(&w, "syscall", syscall);
  jw_obj_close(&w);
  fputc('\n', stdout);
  return fflush(stdout) == 0 ? 0 : 1;
}

static int mode_syscall(int argc, char **argv) {
  long nr = strtol(argv[2], NULL, 0);
  unsigned long a[6] = {0, 0, 0, 0, 0, 0};
  for (int i = 3; i < argc && i - 3 < 6; i++) a[i - 3] = strtoul(argv[i], NULL, 0);
  errno = 0;
  long ret = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  int e = ret == -1 ? errno : 0;
  struct jw w;
  jw_init(&w, stdout);
  jw_obj_open(&w);
  jw_kint(&w, "probe", PROBE_FORMAT_VERSION);
  jw_kstr(&w, "mode", "syscall");
  jw_kint(&w, "nr", nr);
  jw_kint(&w, "ret", ret);
  jw_kerrno(&w, "errno", e);
  jw_obj_close(&w);
  fputc('\n', stdout);
  return fflush(stdout) == 0 ? 0 : 1;
}

static int mode_sleep(const char *secs) {
  long total = secs ? atol(secs) : -1;
  for (;;) {
    struct timespec ts = {total < 0 ? 3600 : total, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    if (total >= 0) return 0;
  }
}

static void usage(void) {
  fputs("usage: probe [report] | exit N | sleep [SECS] | signal | write PATH | syscall NR [ARG...]\n", stderr);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "report";
  if (strcmp(mode, "report") == 0) return report(argc, argv);
  if (strcmp(mode, "exit") == 0 && argc == 3) return atoi(argv[2]) & 0xff;
  if (strcmp(mode, "sleep") == 0 && argc <= 3) return mode_sleep(argc == 3 ? argv[2] : NULL);
  if (strcmp(mode, "signal") == 0 && argc == 2) return mode_signal();
  if (strcmp(mode, "write") == 0 && argc == 3) return mode_write(argv[2]);
  if (strcmp(mode, "syscall") == 0 && argc >= 3 && argc <= 9) return mode_syscall(argc, argv);
  usage();
  return 2;
}
