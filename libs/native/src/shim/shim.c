/*
 * berth-shim: the parent of one container (or exec) process. It becomes a child subreaper,
 * runs berth-init (which hands it the container's process), forwards signals to that process,
 * reaps every orphan of the container, and records the exit status in a file. With the io
 * flags it also owns the container's stdio (pipes or a pty), writes the json-file log and
 * serves the control socket. The contract is docs/shim-protocol.md.
 *
 *   berth-shim --init PATH --pid-file F [--exit-file F] [--detach]
 *              [--socket S] [--log F [--log-max-size BYTES] [--log-max-files N]]
 *              [--tty] [--stdin] [--stdin-once] [--hold] [--console-socket C] [--init-fd N]
 *   berth-shim --sealed-init PATH
 *
 * berth-init runs from a sealed memfd copy (CVE-2019-5736, see util.h): the one open at
 * --init-fd when it is such a copy (the runtime keeps one), else one made here for this start.
 * --sealed-init makes a copy for the runtime to keep: it holds it at fd SEALED_FD, says
 * "ready" on stdout and exits at EOF on stdin (the runtime opens /proc/PID/fd/SEALED_FD first).
 *
 * fds 3 (plan) and 4 (report) pass through to berth-init untouched; a failure of the shim's
 * own setup is reported on fd 4 in the init's format. Exit status: in the foreground, the
 * container's (128+N for a signal); detached, 0 once running.
 *
 * One poll loop, no threads. Without --socket/--log/--tty/--stdin the container inherits the
 * shim's stdio, as it always did (berth-runtime's foreground mode).
 */
#define _GNU_SOURCE
#include "../common/util.h"
#include "jsonlog.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#define REPORT_FD 4
#define SEALED_FD 100
#define MAX_CLIENTS 64
/* Output queued for one attach client beyond its socket buffer; past this it is dropped. */
#define CLIENT_QUEUE_MAX (256 * 1024)
#define STDIN_BUF 16384
#define DRAIN_MS 1000
/* A connection that has not sent its one-line request in this time gives its slot back. */
#define REQUEST_MS 10000

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGTSTP};

struct opts {
  const char *init, *pid_file, *exit_file, *socket, *log, *console;
  int detach, tty, stdin_open, stdin_once, hold;
  int init_fd;
};

enum client_kind { C_FREE = 0, C_REQUEST, C_ATTACH, C_WAIT };

struct client {
  enum client_kind kind;
  int fd;
  char req[256];
  size_t req_len;
  int want_in, want_out, want_err;
  int eof_in;    /* the client closed its write side */
  int closing;   /* close once the queue is empty */
  char *queue;   /* output the socket did not take yet */
  size_t queue_len;
  long long request_deadline; /* C_REQUEST only */
};

static struct opts o;
static struct jsonlog jlog = {.fd = -1};
static struct client clients[MAX_CLIENTS];
static int listen_fd = -1, console_listen = -1, console_conn = -1;
static int out_fd[2] = {-1, -1}; /* stdout, stderr pipes; with a tty out_fd[0] is the master */
static int in_fd = -1;           /* stdin pipe or the master; -1 when none or closed */
static int master = -1;
static int held;                 /* --hold and no attach client came yet */
/* A spare descriptor: when accept fails with EMFILE it is closed to take the connection and
   close it at once, so the listening socket stops being readable (else poll spins). */
static int spare_fd = -1;
static int stdin_closing;        /* close stdin once the buffer is written */
static int stdin_owner = -1;     /* fd of the first attach client with stdin (--stdin-once) */
static char inbuf[STDIN_BUF];
static size_t in_len;
static struct winsize pending_ws;
static int has_pending_ws;
static pid_t init_pid = -1, container = -1;
static int exited, code, done, init_failed;
static long long drain_deadline, close_deadline;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void report_setup_error(const char *syscall, const char *path) {
  char line[1200];
  int n = snprintf(line, sizeof line, "error\t%d\t%s\t%s\tberth-shim\n", errno, syscall, path ? path : "");
  (void)write_all(REPORT_FD, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
}

/* Forwarded signals received before the container's pid is known; delivered once it is. */
static sigset_t pending_signals;

static pid_t read_pid(const char *path) {
  char buf[32] = {0};
  cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0) return -1;
  return (pid_t)atoi(buf);
}

static void record_exit(const char *path, int c) {
  if (path == NULL) return;
  char tmp[4096], buf[32];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int n = snprintf(buf, sizeof buf, "%d\n", c);
  if (write_file(tmp, buf, (size_t)n, 1) == 0) rename(tmp, path);
}

static int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A listening unix socket at path, mode 0600; a stale file there is replaced. */
static int listen_unix(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  unlink(path);
  mode_t old = umask(0177);
  int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
  umask(old);
  if (rc < 0 || listen(fd, 16) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

/* ---- clients ---- */

static void request_stdin_close(void);
static void stdin_write(void);

static void drop_client(struct client *c) {
  if (c->kind == C_FREE) return;
  if (c->fd == stdin_owner) {
    stdin_owner = -2; /* the owner is gone; nobody takes its place */
    /* Dropped (reset, or over its queue) instead of half-closing: still the end of stdin. */
    if (o.stdin_once) {
      request_stdin_close();
      stdin_write();
    }
  }
  close(c->fd);
  free(c->queue);
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

/* Sends what fits now, queues the rest; a client whose queue overflows is dropped. */
static void client_send(struct client *c, const void *head, size_t head_len, const void *data, size_t len) {
  size_t total = head_len + len, sent = 0;
  if (c->queue_len == 0) {
    struct iovec iov[2] = {{(void *)head, head_len}, {(void *)data, len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        drop_client(c);
        return;
      }
      n = 0;
    }
    sent = (size_t)n;
  }
  if (sent == total) return;
  if (c->queue_len + total - sent > CLIENT_QUEUE_MAX) {
    drop_client(c);
    return;
  }
  char *q = realloc(c->queue, c->queue_len + total - sent);
  if (q == NULL) {
    drop_client(c);
    return;
  }
  c->queue = q;
  for (size_t i = sent; i < total; i++) /* bytes past what the socket took, from head then data */
    q[c->queue_len++] = i < head_len ? ((const char *)head)[i] : ((const char *)data)[i - head_len];
}

static void client_flush(struct client *c) {
  while (c->queue_len > 0) {
    ssize_t n = send(c->fd, c->queue, c->queue_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) drop_client(c);
      return;
    }
    memmove(c->queue, c->queue + n, c->queue_len - (size_t)n);
    c->queue_len -= (size_t)n;
  }
  free(c->queue);
  c->queue = NULL;
}

/* Answers one line and closes. */
static void answer(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void answer(struct client *c, const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  (void)send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
  drop_client(c);
}

static void close_attach(struct client *c) {
  if (c->queue_len == 0) drop_client(c);
  else c->closing = 1;
}

/* Output of stream 0/1 to the log and every attach client that asked for it. */
static void dispatch(int stream, const char *p, size_t n) {
  jsonlog_feed(&jlog, stream, p, n);
  unsigned char head[8] = {(unsigned char)(stream + 1), 0, 0, 0,
                           (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
  for (int i = 0; i < MAX_CLIENTS; i++) {
    struct client *c = &clients[i];
    if (c->kind != C_ATTACH || c->closing) continue;
    if (!(stream == 0 ? c->want_out : c->want_err)) continue;
    client_send(c, head, o.tty ? 0 : sizeof head, p, n);
  }
}

static void close_stdin_now(void) {
  if (in_fd >= 0 && in_fd != master) close(in_fd);
  in_fd = -1;
  in_len = 0;
  stdin_closing = 0;
}

/* Closing a pty's stdin: the terminal's EOF character, as a user typing ^D. */
static void request_stdin_close(void) {
  if (in_fd < 0) return;
  if (master >= 0 && in_fd == master) {
    if (in_len < sizeof inbuf) inbuf[in_len++] = 4;
    stdin_closing = 1;
  } else {
    stdin_closing = 1;
  }
}

static void stdin_write(void) {
  while (in_len > 0 && in_fd >= 0) {
    ssize_t n = write(in_fd, inbuf, in_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) close_stdin_now();
      return;
    }
    memmove(inbuf, inbuf + n, in_len - (size_t)n);
    in_len -= (size_t)n;
  }
  if (in_len == 0 && stdin_closing) {
    if (master >= 0 && in_fd == master) in_fd = -1; /* the ^D went out; later input is dropped */
    else close_stdin_now();
    stdin_closing = 0;
  }
}

static void stdin_take(const char *p, size_t n) {
  if (in_fd < 0 || stdin_closing) return;
  size_t room = sizeof inbuf - in_len;
  if (n > room) n = room;
  memcpy(inbuf + in_len, p, n);
  in_len += n;
  stdin_write();
}

static void apply_ws(void) {
  if (master >= 0 && has_pending_ws) {
    ioctl(master, TIOCSWINSZ, &pending_ws);
    has_pending_ws = 0;
  }
}

static void handle_request(struct client *c, char *line, size_t extra_off) {
  if (strncmp(line, "attach", 6) == 0 && (line[6] == '\0' || line[6] == ' ')) {
    const char *flags = line[6] ? line + 7 : "";
    c->kind = C_ATTACH;
    c->want_in = strchr(flags, 'i') != NULL;
    c->want_out = strchr(flags, 'o') != NULL;
    c->want_err = strchr(flags, 'e') != NULL;
    if (c->want_in && o.stdin_open && stdin_owner == -1) stdin_owner = c->fd;
    held = 0;
    client_send(c, "ok\n", 3, NULL, 0);
    if (c->kind != C_ATTACH) return;
    /* Bytes after the request line are already stdin. */
    if (extra_off < c->req_len && c->want_in && o.stdin_open) stdin_take(c->req + extra_off, c->req_len - extra_off);
    c->req_len = 0;
    if (done) close_attach(c);
    return;
  }
  if (strcmp(line, "wait") == 0) {
    if (done) answer(c, "exit %d\n", code);
    else c->kind = C_WAIT;
    return;
  }
  if (strcmp(line, "status") == 0) {
    if (exited) answer(c, "exited %d\n", code);
    else answer(c, "running %d\n", container > 0 ? container : 0);
    return;
  }
  if (strcmp(line, "close-stdin") == 0) {
    request_stdin_close();
    stdin_write();
    answer(c, "ok\n");
    return;
  }
  unsigned rows, cols;
  char end;
  if (sscanf(line, "resize %u %u%c", &rows, &cols, &end) == 2) {
    if (!o.tty) {
      answer(c, "error %d %s\n", ENOTTY, "the container has no terminal");
      return;
    }
    pending_ws = (struct winsize){.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    has_pending_ws = 1;
    if (master >= 0 && ioctl(master, TIOCSWINSZ, &pending_ws) < 0) {
      int err = errno;
      answer(c, "error %d %s\n", err, strerror(err));
      return;
    }
    if (master >= 0) has_pending_ws = 0;
    answer(c, "ok\n");
    return;
  }
  answer(c, "error %d unknown request\n", EINVAL);
}

static void client_readable(struct client *c) {
  if (c->kind == C_REQUEST) {
    ssize_t n = read(c->fd, c->req + c->req_len, sizeof c->req - 1 - c->req_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      drop_client(c);
      return;
    }
    c->req_len += (size_t)n;
    char *nl = memchr(c->req, '\n', c->req_len);
    if (nl == NULL) {
      if (c->req_len == sizeof c->req - 1) answer(c, "error %d request too long\n", EINVAL);
      return;
    }
    *nl = '\0';
    handle_request(c, c->req, (size_t)(nl - c->req) + 1);
    return;
  }
  char buf[8192];
  int to_stdin = c->kind == C_ATTACH && c->want_in && in_fd >= 0 && !stdin_closing;
  size_t max = to_stdin ? sizeof inbuf - in_len : sizeof buf;
  if (max > sizeof buf) max = sizeof buf;
  ssize_t n = read(c->fd, buf, max);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n < 0) {
    drop_client(c);
    return;
  }
  if (n == 0) {
    /* A half-closed client still gets its answer; a gone one shows as POLLHUP. */
    c->eof_in = 1;
    if (c->fd == stdin_owner && o.stdin_once) {
      request_stdin_close();
      stdin_write();
    }
    return;
  }
  if (to_stdin) stdin_take(buf, (size_t)n);
}

static void accept_clients(void) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
      close(spare_fd);
      fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0) {
        (void)send(fd, "error 24 too many open files\n", 29, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
      }
      spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      continue;
    }
    if (fd < 0) return;
    struct client *c = NULL;
    for (int i = 0; i < MAX_CLIENTS && c == NULL; i++)
      if (clients[i].kind == C_FREE) c = &clients[i];
    if (c == NULL) {
      (void)send(fd, "error 24 too many clients\n", 26, MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    memset(c, 0, sizeof *c);
    c->kind = C_REQUEST;
    c->fd = fd;
    c->request_deadline = now_ms() + REQUEST_MS;
  }
}

/* ---- the pty master from berth-init (runc's console socket protocol) ---- */

static void console_readable(void) {
  char name[256];
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(console_conn, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
  if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
    memcpy(&master, CMSG_DATA(cm), sizeof(int));
    set_nonblock(master);
    out_fd[0] = master;
    if (o.stdin_open && !stdin_closing) in_fd = master;
    apply_ws();
  }
  /* One message, or the init gave up: either way the console socket has done its job. */
  close(console_conn);
  console_conn = -1;
  if (console_listen >= 0) {
    close(console_listen);
    console_listen = -1;
    unlink(o.console);
  }
}

/* ---- output ---- */

static void close_out(int i) {
  if (out_fd[i] < 0) return;
  if (out_fd[i] != master) close(out_fd[i]);
  out_fd[i] = -1;
}

static void out_readable(int i) {
  static char buf[32768];
  for (int rounds = 0; rounds < 4 && out_fd[i] >= 0; rounds++) {
    ssize_t n = read(out_fd[i], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) { /* EOF on a pipe, EIO on a pty master whose slave closed */
      jsonlog_flush(&jlog, i);
      close_out(i);
      return;
    }
    dispatch(i, buf, (size_t)n);
  }
}

static int drained(void) {
  if (out_fd[0] < 0 && out_fd[1] < 0) return 1;
  if (o.tty && master < 0 && console_conn < 0 && console_listen < 0) return 1;
  return !held && drain_deadline > 0 && now_ms() >= drain_deadline;
}

static void finish(void) {
  for (int i = 0; i < 2; i++) {
    jsonlog_flush(&jlog, i);
    close_out(i);
  }
  close_stdin_now();
  if (master >= 0) close(master);
  master = -1;
  if (!init_failed) record_exit(o.exit_file, code);
  /* The socket path goes before any client hears the exit (docs/shim-protocol.md, Lifetime):
   * whoever got "exit N" finds no socket. Connections already made are still served. */
  if (listen_fd >= 0 && o.socket) unlink(o.socket);
  done = 1;
  close_deadline = now_ms() + DRAIN_MS;
  for (int i = 0; i < MAX_CLIENTS; i++) {
    struct client *c = &clients[i];
    if (c->kind == C_WAIT) answer(c, "exit %d\n", code);
    else if (c->kind == C_ATTACH) close_attach(c);
  }
}

static void container_exited(int status) {
  exited = 1;
  code = status;
  container = container > 0 ? container : 0;
  if (!held) drain_deadline = now_ms() + DRAIN_MS;
}

/* ---- setup ---- */

static int parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **val = NULL;
    if (strcmp(a, "--detach") == 0) o.detach = 1;
    else if (strcmp(a, "--tty") == 0) o.tty = 1;
    else if (strcmp(a, "--stdin") == 0) o.stdin_open = 1;
    else if (strcmp(a, "--stdin-once") == 0) o.stdin_once = 1;
    else if (strcmp(a, "--hold") == 0) o.hold = 1;
    else if (strcmp(a, "--init") == 0) val = &o.init;
    else if (strcmp(a, "--pid-file") == 0) val = &o.pid_file;
    else if (strcmp(a, "--exit-file") == 0) val = &o.exit_file;
    else if (strcmp(a, "--socket") == 0) val = &o.socket;
    else if (strcmp(a, "--log") == 0) val = &o.log;
    else if (strcmp(a, "--console-socket") == 0) val = &o.console;
    else if (strcmp(a, "--log-max-size") == 0 && i + 1 < argc) {
      jlog.max_size = atoll(argv[++i]);
      if (jlog.max_size < 0) jlog.max_size = 0;
    } else if (strcmp(a, "--log-max-files") == 0 && i + 1 < argc) {
      jlog.max_files = atoi(argv[++i]);
      if (jlog.max_files < 1) jlog.max_files = 1;
    } else if (strcmp(a, "--init-fd") == 0 && i + 1 < argc) {
      o.init_fd = atoi(argv[++i]);
      /* Never inherited by the init: it is exec'd, not passed on. */
      if (o.init_fd < 3 || fcntl(o.init_fd, F_SETFD, FD_CLOEXEC) < 0) o.init_fd = -1;
    } else {
      fprintf(stderr, "berth-shim: unknown argument %s\n", a);
      return -1;
    }
    if (val != NULL) {
      if (i + 1 >= argc) {
        fprintf(stderr, "berth-shim: %s needs a value\n", a);
        return -1;
      }
      *val = argv[++i];
    }
  }
  if (o.init == NULL || o.pid_file == NULL) {
    fprintf(stderr, "berth-shim: --init and --pid-file are required\n");
    return -1;
  }
  if (o.tty && o.console == NULL) {
    fprintf(stderr, "berth-shim: --tty needs --console-socket\n");
    return -1;
  }
  return 0;
}

/* The container's fds 0-2 in io mode: pipes (or /dev/null for fd 0), or /dev/null with a tty. */
static int make_stdio(int child[3]) {
  int p[2];
  child[0] = child[1] = child[2] = -1;
  if (o.tty) {
    for (int i = 0; i < 3; i++)
      if ((child[i] = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) return -1;
    return 0;
  }
  if (o.stdin_open) {
    if (pipe2(p, O_CLOEXEC) < 0) return -1;
    child[0] = p[0];
    in_fd = p[1];
    set_nonblock(in_fd);
  } else if ((child[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
    return -1;
  }
  for (int i = 0; i < 2; i++) {
    if (pipe2(p, O_CLOEXEC) < 0) return -1;
    out_fd[i] = p[0];
    child[i + 1] = p[1];
    set_nonblock(p[0]);
  }
  return 0;
}

static void reap(void) {
  /* The container's exit may be reaped before its pid is known (same SIGCHLD as the init). */
  static pid_t early_pid[8];
  static int early_status[8], n_early;
  int status;
  pid_t p;
  while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
    if (p == init_pid) {
      init_pid = -1;
      if (status_code(status) != 0) {
        init_failed = 1; /* reported on fd 4; the caller rolls back, no exit file */
        container_exited(status_code(status));
        continue;
      }
      container = read_pid(o.pid_file);
      if (container <= 0) {
        container_exited(1);
        continue;
      }
      for (int i = 0; i < n_early; i++)
        if (early_pid[i] == container) container_exited(status_code(early_status[i]));
      /* Signals that came while the container's pid was not known yet (a stop during start). */
      for (int sig = 1; sig < NSIG && !exited; sig++)
        if (sigismember(&pending_signals, sig) == 1) kill(container, sig);
      sigemptyset(&pending_signals);
    } else if (p == container && !exited) {
      container_exited(status_code(status));
    } else if (container <= 0 && n_early < 8) {
      early_pid[n_early] = p;
      early_status[n_early++] = status;
    }
  }
}

/* --sealed-init: a copy for the runtime to keep (see the top of this file). */
static int hold_sealed_copy(const char *init) {
  struct berr e;
  cleanup_fd int exe = open(init, O_RDONLY | O_CLOEXEC);
  if (exe < 0) return 1;
  int copy = sealed_copy(exe, &e);
  if (copy < 0 || dup3(copy, SEALED_FD, O_CLOEXEC) < 0) return 1;
  close(copy);
  if (write_all(1, "ready\n", 6) < 0) return 1;
  for (;;) {
    char c;
    ssize_t n = read(0, &c, 1);
    if (n == 0 || (n < 0 && errno != EINTR)) return 0;
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--sealed-init") == 0) return hold_sealed_copy(argv[2]);
  o.init_fd = -1;
  if (parse_args(argc, argv) < 0) return 2;
  int io = o.socket || o.log || o.tty || o.stdin_open;
  signal(SIGPIPE, SIG_IGN);
  held = o.hold;
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;

  int child[3] = {-1, -1, -1};
  if (io) {
    if (o.log && jsonlog_open(&jlog, o.log) < 0) {
      report_setup_error("open", o.log);
      return 1;
    }
    if (o.socket && (listen_fd = listen_unix(o.socket)) < 0) {
      report_setup_error("bind", o.socket);
      return 1;
    }
    if (o.tty && (console_listen = listen_unix(o.console)) < 0) {
      report_setup_error("bind", o.console);
      if (o.socket) unlink(o.socket);
      return 1;
    }
    if (make_stdio(child) < 0) {
      report_setup_error("pipe", "container stdio");
      return 1;
    }
  }
  if (o.detach) {
    pid_t p = fork();
    if (p < 0) return 1;
    if (p > 0) _exit(0);
    setsid();
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return 1;

  sigset_t mask, old;
  sigemptyset(&mask);
  sigemptyset(&pending_signals);
  sigaddset(&mask, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&mask, forwarded[i]);
  sigprocmask(SIG_BLOCK, &mask, &old);
  cleanup_fd int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return 1;

  init_pid = fork();
  if (init_pid < 0) return 1;
  if (init_pid == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (io)
      for (int i = 0; i < 3; i++) dup2(child[i], i);
    char *args[] = {(char *)o.init, NULL};
    /* From a sealed copy (see the top); failing that berth-init makes the copy itself. */
    if (o.init_fd >= 0 && is_sealed_copy(o.init_fd)) exec_fd(o.init_fd, args, environ);
    struct berr ce;
    int exe = open(o.init, O_RDONLY | O_CLOEXEC);
    int copy = exe < 0 ? -1 : sealed_copy(exe, &ce);
    if (copy >= 0) exec_fd(copy, args, environ);
    execv(o.init, args);
    char msg[256];
    int n = snprintf(msg, sizeof msg, "error\t%d\texecve\t%s\tberth-init\n", errno, o.init);
    (void)write_all(REPORT_FD, msg, (size_t)n);
    _exit(1);
  }
  for (int i = 0; i < 3; i++)
    if (child[i] >= 0) close(child[i]);
  close(3);
  close(REPORT_FD);
  if (o.init_fd >= 0) close(o.init_fd);
  if (o.detach) {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      close(null);
    }
  }

  spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (;;) {
    if (exited && !done && drained()) finish();
    if (done) {
      int busy = 0;
      for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].kind == C_ATTACH && clients[i].queue_len > 0) busy = 1;
      if (!busy || now_ms() >= close_deadline) break;
    }

    /* A connection idle since it connected gives its slot back (before the poll set is built). */
    long long now0 = now_ms();
    for (int i = 0; i < MAX_CLIENTS; i++)
      if (clients[i].kind == C_REQUEST && clients[i].request_deadline <= now0) drop_client(&clients[i]);

    struct pollfd pfd[8 + MAX_CLIENTS];
    struct client *who[8 + MAX_CLIENTS];
    int n = 0;
    enum { P_SIG = 1, P_LISTEN, P_CLISTEN, P_CCONN, P_OUT0, P_OUT1, P_IN };
    int role[8 + MAX_CLIENTS];
#define ADD(fd_, ev_, role_, c_) (pfd[n] = (struct pollfd){.fd = (fd_), .events = (ev_)}, role[n] = (role_), who[n] = (c_), n++)
    ADD(sfd, POLLIN, P_SIG, NULL);
    if (listen_fd >= 0) ADD(listen_fd, POLLIN, P_LISTEN, NULL);
    if (console_listen >= 0 && console_conn < 0) ADD(console_listen, POLLIN, P_CLISTEN, NULL);
    if (console_conn >= 0) ADD(console_conn, POLLIN, P_CCONN, NULL);
    if (!held && out_fd[0] >= 0) ADD(out_fd[0], POLLIN, P_OUT0, NULL);
    if (!held && out_fd[1] >= 0) ADD(out_fd[1], POLLIN, P_OUT1, NULL);
    if (in_fd >= 0 && in_len > 0) ADD(in_fd, POLLOUT, P_IN, NULL);
    for (int i = 0; i < MAX_CLIENTS; i++) {
      struct client *c = &clients[i];
      if (c->kind == C_FREE) continue;
      short ev = 0;
      int stdin_full = c->kind == C_ATTACH && c->want_in && in_fd >= 0 && !stdin_closing && in_len == sizeof inbuf;
      if (!c->eof_in && !c->closing && !stdin_full) ev |= POLLIN;
      if (c->queue_len > 0) ev |= POLLOUT;
      ADD(c->fd, ev, 0, c);
    }
#undef ADD
    int timeout = -1;
    long long t = now_ms();
    if (exited && !done && !held && drain_deadline > 0) timeout = drain_deadline > t ? (int)(drain_deadline - t) : 0;
    if (done) timeout = close_deadline > t ? (int)(close_deadline - t) : 0;
    for (int i = 0; i < MAX_CLIENTS; i++) {
      if (clients[i].kind != C_REQUEST) continue;
      int left = (int)(clients[i].request_deadline - t);
      if (timeout < 0 || left < timeout) timeout = left < 0 ? 0 : left;
    }
    if (poll(pfd, (nfds_t)n, timeout) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; i++) {
      short re = pfd[i].revents;
      if (re == 0) continue;
      switch (role[i]) {
        case P_SIG: {
          struct signalfd_siginfo si;
          while (read(sfd, &si, sizeof si) == sizeof si) {
            if (si.ssi_signo == SIGCHLD) reap();
            else if (container > 0 && !exited) kill(container, (int)si.ssi_signo);
            else if (!exited) sigaddset(&pending_signals, (int)si.ssi_signo);
          }
          break;
        }
        case P_LISTEN: accept_clients(); break;
        case P_CLISTEN:
          console_conn = accept4(console_listen, NULL, NULL, SOCK_CLOEXEC);
          break;
        case P_CCONN: console_readable(); break;
        case P_OUT0: out_readable(0); break;
        case P_OUT1: out_readable(1); break;
        case P_IN:
          if (re & (POLLERR | POLLHUP) && in_fd != master) close_stdin_now();
          else stdin_write();
          break;
        default: {
          struct client *c = who[i];
          if (c->kind == C_FREE || c->fd != pfd[i].fd) break; /* dropped meanwhile */
          if (re & POLLOUT) client_flush(c);
          if (c->kind == C_FREE) break;
          if (c->closing && c->queue_len == 0) {
            drop_client(c);
            break;
          }
          if (re & POLLIN) client_readable(c);
          else if (re & (POLLHUP | POLLERR)) drop_client(c);
          break;
        }
      }
    }
    /* Reading resumes on the first attach: the output waiting since the exit is drained now. */
    if (exited && !done && !held && drain_deadline == 0) drain_deadline = now_ms() + DRAIN_MS;
  }

  if (listen_fd >= 0) {
    /* No new connections by path; the ones already made still get their answer. */
    unlink(o.socket);
    accept_clients();
    for (int i = 0; i < MAX_CLIENTS; i++)
      if (clients[i].kind == C_REQUEST) client_readable(&clients[i]);
    close(listen_fd);
  }
  for (int i = 0; i < MAX_CLIENTS; i++) drop_client(&clients[i]);
  if (console_listen >= 0) unlink(o.console);
  if (!done && exited && !init_failed) record_exit(o.exit_file, code);
  return o.detach ? 0 : code;
}
