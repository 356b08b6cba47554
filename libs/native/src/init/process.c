/* The process half of the init: console, rlimits, credentials, capabilities, seccomp. */
#define _GNU_SOURCE
#include "init.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <termios.h>

int connect_console(const char *path, struct berr *e) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) return berr_set(e, ENAMETOOLONG, "connect", path, "console socket path");
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return BERR_SYS(e, "socket", path);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(fd);
    return berr_set(e, err, "connect", path, "console socket");
  }
  return fd;
}

static int send_fd(int sock, int fd, const char *name) {
  char buf[CMSG_SPACE(sizeof(int))];
  memset(buf, 0, sizeof buf);
  struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  return sendmsg(sock, &msg, 0) < 0 ? -1 : 0;
}

/*
 * Inside the new root: a pty from the container's own devpts; the master goes to whoever
 * listens on the console socket, the slave becomes stdio, the controlling terminal and
 * /dev/console.
 */
int setup_console(int sock, struct berr *e) {
  cleanup_fd int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return BERR_SYS(e, "open", "/dev/ptmx");
  if (grantpt(master) < 0 || unlockpt(master) < 0) return BERR_SYS(e, "unlockpt", "/dev/ptmx");
  char name[64];
  if (ptsname_r(master, name, sizeof name) != 0) return BERR_SYS(e, "ptsname", "/dev/ptmx");
  cleanup_fd int slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0) return BERR_SYS(e, "open", name);
  /* /dev/console: an empty file bound to the pty (replacing anything the image put there). */
  unlink("/dev/console");
  int c = open("/dev/console", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (c < 0) return BERR_SYS(e, "creat", "/dev/console");
  close(c);
  if (mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0) return BERR_SYS(e, "mount", "/dev/console");
  if (send_fd(sock, master, name) < 0) return BERR_SYS(e, "sendmsg", "console socket");
  for (int i = 0; i < 3; i++)
    if (dup2(slave, i) < 0) return BERR_SYS(e, "dup2", name);
  if (ioctl(0, TIOCSCTTY, 0) < 0) return BERR_SYS(e, "ioctl", "TIOCSCTTY");
  return 0;
}

int set_rlimits(const struct plan *p, struct berr *e) {
  for (int i = 0; i < p->n_rlimits; i++) {
    struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
    if (setrlimit((int)p->rlimits[i].type, &rl) < 0)
      return berr_set(e, errno, "setrlimit", "", "resource %u", p->rlimits[i].type);
  }
  return 0;
}

static int is_executable(const char *path, struct berr *e) {
  struct stat st;
  if (stat(path, &st) < 0) return BERR_SYS(e, "stat", path);
  if (S_ISDIR(st.st_mode)) return berr_set(e, EACCES, "exec", path, "is a directory");
  if (access(path, X_OK) < 0) return BERR_SYS(e, "access", path);
  return 0;
}

/* args[0] resolved against the container's PATH, inside the new root (like execvp). */
int resolve_exec(const struct plan *p, char *out, size_t len, struct berr *e) {
  const char *name = p->exec_path ? p->exec_path : p->args[0];
  if (strchr(name, '/')) {
    snprintf(out, len, "%s", name);
    return is_executable(out, e);
  }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (int i = 0; i < p->n_env; i++)
    if (strncmp(p->env[i], "PATH=", 5) == 0) path = p->env[i] + 5;
  int found_noexec = 0;
  char dir[4096];
  while (*path) {
    const char *colon = strchr(path, ':');
    size_t n = colon ? (size_t)(colon - path) : strlen(path);
    snprintf(dir, sizeof dir, "%.*s", (int)n, n ? path : ".");
    snprintf(out, len, "%s/%s", dir, name);
    struct berr tmp;
    if (is_executable(out, &tmp) == 0) return 0;
    if (tmp.err == EACCES) found_noexec = 1;
    path += n + (colon ? 1 : 0);
  }
  if (found_noexec) return berr_set(e, EACCES, "exec", name, "permission denied");
  return berr_set(e, ENOENT, "exec", name, "executable file not found in $PATH");
}

int install_seccomp(const struct plan *p, struct berr *e) {
  if (p->seccomp == NULL) return 0;
  struct sock_fprog prog = {.len = (unsigned short)(p->seccomp_len / 8), .filter = (struct sock_filter *)p->seccomp};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, &prog) < 0)
    return berr_set(e, errno, "seccomp", "", "install filter of %u instructions", prog.len);
  return 0;
}

static int cap_last(void) {
  static int last = -1;
  if (last >= 0) return last;
  char buf[16] = {0};
  cleanup_fd int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0 && read(fd, buf, sizeof buf - 1) > 0) last = atoi(buf);
  if (last <= 0) last = CAP_LAST_CAP;
  return last;
}

/*
 * Groups, gid, uid, then the five capability sets. Capabilities survive the uid change through
 * PR_SET_KEEPCAPS; the bounding set is cut first, while CAP_SETPCAP is still held.
 */
int set_identity(const struct plan *p, struct berr *e) {
  /* (uid_t)-1 means "leave unchanged" to setresuid and setgroups' callers: root stays root. */
  if (p->uid == (uint32_t)-1) return berr_set(e, EINVAL, "setresuid", "", "uid %u is (uid_t)-1", p->uid);
  if (p->gid == (uint32_t)-1) return berr_set(e, EINVAL, "setresgid", "", "gid %u is (gid_t)-1", p->gid);
  for (int i = 0; i < p->n_groups; i++)
    if (p->groups[i] == (gid_t)-1) return berr_set(e, EINVAL, "setgroups", "", "gid %u is (gid_t)-1", p->groups[i]);
  int last = cap_last();
  if (p->has_caps) {
    for (int c = 0; c <= last; c++) {
      if (p->caps[0] & (1ULL << c)) continue;
      if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
        return berr_set(e, errno, "prctl", "", "PR_CAPBSET_DROP %d", c);
    }
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return BERR_SYS(e, "prctl", "PR_SET_KEEPCAPS");
  if (setgroups((size_t)p->n_groups, p->groups) < 0) {
    /* In a user namespace with setgroups denied, no groups is the only option. */
    if (!(errno == EPERM && p->n_groups == 0)) return BERR_SYS(e, "setgroups", "");
  }
  if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0) return berr_set(e, errno, "setresgid", "", "gid %u", p->gid);
  if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0) return berr_set(e, errno, "setresuid", "", "uid %u", p->uid);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return BERR_SYS(e, "prctl", "PR_SET_KEEPCAPS");
  if (!p->has_caps) return 0;
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  for (int i = 0; i < 2; i++) {
    data[i].effective = (uint32_t)(p->caps[1] >> (32 * i));
    data[i].permitted = (uint32_t)(p->caps[2] >> (32 * i));
    data[i].inheritable = (uint32_t)(p->caps[3] >> (32 * i));
  }
  if (syscall(SYS_capset, &hdr, data) < 0) return BERR_SYS(e, "capset", "");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return BERR_SYS(e, "prctl", "PR_CAP_AMBIENT_CLEAR_ALL");
  for (int c = 0; c <= last; c++) {
    if (!(p->caps[4] & (1ULL << c))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
      return berr_set(e, errno, "prctl", "", "PR_CAP_AMBIENT_RAISE %d", c);
  }
  return 0;
}

/* A cwd reached through a leaked fd or a symlink must still be inside the new root. */
int check_cwd(const struct plan *p, struct berr *e) {
  const char *cwd = p->cwd ? p->cwd : "/";
  if (chdir(cwd) < 0) return BERR_SYS(e, "chdir", cwd);
  char buf[4096];
  long n = syscall(SYS_getcwd, buf, sizeof buf);
  if (n < 0) return berr_set(e, errno, "getcwd", cwd, "cwd resolves outside the container root");
  if (buf[0] != '/') return berr_set(e, EPERM, "chdir", cwd, "cwd resolves outside the container root");
  return 0;
}
