/**
 * `GET /containers/{id}/kernel` (a Berth extension; `berth container kernel`): what the engine
 * made in the kernel for a running container, read back from the kernel, not from the records:
 * its namespaces (and which it shares with the host or another container), its cgroups with the
 * limits as the kernel holds them, its mount table, its network (interfaces, the veth's host end
 * and bridge, routes, the iptables rules naming its addresses) and its process's credentials,
 * capabilities and seccomp mode.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerKernelView, KernelNamespace, KernelCgroup } from '@berth/api';
import { BerthError } from '@berth/errors';
import type { EngineContext } from './context.js';
import { capabilitiesOfMask } from './oci-spec.js';

const NAMESPACES = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts'];

/** The files worth showing per controller (absent ones are skipped). */
const CGROUP_FILES: Record<string, string[]> = {
  cpu: ['cpu.cfs_quota_us', 'cpu.cfs_period_us', 'cpu.shares', 'cpu.rt_runtime_us'],
  cpuacct: ['cpuacct.usage'],
  cpuset: ['cpuset.cpus', 'cpuset.mems'],
  memory: ['memory.limit_in_bytes', 'memory.soft_limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.swappiness', 'memory.usage_in_bytes', 'memory.failcnt'],
  pids: ['pids.max', 'pids.current'],
  blkio: ['blkio.weight', 'blkio.throttle.read_bps_device', 'blkio.throttle.write_bps_device', 'blkio.throttle.read_iops_device', 'blkio.throttle.write_iops_device'],
  devices: ['devices.list'],
  freezer: ['freezer.state'],
  unified: ['cgroup.controllers', 'cpu.max', 'cpu.weight', 'cpuset.cpus', 'cpuset.mems', 'memory.max', 'memory.swap.max', 'memory.current', 'pids.max', 'pids.current', 'io.max', 'io.weight', 'cgroup.freeze'],
};

/** The order the report lists hierarchies in: the limits first. */
const CGROUP_ORDER = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'blkio', 'devices', 'freezer', 'unified'];

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function nsInode(pid: number | 'self', type: string): number | undefined {
  try {
    const m = /\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/${type}`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

interface MountInfo {
  mountPoint: string;
  options: string;
  fstype: string;
  source: string;
  superOptions: string;
}

/** /proc/<pid>/mountinfo, with the octal escapes of paths undone. */
export function parseMountInfo(text: string): MountInfo[] {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    const f = (pre ?? '').split(' ');
    const g = (post ?? '').split(' ');
    if (f.length < 6 || g.length < 3) continue;
    out.push({ mountPoint: unescape(f[4]!), options: f[5]!, fstype: g[0]!, source: unescape(g[1]!), superOptions: g[2]! });
  }
  return out;
}

/**
 * The host directory of each hierarchy the process is in: /proc/<pid>/cgroup's paths joined to
 * where the host (this daemon) has that hierarchy mounted.
 */
export function cgroupDirs(procCgroup: string, hostMounts: MountInfo[]): { hierarchy: string; controllers: string[]; dir: string }[] {
  const out: { hierarchy: string; controllers: string[]; dir: string }[] = [];
  for (const line of procCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, , list, path] = m;
    if (list === '') {
      const mount = hostMounts.find((x) => x.fstype === 'cgroup2');
      if (mount) out.push({ hierarchy: 'unified', controllers: ['unified'], dir: join(mount.mountPoint, path!) });
      continue;
    }
    const controllers = list!.split(',');
    const mount = hostMounts.find((x) => x.fstype === 'cgroup' && controllers.every((c) => x.superOptions.split(',').includes(c)));
    if (mount) out.push({ hierarchy: list!, controllers, dir: join(mount.mountPoint, path!) });
  }
  return out;
}

function statusField(status: string, key: string): string {
  return new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
}

export async function containerKernelView(ctx: EngineContext, ref: string): Promise<ContainerKernelView> {
  const c = ctx.get(ref);
  const pid = c.rec.State.Pid;
  if (!c.rec.State.Running || pid <= 0) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is not running`);
  const status = read(`/proc/${pid}/status`);
  if (status === undefined) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is not running`);

  // Whose namespaces these are: the host's init's, or another running container's.
  const others = [...ctx.containers.values()].filter((o) => o !== c && o.rec.State.Running && o.rec.State.Pid > 0);
  const namespaces: KernelNamespace[] = [];
  for (const type of NAMESPACES) {
    const inode = nsInode(pid, type);
    if (inode === undefined) continue;
    let sharedWith = '';
    // The daemon runs in the host's namespaces (what --network host and the like join).
    if (nsInode('self', type) === inode) sharedWith = 'host';
    else {
      const o = others.find((x) => nsInode(x.rec.State.Pid, type) === inode);
      if (o) sharedWith = `container:${o.name}`;
    }
    namespaces.push({ Type: type, Inode: inode, SharedWith: sharedWith });
  }

  const hostMounts = parseMountInfo(read('/proc/self/mountinfo') ?? '');
  const cgroups: KernelCgroup[] = cgroupDirs(read(`/proc/${pid}/cgroup`) ?? '', hostMounts).map(({ hierarchy, controllers, dir }) => {
    const files: Record<string, string> = {};
    for (const ctl of controllers) for (const f of CGROUP_FILES[ctl] ?? []) {
      const v = read(join(dir, f));
      if (v !== undefined && v !== '') files[f] = v;
    }
    return { Hierarchy: hierarchy, Path: dir, Files: files };
  });
  const rank = (h: string): number => {
    const i = CGROUP_ORDER.indexOf(h.split(',')[0]!);
    return i < 0 ? CGROUP_ORDER.length : i;
  };
  cgroups.sort((a, b) => rank(a.Hierarchy) - rank(b.Hierarchy) || a.Hierarchy.localeCompare(b.Hierarchy));

  const mounts = parseMountInfo(read(`/proc/${pid}/mountinfo`) ?? '').map((m) => ({
    Destination: m.mountPoint, Type: m.fstype, Source: m.source, Options: `${m.options} - ${m.superOptions}`,
  }));

  const ownNet = namespaces.find((n) => n.Type === 'net')?.SharedWith === '';
  const network = ownNet ? ((await ctx.network?.kernelView(c.id)) ?? null) : null;

  const seccompMode = statusField(status, 'Seccomp');
  return {
    Id: c.id,
    Name: c.rec.Name,
    Pid: pid,
    Namespaces: namespaces,
    Cgroups: cgroups,
    Mounts: mounts,
    Network: network,
    Process: {
      Uid: statusField(status, 'Uid'),
      Gid: statusField(status, 'Gid'),
      Groups: statusField(status, 'Groups'),
      NoNewPrivs: statusField(status, 'NoNewPrivs') === '1',
      Seccomp: seccompMode === '2' ? 'filter' : seccompMode === '1' ? 'strict' : 'disabled',
      SeccompFilters: Number(statusField(status, 'Seccomp_filters') || 0),
      CapEff: capabilitiesOfMask(statusField(status, 'CapEff') || '0'),
      CapBnd: capabilitiesOfMask(statusField(status, 'CapBnd') || '0'),
      Count: (await ctx.rtCgroups.pids(ctx.cgroupPathOf(c))).length,
    },
  };
}
