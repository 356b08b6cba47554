/*
 * Shared helpers of berth-init and berth-shim.
 *
 * Error convention (one for all of Berth's C): a function that can fail returns a negative
 * value and fills a `struct berr` with errno, the syscall and the path it was about; the caller
 * either handles it or returns the negative value up. Cleanup attributes close fds and free
 * memory on every early return.
 */
#ifndef BERTH_UTIL_H
#define BERTH_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct berr {
  int err;               /* errno, 0 when the failure has no errno */
  char syscall[32];      /* e.g. "mount" */
  char path[1024];       /* what it was about */
  char detail[256];      /* a few words more, optional */
};

/* Fills e and returns -1; keeps errno. */
int berr_set(struct berr *e, int err, const char *syscall, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define BERR_SYS(e, syscall, path) berr_set((e), errno, (syscall), (path), NULL)

static inline void closep(int *fd) {
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
}
static inline void freep(void *p) { free(*(void **)p); }
#define cleanup_fd __attribute__((cleanup(closep)))
#define cleanup_free __attribute__((cleanup(freep)))

/* write(2) until done or a real error; returns 0 or -1 with errno. */
int write_all(int fd, const void *buf, size_t len);
/* Reads the whole fd into a malloc'd buffer; returns the length or -1 with errno. */
ssize_t read_all(int fd, char **out);
/* Writes a whole file (O_WRONLY|O_TRUNC|O_CLOEXEC[|O_CREAT]); returns 0 or -1 with errno. */
int write_file(const char *path, const char *data, size_t len, int create);

/*
 * CVE-2019-5736: berth-init must never run from the host file, or a container process that
 * execs /proc/self/exe in time can hold that file and write it later. These make and recognise
 * a sealed (read-only for good) memfd copy of an executable.
 */
#define EXE_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
/* A sealed memfd copy of the executable open at fd; returns the memfd (CLOEXEC) or -1. */
int sealed_copy(int fd, struct berr *e);
/* 1 when fd is such a copy. */
int is_sealed_copy(int fd);
/* execveat(fd, "", AT_EMPTY_PATH); returns only on failure (-1 with errno). */
int exec_fd(int fd, char *const argv[], char *const envp[]);

#endif
