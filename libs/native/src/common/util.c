#define _GNU_SOURCE
#include "util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>

int berr_set(struct berr *e, int err, const char *syscall, const char *path, const char *fmt, ...) {
  e->err = err;
  snprintf(e->syscall, sizeof e->syscall, "%s", syscall ? syscall : "");
  snprintf(e->path, sizeof e->path, "%s", path ? path : "");
  e->detail[0] = '\0';
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
  }
  errno = err;
  return -1;
}

int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

ssize_t read_all(int fd, char **out) {
  size_t cap = 8192, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) return -1;
  for (;;) {
    if (len == cap) {
      char *grown = realloc(buf, cap * 2);
      if (grown == NULL) {
        free(buf);
        return -1;
      }
      buf = grown;
      cap *= 2;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      free(buf);
      return -1;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  *out = buf;
  return (ssize_t)len;
}

int write_file(const char *path, const char *data, size_t len, int create) {
  int flags = O_WRONLY | O_TRUNC | O_CLOEXEC | (create ? O_CREAT : 0);
  cleanup_fd int fd = open(path, flags, 0644);
  if (fd < 0) return -1;
  return write_all(fd, data, len);
}

int sealed_copy(int fd, struct berr *e) {
  struct stat st;
  if (fstat(fd, &st) < 0) return BERR_SYS(e, "fstat", "executable");
  cleanup_fd int copy = memfd_create("berth-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (copy < 0) return BERR_SYS(e, "memfd_create", "berth-init");
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sendfile(copy, fd, &off, (size_t)(st.st_size - off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return berr_set(e, n < 0 ? errno : EIO, "sendfile", "executable", "copy into a memfd");
  }
  if (fcntl(copy, F_ADD_SEALS, EXE_SEALS) < 0) return BERR_SYS(e, "fcntl", "F_ADD_SEALS");
  int out = copy;
  copy = -1;
  return out;
}

int is_sealed_copy(int fd) {
  int seals = fcntl(fd, F_GET_SEALS);
  return seals >= 0 && (seals & EXE_SEALS) == EXE_SEALS;
}

int exec_fd(int fd, char *const argv[], char *const envp[]) {
  return (int)syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
}
