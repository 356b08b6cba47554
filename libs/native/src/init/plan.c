#define _GNU_SOURCE
#include "plan.h"

#include <string.h>

struct rec {
  uint16_t tag;
  uint32_t len;
  const char *data;
};

/* Reads the record at *off; returns 1 when one was read, 0 at the end, -1 when malformed. */
static int next_rec(const char *buf, size_t len, size_t *off, struct rec *r) {
  if (*off == len) return 0;
  if (len - *off < 6) return -1;
  uint16_t tag;
  uint32_t n;
  memcpy(&tag, buf + *off, 2);
  memcpy(&n, buf + *off + 2, 4);
  if (len - *off - 6 < n) return -1;
  r->tag = tag;
  r->len = n;
  r->data = buf + *off + 6;
  *off += 6 + (size_t)n;
  return 1;
}

static char *str_of(const struct rec *r) { return strndup(r->data, r->len); }

static int u32_of(const struct rec *r, uint32_t *out) {
  if (r->len != 4) return -1;
  memcpy(out, r->data, 4);
  return 0;
}

static int u64_of(const struct rec *r, uint64_t *out) {
  if (r->len != 8) return -1;
  memcpy(out, r->data, 8);
  return 0;
}

#define BAD(e, what) berr_set((e), EINVAL, "plan", (what), "malformed plan")

static int parse_mount(const struct rec *outer, struct plan_mount *m, struct berr *e) {
  struct rec r;
  size_t off = 0;
  int rc;
  uint32_t v;
  memset(m, 0, sizeof *m);
  m->mkdir_kind = 0;
  while ((rc = next_rec(outer->data, outer->len, &off, &r)) > 0) {
    switch (r.tag) {
      case F_SRC: m->src = str_of(&r); break;
      case F_DST: m->dst = str_of(&r); break;
      case F_FSTYPE: m->fstype = str_of(&r); break;
      case F_DATA: m->data = str_of(&r); break;
      case F_FLAGS: if (u32_of(&r, &v)) return BAD(e, "mount flags"); m->flags = v; break;
      case F_PROPAGATION: if (u32_of(&r, &v)) return BAD(e, "mount propagation"); m->propagation = v; break;
      case F_REMOUNT: if (u32_of(&r, &v)) return BAD(e, "mount remount"); m->remount = v; break;
      case F_MKDIR: if (u32_of(&r, &m->mkdir_kind)) return BAD(e, "mount mkdir"); break;
      case F_NOSYMLINK: if (u32_of(&r, &m->nosymlink)) return BAD(e, "mount nosymlink"); break;
      default: return BAD(e, "mount field");
    }
  }
  if (rc < 0 || m->dst == NULL) return BAD(e, "mount");
  return 0;
}

static int parse_nested(const struct rec *outer, struct plan_step *s, struct berr *e) {
  struct rec r;
  size_t off = 0;
  int rc;
  while ((rc = next_rec(outer->data, outer->len, &off, &r)) > 0) {
    switch (r.tag) {
      case F_SRC: s->src = str_of(&r); break;
      case F_DST: s->dst = str_of(&r); break;
      case F_MODE: if (u32_of(&r, &s->mode)) return BAD(e, "mode"); break;
      case F_MAJOR: if (u32_of(&r, &s->major)) return BAD(e, "major"); break;
      case F_MINOR: if (u32_of(&r, &s->minor)) return BAD(e, "minor"); break;
      case F_UID: if (u32_of(&r, &s->uid)) return BAD(e, "uid"); break;
      case F_GID: if (u32_of(&r, &s->gid)) return BAD(e, "gid"); break;
      default: return BAD(e, "step field");
    }
  }
  if (rc < 0 || s->dst == NULL) return BAD(e, "step");
  return 0;
}

int plan_parse(const char *buf, size_t len, struct plan *p, struct berr *e) {
  memset(p, 0, sizeof *p);
  if (len < 16 || memcmp(buf, PLAN_MAGIC, 8) != 0) return BAD(e, "magic");
  uint32_t version, body;
  memcpy(&version, buf + 8, 4);
  memcpy(&body, buf + 12, 4);
  if (version != PLAN_VERSION) return berr_set(e, EINVAL, "plan", "version", "plan version %u, init speaks %u", version, PLAN_VERSION);
  if (body != len - 16) return BAD(e, "length");
  buf += 16;
  len -= 16;

  struct rec r;
  size_t off = 0;
  int rc;
  while ((rc = next_rec(buf, len, &off, &r)) > 0) {
    uint32_t v;
    switch (r.tag) {
      case T_MODE: if (u32_of(&r, &p->mode)) return BAD(e, "mode"); break;
      case T_NS_FLAGS: if (u32_of(&r, &p->ns_flags)) return BAD(e, "ns flags"); break;
      case T_NS_JOIN: {
        if (p->n_ns_join >= (int)(sizeof p->ns_join / sizeof p->ns_join[0])) return BAD(e, "too many namespaces");
        struct plan_ns *ns = &p->ns_join[p->n_ns_join++];
        struct rec f;
        size_t o2 = 0;
        int rc2;
        while ((rc2 = next_rec(r.data, r.len, &o2, &f)) > 0) {
          if (f.tag == F_NS_TYPE) { if (u32_of(&f, &ns->type)) return BAD(e, "ns type"); }
          else if (f.tag == F_PATH) ns->path = str_of(&f);
          else return BAD(e, "ns field");
        }
        if (rc2 < 0 || ns->path == NULL) return BAD(e, "ns join");
        break;
      }
      case T_UID_MAP: p->uid_map = str_of(&r); break;
      case T_GID_MAP: p->gid_map = str_of(&r); break;
      case T_CGROUP_PROCS:
        if (p->n_cgroup_procs >= 32) return BAD(e, "too many cgroups");
        p->cgroup_procs[p->n_cgroup_procs++] = str_of(&r);
        break;
      case T_PID_FILE: p->pid_file = str_of(&r); break;
      case T_ROOTFS: p->rootfs = str_of(&r); break;
      case T_ROOT_PROPAGATION: if (u32_of(&r, &v)) return BAD(e, "propagation"); p->root_propagation = v; break;
      case T_PIVOT: if (u32_of(&r, &p->pivot)) return BAD(e, "pivot"); break;
      case T_ROOT_READONLY: if (u32_of(&r, &p->root_readonly)) return BAD(e, "readonly"); break;
      case T_MOUNT:
      case T_BIND_DEV: {
        if (p->n_steps >= PLAN_MAX) return BAD(e, "too many steps");
        struct plan_step *s = &p->steps[p->n_steps++];
        memset(s, 0, sizeof *s);
        s->kind = r.tag == T_MOUNT ? STEP_MOUNT : STEP_BIND_DEV;
        if (parse_mount(&r, &s->m, e)) return -1;
        break;
      }
      case T_MKNOD:
      case T_SYMLINK: {
        if (p->n_steps >= PLAN_MAX) return BAD(e, "too many steps");
        struct plan_step *s = &p->steps[p->n_steps++];
        memset(s, 0, sizeof *s);
        s->kind = r.tag == T_MKNOD ? STEP_MKNOD : STEP_SYMLINK;
        if (parse_nested(&r, s, e)) return -1;
        break;
      }
      case T_MASK:
        if (p->n_masks >= 128) return BAD(e, "too many masked paths");
        p->masks[p->n_masks++] = str_of(&r);
        break;
      case T_READONLY_PATH:
        if (p->n_readonly >= 128) return BAD(e, "too many readonly paths");
        p->readonly_paths[p->n_readonly++] = str_of(&r);
        break;
      case T_SYSCTL: {
        if (p->n_sysctls >= 64) return BAD(e, "too many sysctls");
        struct plan_kv *kv = &p->sysctls[p->n_sysctls++];
        struct rec f;
        size_t o2 = 0;
        int rc2;
        while ((rc2 = next_rec(r.data, r.len, &o2, &f)) > 0) {
          if (f.tag == F_KEY) kv->key = str_of(&f);
          else if (f.tag == F_VALUE) kv->value = str_of(&f);
          else return BAD(e, "sysctl field");
        }
        if (rc2 < 0 || kv->key == NULL || kv->value == NULL) return BAD(e, "sysctl");
        break;
      }
      case T_HOSTNAME: p->hostname = str_of(&r); break;
      case T_DOMAINNAME: p->domainname = str_of(&r); break;
      case T_CWD: p->cwd = str_of(&r); break;
      case T_ARG:
        if (p->n_args >= PLAN_MAX - 1) return BAD(e, "too many args");
        p->args[p->n_args++] = str_of(&r);
        break;
      case T_ENV:
        if (p->n_env >= PLAN_MAX - 1) return BAD(e, "too many env");
        p->env[p->n_env++] = str_of(&r);
        break;
      case T_UID: if (u32_of(&r, &p->uid)) return BAD(e, "uid"); break;
      case T_GID: if (u32_of(&r, &p->gid)) return BAD(e, "gid"); break;
      case T_GROUP:
        if (p->n_groups >= 64) return BAD(e, "too many groups");
        if (u32_of(&r, &v)) return BAD(e, "group");
        p->groups[p->n_groups++] = v;
        break;
      case T_UMASK: if (u32_of(&r, &p->umask)) return BAD(e, "umask"); p->has_umask = 1; break;
      case T_RLIMIT: {
        if (p->n_rlimits >= 32) return BAD(e, "too many rlimits");
        struct plan_rlimit *rl = &p->rlimits[p->n_rlimits++];
        struct rec f;
        size_t o2 = 0;
        int rc2;
        while ((rc2 = next_rec(r.data, r.len, &o2, &f)) > 0) {
          if (f.tag == F_TYPE) { if (u32_of(&f, &rl->type)) return BAD(e, "rlimit type"); }
          else if (f.tag == F_SOFT) { if (u64_of(&f, &rl->soft)) return BAD(e, "rlimit soft"); }
          else if (f.tag == F_HARD) { if (u64_of(&f, &rl->hard)) return BAD(e, "rlimit hard"); }
          else return BAD(e, "rlimit field");
        }
        if (rc2 < 0) return BAD(e, "rlimit");
        break;
      }
      case T_CAPS:
        if (r.len != 40) return BAD(e, "caps");
        memcpy(p->caps, r.data, 40);
        p->has_caps = 1;
        break;
      case T_NO_NEW_PRIVS: if (u32_of(&r, &p->no_new_privs)) return BAD(e, "no_new_privs"); break;
      case T_SECCOMP:
        if (r.len == 0 || r.len % 8 != 0) return BAD(e, "seccomp program");
        p->seccomp = (const unsigned char *)r.data;
        p->seccomp_len = r.len;
        break;
      case T_SECCOMP_FLAGS: if (u32_of(&r, &p->seccomp_flags)) return BAD(e, "seccomp flags"); break;
      case T_OOM_SCORE_ADJ: p->oom_score_adj = str_of(&r); break;
      case T_TERMINAL: if (u32_of(&r, &p->terminal)) return BAD(e, "terminal"); break;
      case T_CONSOLE_SOCKET: p->console_socket = str_of(&r); break;
      case T_START_FIFO: p->start_fifo = str_of(&r); break;
      case T_EXEC_PATH: p->exec_path = str_of(&r); break;
      case T_REAPER: if (u32_of(&r, &p->reaper)) return BAD(e, "reaper"); break;
      default: return berr_set(e, EINVAL, "plan", "tag", "unknown plan tag %u", r.tag);
    }
  }
  if (rc < 0) return BAD(e, "record");
  p->args[p->n_args] = NULL;
  p->env[p->n_env] = NULL;
  if (p->n_args == 0) return berr_set(e, EINVAL, "plan", "args", "no process args");
  return 0;
}
