#ifndef BERTH_INIT_H
#define BERTH_INIT_H

#include "plan.h"

/* mounts.c */
int open_in_root(int rootfd, const char *dst, uint32_t mkdir_kind, int nosymlink, struct berr *e);
int setup_rootfs(const struct plan *p, struct berr *e);
int enter_root(const struct plan *p, struct berr *e);
int finish_rootfs(const struct plan *p, struct berr *e);

/* process.c */
int connect_console(const char *path, struct berr *e);
int setup_console(int sock, struct berr *e);
int set_rlimits(const struct plan *p, struct berr *e);
int resolve_exec(const struct plan *p, char *out, size_t len, struct berr *e);
int install_seccomp(const struct plan *p, struct berr *e);
int set_identity(const struct plan *p, struct berr *e);
int check_cwd(const struct plan *p, struct berr *e);

#endif
