/*
 * berth-init: carries out an init plan (plan.h) computed by the TypeScript runtime.
 *
 *   fd 3  the plan (read to EOF)
 *   fd 4  the report pipe: "pid N", then "ready", or "error\tERRNO\tSYSCALL\tPATH\tDETAIL"
 *
 * The parent joins namespaces and the cgroup, clones the container process into the new
 * namespaces, writes the id maps and the pid file, releases the child and exits; the shim
 * (a subreaper) inherits the child. The child builds the root, enters it, drops privileges,
 * waits on the start fifo when there is one, and execs the container's process.
 */
#define _GNU_SOURCE
#include "init.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define PLAN_FD 3
#define REPORT_FD 4


static void report(const char *line) {
  (void)write_all(REPORT_FD, line, strlen(line));
}

static void clean(char *s) {
  for (; *s; s++)
    if (*s == '\t' || *s == '\n') *s = ' ';
}

static void report_error(const struct berr *e) {
  char line[2048];
  struct berr c = *e;
  clean(c.syscall);
  clean(c.path);
  clean(c.detail);
  snprintf(line, sizeof line, "error\t%d\t%s\t%s\t%s\n", c.err, c.syscall, c.path, c.detail);
  report(line);
}

static int exit_code_of(const struct berr *e) {
  if (strcmp(e->syscall, "exec") == 0 || strcmp(e->syscall, "execve") == 0 || strcmp(e->syscall, "stat") == 0 ||
      strcmp(e->syscall, "access") == 0)
    return e->err == ENOENT ? 127 : 126;
  return 1;
}

/*
 * Every namespace file is opened before any is joined: once the mount namespace (or a pid
 * namespace with another /proc) is joined, the later /proc/PID/ns/... paths no longer name
 * what the plan meant, whatever order the plan lists them in.
 */
static int join_namespaces(const struct plan *p, struct berr *e) {
  int fds[sizeof p->ns_join / sizeof p->ns_join[0]];
  int rc = 0;
  int n = 0;
  for (; n < p->n_ns_join; n++) {
    fds[n] = open(p->ns_join[n].path, O_RDONLY | O_CLOEXEC);
    if (fds[n] < 0) {
      rc = BERR_SYS(e, "open", p->ns_join[n].path);
      goto out;
    }
  }
  /* A user namespace first: the others are owned by it. */
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < n; i++) {
      const struct plan_ns *ns = &p->ns_join[i];
      if ((pass == 0) != (ns->type == CLONE_NEWUSER)) continue;
      if (setns(fds[i], (int)ns->type) < 0) {
        rc = BERR_SYS(e, "setns", ns->path);
        goto out;
      }
    }
  }
out:
  for (int i = 0; i < n; i++) close(fds[i]);
  return rc;
}

static int write_id_maps(const struct plan *p, pid_t pid, struct berr *e) {
  char path[64];
  if (p->gid_map) {
    snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
    if (write_file(path, p->gid_map, strlen(p->gid_map), 0) < 0) return BERR_SYS(e, "write", path);
  }
  if (p->uid_map) {
    snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
    if (write_file(path, p->uid_map, strlen(p->uid_map), 0) < 0) return BERR_SYS(e, "write", path);
  }
  return 0;
}

/* Written through a directory fd opened before any namespace was joined. */
static int write_pid_file(int dirfd, const char *path, pid_t pid, struct berr *e) {
  const char *slash = strrchr(path, '/');
  const char *name = slash ? slash + 1 : path;
  char tmp[512], buf[32];
  snprintf(tmp, sizeof tmp, "%s.tmp", name);
  int n = snprintf(buf, sizeof buf, "%d", pid);
  cleanup_fd int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 || write_all(fd, buf, (size_t)n) < 0) return BERR_SYS(e, "write", path);
  if (renameat(dirfd, tmp, dirfd, name) < 0) return BERR_SYS(e, "rename", path);
  return 0;
}

static int wait_start(int fifo, struct berr *e) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fifo);
  cleanup_fd int w = open(path, O_WRONLY | O_CLOEXEC);
  if (w < 0) return BERR_SYS(e, "open", "exec fifo");
  if (write_all(w, "0", 1) < 0) return BERR_SYS(e, "write", "exec fifo");
  return 0;
}

/* argv of berth-init, overwritten in the reaper so `ps` shows what PID 1 is, not a host path. */
static char *argv0;
static size_t argv0_len;

/*
 * Docker's --init: PID 1 forks, the child execs the process in its own process group (the
 * terminal's foreground one), PID 1 forwards every signal it gets to the child, reaps every
 * zombie and exits with the child's status (128+N for a signal).
 */
static __attribute__((noreturn)) void run_reaper(const struct plan *p, const char *exe) {
  struct berr e = {0};
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t child = fork();
  if (child < 0) {
    BERR_SYS(&e, "fork", "reaper");
    report_error(&e);
    _exit(1);
  }
  if (child == 0) {
    setpgid(0, 0);
    if (isatty(0)) tcsetpgrp(0, getpid()); /* SIGTTOU is blocked here */
    sigprocmask(SIG_SETMASK, &old, NULL);
    execve(exe, p->args, p->env);
    BERR_SYS(&e, "execve", exe);
    report_error(&e);
    _exit(exit_code_of(&e));
  }
  close(REPORT_FD);
  for (int fd = 0; fd < 3; fd++) close(fd);
  prctl(PR_SET_NAME, "berth-init", 0, 0, 0);
  if (argv0 != NULL && argv0_len >= 11) {
    memset(argv0, 0, argv0_len);
    memcpy(argv0, "berth-init", 10);
  }
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&all, &si);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    int status;
    pid_t w;
    while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
      if (w != child) continue;
      if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
      _exit(128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    }
  }
}

static __attribute__((noreturn)) void child_main(const struct plan *p, int sync_fd, int console_fd, int fifo) {
  struct berr e = {0};
  char go;
  char exe[4096];

  /* Wait until the parent has written the id maps and the pid file. */
  if (read(sync_fd, &go, 1) != 1) _exit(1);
  close(sync_fd);

  if (p->ns_flags & CLONE_NEWUSER) {
    if (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0) {
      BERR_SYS(&e, "setresuid", "user namespace root");
      goto fail;
    }
  }
  if (setsid() < 0 && p->mode == 0) {
    BERR_SYS(&e, "setsid", "");
    goto fail;
  }
  if (p->mode == 0) {
    if (p->hostname && sethostname(p->hostname, strlen(p->hostname)) < 0) {
      BERR_SYS(&e, "sethostname", p->hostname);
      goto fail;
    }
    if (p->domainname && setdomainname(p->domainname, strlen(p->domainname)) < 0) {
      BERR_SYS(&e, "setdomainname", p->domainname);
      goto fail;
    }
    if (setup_rootfs(p, &e) < 0) goto fail;
  }
  if (p->mode == 0) {
    if (enter_root(p, &e) < 0) goto fail;
    if (finish_rootfs(p, &e) < 0) goto fail;
  }
  if (p->terminal && console_fd >= 0) {
    if (setup_console(console_fd, &e) < 0) goto fail;
    close(console_fd);
  }
  if (set_rlimits(p, &e) < 0) goto fail;
  if (p->has_umask) umask(p->umask);
  if (check_cwd(p, &e) < 0) goto fail;
  if (resolve_exec(p, exe, sizeof exe, &e) < 0) goto fail;
  /* Nothing of the host crosses exec but stdio. */
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  if (!p->no_new_privs && install_seccomp(p, &e) < 0) goto fail;
  if (set_identity(p, &e) < 0) goto fail;
  if (p->no_new_privs) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
      BERR_SYS(&e, "prctl", "PR_SET_NO_NEW_PRIVS");
      goto fail;
    }
    if (install_seccomp(p, &e) < 0) goto fail;
  }
  report("ready\n");
  if (fifo >= 0 && wait_start(fifo, &e) < 0) goto fail;
  /* berth-init ignores SIGPIPE for its own reports; an ignored signal stays ignored across
   * execve, and `yes | head -1` must end with SIGPIPE in the container as anywhere else. */
  signal(SIGPIPE, SIG_DFL);
  if (p->reaper && p->mode == 0) run_reaper(p, exe);
  execve(exe, p->args, p->env);
  BERR_SYS(&e, "execve", exe);
fail:
  report_error(&e);
  _exit(exit_code_of(&e));
}

/*
 * CVE-2019-5736: a container process that execs /proc/self/exe before the init has exec'd
 * (a `#!/proc/self/exe` entrypoint) runs berth-init itself and can hold the binary to write it
 * later. berth-init therefore runs from a sealed memfd copy of itself: the shim execs such a
 * copy; started any other way, the first thing berth-init does, before any namespace, cgroup or
 * host path, is copy itself and re-exec from the copy.
 */
static int reexec_sealed(char **argv, struct berr *e) {
  cleanup_fd int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0) return BERR_SYS(e, "open", "/proc/self/exe");
  if (is_sealed_copy(self)) return 0; /* the shim exec'd one, or this is the re-exec */
  cleanup_fd int copy = sealed_copy(self, e);
  if (copy < 0) return -1;
  exec_fd(copy, argv, environ);
  return BERR_SYS(e, "execveat", "sealed berth-init");
}

int main(int argc, char **argv) {
  struct berr e = {0};
  struct plan p;
  char *buf = NULL;
  char line[64];
  cleanup_fd int console_fd = -1;
  cleanup_fd int start_fifo = -1;
  cleanup_fd int pid_dir = -1;

  if (argc > 0) {
    argv0 = argv[0];
    /* argv and environ are one contiguous area; only argv's own strings are reused. */
    argv0_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]);
  }
  signal(SIGPIPE, SIG_IGN);
  if (reexec_sealed(argv, &e) < 0) goto fail;
  prctl(PR_SET_NAME, "berth-init", 0, 0, 0); /* not the memfd's fd number */
  /* Nothing of the host but the plan, the report pipe and stdio. */
  syscall(SYS_close_range, REPORT_FD + 1U, ~0U, 0U);
  if (fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC) < 0) return 2;
  /*
   * Until it execs, /proc/PID of the init (and of its clone, which inherits this) is closed to
   * the container's processes: its fds and its exe lead to the host (CVE-2016-9962). The kernel
   * makes the container's process dumpable again at execve.
   */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
    BERR_SYS(&e, "prctl", "PR_SET_DUMPABLE");
    goto fail;
  }
  ssize_t len = read_all(PLAN_FD, &buf);
  close(PLAN_FD);
  if (len < 0) {
    BERR_SYS(&e, "read", "plan");
    goto fail;
  }
  if (plan_parse(buf, (size_t)len, &p, &e) < 0) goto fail;
  if (p.oom_score_adj && write_file("/proc/self/oom_score_adj", p.oom_score_adj, strlen(p.oom_score_adj), 0) < 0) {
    BERR_SYS(&e, "write", "/proc/self/oom_score_adj");
    goto fail;
  }
  snprintf(line, sizeof line, "%d", getpid());
  for (int i = 0; i < p.n_cgroup_procs; i++) {
    if (write_file(p.cgroup_procs[i], line, strlen(line), 0) < 0) {
      BERR_SYS(&e, "write", p.cgroup_procs[i]);
      goto fail;
    }
  }
  if (p.terminal && p.console_socket) {
    console_fd = connect_console(p.console_socket, &e);
    if (console_fd < 0) goto fail;
  }
  /* Host paths are opened before joining namespaces: a joined mount namespace hides them. */
  if (p.start_fifo) {
    start_fifo = open(p.start_fifo, O_PATH | O_CLOEXEC);
    if (start_fifo < 0) {
      BERR_SYS(&e, "open", p.start_fifo);
      goto fail;
    }
  }
  if (p.pid_file) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", p.pid_file);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
      berr_set(&e, EINVAL, "open", p.pid_file, "pid file path is not absolute");
      goto fail;
    }
    *(slash == dir ? slash + 1 : slash) = '\0';
    pid_dir = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pid_dir < 0) {
      BERR_SYS(&e, "open", dir);
      goto fail;
    }
  }
  if (join_namespaces(&p, &e) < 0) goto fail;
  int sync[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0) {
    BERR_SYS(&e, "socketpair", "");
    goto fail;
  }
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(SIGCHLD | p.ns_flags), NULL, NULL, NULL, 0);
  if (pid < 0) {
    berr_set(&e, errno, "clone", "", "namespaces 0x%x", p.ns_flags);
    goto fail;
  }
  if (pid == 0) {
    /* The child keeps only what it uses: the host's state dir stays with the parent. */
    close(sync[0]);
    if (pid_dir >= 0) close(pid_dir);
    child_main(&p, sync[1], console_fd, start_fifo);
  }
  close(sync[1]);
  if (p.ns_flags & CLONE_NEWUSER && write_id_maps(&p, pid, &e) < 0) goto kill_child;
  if (p.pid_file && write_pid_file(pid_dir, p.pid_file, pid, &e) < 0) goto kill_child;
  snprintf(line, sizeof line, "pid %d\n", pid);
  report(line);
  if (write_all(sync[0], "g", 1) < 0) {
    BERR_SYS(&e, "write", "sync");
    goto kill_child;
  }
  return 0;
kill_child:
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
fail:
  report_error(&e);
  return 1;
}
