/* The filesystem half of the init: rootfs mounts, device nodes, pivot_root, masks. */
#define _GNU_SOURCE
#include "init.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

static int openat2_in_root(int rootfd, const char *rel, int flags, unsigned long long resolve) {
  struct open_how how = {.flags = (unsigned long long)flags | O_CLOEXEC, .mode = 0, .resolve = resolve};
  return (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
}

/* Strips leading slashes so that paths are relative to the root fd. */
static const char *rel_of(const char *path) {
  while (*path == '/') path++;
  return *path ? path : ".";
}

/*
 * Opens dst inside the root, creating missing directories (and, for kind 1, the final file),
 * with every symlink resolved as if the root were "/" (RESOLVE_IN_ROOT), so no path leaves the
 * rootfs whatever the image holds. Returns an O_PATH fd or -1.
 */
int open_in_root(int rootfd, const char *dst, uint32_t mkdir_kind, int nosymlink, struct berr *e) {
  unsigned long long resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (nosymlink ? RESOLVE_NO_SYMLINKS : 0);
  const char *rel = rel_of(dst);
  int fd = openat2_in_root(rootfd, rel, O_PATH, resolve);
  if (fd >= 0 || errno != ENOENT || mkdir_kind == 2) {
    if (fd < 0) return BERR_SYS(e, "openat2", dst);
    return fd;
  }
  /* Walk and create each missing component. */
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", rel);
  size_t n = strlen(buf);
  for (size_t i = 0; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    int last = buf[i] == '\0';
    buf[i] = '\0';
    cleanup_fd int cur = openat2_in_root(rootfd, buf, O_PATH, resolve);
    if (cur < 0) {
      if (errno != ENOENT) return BERR_SYS(e, "openat2", dst);
      char *slash = strrchr(buf, '/');
      const char *name = slash ? slash + 1 : buf;
      cleanup_fd int parent = -1;
      if (slash) {
        *slash = '\0';
        parent = openat2_in_root(rootfd, buf, O_PATH | O_DIRECTORY, resolve);
        *slash = '/';
      } else {
        parent = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
      }
      if (parent < 0) return BERR_SYS(e, "openat2", dst);
      if (last && mkdir_kind == 1) {
        int f = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (f < 0 && errno != EEXIST) return BERR_SYS(e, "creat", dst);
        if (f >= 0) close(f);
      } else if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST) {
        return BERR_SYS(e, "mkdir", dst);
      }
    }
    if (!last) buf[i] = '/';
  }
  fd = openat2_in_root(rootfd, rel, O_PATH, resolve);
  if (fd < 0) return BERR_SYS(e, "openat2", dst);
  return fd;
}

static void fd_path(int fd, char *out, size_t len) { snprintf(out, len, "/proc/self/fd/%d", fd); }

static int do_mount(int rootfd, const struct plan_mount *m, struct berr *e) {
  cleanup_fd int fd = open_in_root(rootfd, m->dst, m->mkdir_kind, m->nosymlink, e);
  if (fd < 0) return -1;
  char target[64];
  fd_path(fd, target, sizeof target);
  if (mount(m->src, target, m->fstype, m->flags, m->data) < 0) {
    return berr_set(e, errno, "mount", m->dst, "%s on %s (%s)", m->src ? m->src : "none", m->dst,
                    m->fstype ? m->fstype : "bind");
  }
  /* The mount is above the O_PATH fd now: reopen the path to reach it. */
  if (m->remount || m->propagation) {
    cleanup_fd int top = open_in_root(rootfd, m->dst, 2, 0, e);
    if (top < 0) return -1;
    fd_path(top, target, sizeof target);
    if (m->remount && mount(NULL, target, NULL, m->remount, NULL) < 0)
      return berr_set(e, errno, "mount", m->dst, "remount");
    if (m->propagation && mount(NULL, target, NULL, m->propagation, NULL) < 0)
      return berr_set(e, errno, "mount", m->dst, "propagation");
  }
  return 0;
}

/* Opens (creating) the directory of dst inside the root; *name points at dst's last component. */
static int open_parent(int rootfd, const char *dst, const char **name, const char *syscall, struct berr *e) {
  char parent[4096];
  snprintf(parent, sizeof parent, "%s", dst);
  char *slash = strrchr(parent, '/');
  if (slash == NULL) return berr_set(e, EINVAL, syscall, dst, "not absolute");
  *slash = '\0';
  *name = strrchr(dst, '/') + 1;
  return open_in_root(rootfd, *parent ? parent : "/", 0, 0, e);
}

static int do_mknod(int rootfd, const struct plan_step *s, struct berr *e) {
  const char *name;
  cleanup_fd int dir = open_parent(rootfd, s->dst, &name, "mknod", e);
  if (dir < 0) return -1;
  /* O_PATH fds serve as dirfd for *at calls. */
  if (mknodat(dir, name, s->mode, makedev(s->major, s->minor)) < 0) {
    if (errno != EEXIST) return BERR_SYS(e, "mknod", s->dst);
    if (unlinkat(dir, name, 0) < 0 || mknodat(dir, name, s->mode, makedev(s->major, s->minor)) < 0)
      return BERR_SYS(e, "mknod", s->dst);
  }
  if (fchownat(dir, name, s->uid, s->gid, AT_SYMLINK_NOFOLLOW) < 0) return BERR_SYS(e, "chown", s->dst);
  /* mknod honours the umask; the node must carry exactly the planned mode. */
  cleanup_fd int node = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  char p[64];
  fd_path(node, p, sizeof p);
  if (node < 0 || chmod(p, s->mode & 07777) < 0) return BERR_SYS(e, "chmod", s->dst);
  return 0;
}

static int do_symlink(int rootfd, const struct plan_step *s, struct berr *e) {
  const char *name;
  cleanup_fd int dir = open_parent(rootfd, s->dst, &name, "symlink", e);
  if (dir < 0) return -1;
  if (symlinkat(s->src, dir, name) < 0) {
    if (errno != EEXIST) return BERR_SYS(e, "symlink", s->dst);
    /* Replace whatever the image had there (e.g. a /dev/ptmx node). */
    if (unlinkat(dir, name, 0) < 0 || symlinkat(s->src, dir, name) < 0) return BERR_SYS(e, "symlink", s->dst);
  }
  return 0;
}

int setup_rootfs(const struct plan *p, struct berr *e) {
  if (mount(NULL, "/", NULL, p->root_propagation ? p->root_propagation : (MS_SLAVE | MS_REC), NULL) < 0)
    return berr_set(e, errno, "mount", "/", "make / %s", "slave");
  /* The rootfs must be a mount point for pivot_root. */
  if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) return BERR_SYS(e, "mount", p->rootfs);
  cleanup_fd int rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return BERR_SYS(e, "open", p->rootfs);
  for (int i = 0; i < p->n_steps; i++) {
    const struct plan_step *s = &p->steps[i];
    int rc = 0;
    switch (s->kind) {
      case STEP_MOUNT: rc = do_mount(rootfd, &s->m, e); break;
      case STEP_BIND_DEV: {
        struct plan_mount m = s->m;
        m.flags = MS_BIND;
        m.mkdir_kind = 1;
        rc = do_mount(rootfd, &m, e);
        break;
      }
      case STEP_MKNOD: rc = do_mknod(rootfd, s, e); break;
      case STEP_SYMLINK: rc = do_symlink(rootfd, s, e); break;
    }
    if (rc < 0) return -1;
  }
  return 0;
}

static int chroot_into(const char *rootfs, struct berr *e) {
  if (chdir(rootfs) < 0) return BERR_SYS(e, "chdir", rootfs);
  if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0) return BERR_SYS(e, "mount", rootfs);
  if (chroot(".") < 0) return BERR_SYS(e, "chroot", rootfs);
  if (chdir("/") < 0) return BERR_SYS(e, "chdir", "/");
  return 0;
}

int enter_root(const struct plan *p, struct berr *e) {
  if (p->pivot == 1) return chroot_into(p->rootfs, e);
  cleanup_fd int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) return BERR_SYS(e, "open", "/");
  cleanup_fd int newroot = open(p->rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (newroot < 0) return BERR_SYS(e, "open", p->rootfs);
  if (fchdir(newroot) < 0) return BERR_SYS(e, "fchdir", p->rootfs);
  if (syscall(SYS_pivot_root, ".", ".") < 0) {
    /* ramfs/initramfs roots cannot be pivoted away from: fall back to chroot. */
    if (errno == EINVAL) return chroot_into(p->rootfs, e);
    return BERR_SYS(e, "pivot_root", p->rootfs);
  }
  /* The old root is now stacked under "."; detach it so nothing leads back to the host. */
  if (fchdir(oldroot) < 0) return BERR_SYS(e, "fchdir", "oldroot");
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) return BERR_SYS(e, "mount", "oldroot");
  if (umount2(".", MNT_DETACH) < 0) return BERR_SYS(e, "umount2", "oldroot");
  if (chdir("/") < 0) return BERR_SYS(e, "chdir", "/");
  return 0;
}

/* The flags a read-only remount has to keep (locked mount flags cannot be cleared). */
static unsigned long kept_flags(const char *path) {
  struct statvfs st;
  unsigned long f = 0;
  if (statvfs(path, &st) < 0) return 0;
  if (st.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) f |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

static int readonly_path(const char *path, struct berr *e) {
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
    if (errno == ENOENT) return 0;
    return BERR_SYS(e, "mount", path);
  }
  if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | kept_flags(path), NULL) < 0)
    return BERR_SYS(e, "mount", path);
  return 0;
}

static int mask_path(const char *path, struct berr *e) {
  if (mount("/dev/null", path, NULL, MS_BIND, NULL) == 0) return 0;
  if (errno == ENOENT) return 0;
  if (errno == ENOTDIR) {
    if (mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL) == 0) return 0;
  }
  return BERR_SYS(e, "mount", path);
}

static int write_sysctl(const struct plan_kv *kv, struct berr *e) {
  char path[512];
  int n = snprintf(path, sizeof path, "/proc/sys/%s", kv->key);
  for (int i = 10; i < n; i++)
    if (path[i] == '.') path[i] = '/';
  if (write_file(path, kv->value, strlen(kv->value), 0) < 0) return BERR_SYS(e, "write", path);
  return 0;
}

int finish_rootfs(const struct plan *p, struct berr *e) {
  /* sysctls first: /proc/sys becomes read-only below. */
  for (int i = 0; i < p->n_sysctls; i++)
    if (write_sysctl(&p->sysctls[i], e) < 0) return -1;
  for (int i = 0; i < p->n_readonly; i++)
    if (readonly_path(p->readonly_paths[i], e) < 0) return -1;
  for (int i = 0; i < p->n_masks; i++)
    if (mask_path(p->masks[i], e) < 0) return -1;
  if (p->root_readonly &&
      mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags("/"), NULL) < 0)
    return BERR_SYS(e, "mount", "/ (read-only)");
  return 0;
}
