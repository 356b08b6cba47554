// Constants of bpf(2) for cgroup device filtering (include/uapi/linux/bpf.h).

/** enum bpf_attach_type: BPF_CGROUP_DEVICE. */
export const BPF_CGROUP_DEVICE = 6;
/** enum bpf_prog_type: BPF_PROG_TYPE_CGROUP_DEVICE. */
export const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
/** Attach flags: a child cgroup may override the program. */
export const BPF_F_ALLOW_OVERRIDE = 1 << 0;
/** Attach flags: several programs on one cgroup, all of them must allow. */
export const BPF_F_ALLOW_MULTI = 1 << 1;
/** Attach flags (with ALLOW_MULTI): replace the program given as replaceFd, atomically. */
export const BPF_F_REPLACE = 1 << 2;
