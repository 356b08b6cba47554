/*
 * berth-shim: the parent of one container. It becomes a child subreaper, runs berth-init
 * (which hands it the container's process), forwards signals to that process, reaps every
 * orphan of the container, and records the exit status in a file.
 *
 *   berth-shim [--detach] --init PATH --pid-file F [--exit-file F]
 *
 * fds 3 (plan) and 4 (report) pass through to berth-init untouched. Exit status: in the
 * foreground, the container's (128+N for a signal); detached, 0 once running.
 */
#define _GNU_SOURCE
#include "../common/util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGTSTP};

static pid_t read_pid(const char *path) {
  char buf[32] = {0};
  cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0) return -1;
  return (pid_t)atoi(buf);
}

static void record_exit(const char *path, int code) {
  if (path == NULL) return;
  char tmp[4096], buf[32];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int n = snprintf(buf, sizeof buf, "%d\n", code);
  if (write_file(tmp, buf, (size_t)n, 1) == 0) rename(tmp, path);
}

static int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

int main(int argc, char **argv) {
  const char *init = NULL, *pid_file = NULL, *exit_file = NULL;
  int detach = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--detach") == 0) detach = 1;
    else if (strcmp(argv[i], "--init") == 0 && i + 1 < argc) init = argv[++i];
    else if (strcmp(argv[i], "--pid-file") == 0 && i + 1 < argc) pid_file = argv[++i];
    else if (strcmp(argv[i], "--exit-file") == 0 && i + 1 < argc) exit_file = argv[++i];
    else {
      fprintf(stderr, "berth-shim: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (init == NULL || pid_file == NULL) {
    fprintf(stderr, "berth-shim: --init and --pid-file are required\n");
    return 2;
  }
  if (detach) {
    pid_t p = fork();
    if (p < 0) return 1;
    if (p > 0) _exit(0);
    setsid();
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return 1;

  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&mask, forwarded[i]);
  sigprocmask(SIG_BLOCK, &mask, &old);
  cleanup_fd int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) return 1;

  pid_t init_pid = fork();
  if (init_pid < 0) return 1;
  if (init_pid == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    char *args[] = {(char *)init, NULL};
    execv(init, args);
    char msg[256];
    int n = snprintf(msg, sizeof msg, "error\t%d\texecve\t%s\tberth-init\n", errno, init);
    (void)write_all(4, msg, (size_t)n);
    _exit(1);
  }
  close(3);
  close(4);
  if (detach) {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      close(null);
    }
  }

  pid_t container = -1;
  int container_done = 0, code = 0;
  while (!container_done) {
    struct signalfd_siginfo si;
    ssize_t n = read(sfd, &si, sizeof si);
    if (n != sizeof si) {
      if (n < 0 && errno == EINTR) continue;
      return 1;
    }
    if (si.ssi_signo != SIGCHLD) {
      if (container > 0) kill(container, (int)si.ssi_signo);
      continue;
    }
    int status;
    pid_t p;
    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
      if (p == init_pid) {
        if (status_code(status) != 0) return status_code(status);
        container = read_pid(pid_file);
        if (container <= 0) return 1;
        /* The container may already be gone: re-check below. */
        init_pid = -1;
      } else if (p == container) {
        code = status_code(status);
        container_done = 1;
      }
    }
  }
  record_exit(exit_file, code);
  return detach ? 0 : code;
}
