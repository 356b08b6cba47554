/**
 * `GET /containers/{id}/kernel`, a Berth extension of the Engine API (`berth container kernel`):
 * what a running container's run made in the kernel, as the daemon reads it back from the kernel.
 */

export interface KernelNamespace {
  /** cgroup, ipc, mnt, net, pid, time, user, uts. */
  Type: string;
  /** The namespace's inode number (in brackets in `ls -l /proc/<pid>/ns`). */
  Inode: number;
  /** `host` (the host's init has it), `container:<name>` (another running container has it), or '' (its own). */
  SharedWith: string;
}

export interface KernelCgroup {
  /** `cpu,cpuacct`, `memory`, `name=systemd`... (v1), or `unified` (v2). */
  Hierarchy: string;
  /** The directory on the host. */
  Path: string;
  /** The limit and state files of the controller that exist there, trimmed. */
  Files: Record<string, string>;
}

export interface KernelMount {
  /** Where the container sees it. */
  Destination: string;
  Type: string;
  Source: string;
  /** Per-mount options, ` - `, then the filesystem's own (as in mountinfo). */
  Options: string;
}

export interface KernelInterface {
  Name: string;
  Index: number;
  Kind: string;
  Mac: string;
  Mtu: number;
  Up: boolean;
  Addresses: string[];
  /** The other end of a veth, in the host namespace, and the bridge it is enslaved to. */
  HostPeer?: { Name: string; Index: number; Bridge: string };
}

export interface KernelNetworkView {
  /** The bind-mounted namespace (SandboxKey). */
  Namespace: string;
  Interfaces: KernelInterface[];
  Routes: { Dst: string; Gateway: string; Dev: string; Family: 4 | 6 }[];
  /** `iptables -t <table> -S` lines that name one of the container's addresses, with their table. */
  Iptables: { Table: 'nat' | 'filter'; Rule: string }[];
}

export interface ContainerKernelView {
  Id: string;
  Name: string;
  /** The container's PID 1, as the host numbers it. */
  Pid: number;
  Namespaces: KernelNamespace[];
  Cgroups: KernelCgroup[];
  Mounts: KernelMount[];
  /** Null for --network host or none, or a namespace joined from another container. */
  Network: KernelNetworkView | null;
  Process: {
    /** /proc/<pid>/status: real, effective, saved and filesystem ids, tab-separated. */
    Uid: string;
    Gid: string;
    Groups: string;
    NoNewPrivs: boolean;
    /** disabled, strict or filter. */
    Seccomp: string;
    SeccompFilters: number;
    CapEff: string[];
    CapBnd: string[];
    /** Processes in the container's cgroup. */
    Count: number;
  };
}
