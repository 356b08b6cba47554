import { close, openSync, readFileSync, write } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { CgroupLayout, CgroupManager, Resources } from '@berth/cgroups';
import type { RuntimeCgroups } from './runtime.js';
import type { CgroupMountSource } from './plan-builder.js';

/**
 * The cgroup.procs file of this process's own cgroup in one hierarchy (a v1 one with a
 * controller when there is one, else cgroup2), from /proc/self/cgroup; null if not found.
 */
export function ownProcsFile(layout: CgroupLayout, procSelfCgroup: string): string | null {
  const own = new Map<string, string>();
  for (const line of procSelfCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m) own.set(m[2]!.split(',').sort().join(','), m[3]!);
  }
  const inside = (mountPoint: string, root: string, path: string | undefined): string | null => {
    if (path === undefined) return null;
    const rel = relative(root, path);
    if (rel.startsWith('..')) return null;
    return join(mountPoint, rel, 'cgroup.procs');
  };
  if (layout.mode !== 'v2') {
    for (const h of layout.hierarchies) {
      if (h.controllers.some((c) => c.startsWith('name='))) continue;
      const f = inside(h.mountPoint, h.root, own.get([...h.controllers].sort().join(',')));
      if (f) return f;
    }
  }
  if (layout.mode !== 'v1') return inside(layout.unified.mountPoint, layout.unified.root, own.get(''));
  return null;
}

/**
 * Moving a process into a cgroup takes the kernel's cgroup_threadgroup_rwsem for writing, which
 * waits out an RCU grace period (5-10 ms here) unless a move happened within about the last
 * grace period. Writing this process's pid into the cgroup it is already in is such a move and
 * changes nothing; done in the background early (when a container is created, when its start
 * begins) the grace period passes while the daemon does other work, and berth-init's own move
 * into the container's cgroups a few ms later is then immediate. The kernel's favordynmods
 * mount option would do the same for every move, host-wide. Returns a prime function.
 */
export function migrationPrimer(
  layout: CgroupLayout,
  readSelf: () => string = () => readFileSync('/proc/self/cgroup', 'utf8'),
): () => Promise<boolean> | undefined {
  let inFlight = false;
  // The promise (whether the write went through) is for tests; callers do not wait for it.
  return () => {
    if (inFlight) return undefined;
    let file: string | null;
    try {
      file = ownProcsFile(layout, readSelf());
    } catch {
      return undefined;
    }
    if (!file) return undefined;
    // Opened here, written on the thread pool: the open is quick, the write is the move that
    // waits. An async open would leave the write to a later turn of this thread's event loop,
    // which a busy start (the CLI's) reaches only after berth-init has already moved.
    let fd: number;
    try {
      fd = openSync(file, 'w');
    } catch {
      return undefined;
    }
    inFlight = true;
    return new Promise<boolean>((resolve) => {
      write(fd, String(process.pid), (err) => {
        close(fd, () => undefined);
        inFlight = false;
        resolve(err === null);
      });
    });
  };
}

/** The runtime's view of @berth/cgroups: one group per container, in every hierarchy. */
export function runtimeCgroups(manager: CgroupManager): RuntimeCgroups {
  const mountsOf = (paths: Record<string, string>): CgroupMountSource[] => {
    const layout = manager.layout;
    if (layout.mode === 'v2') return [{ name: '', hostDir: paths.unified ?? '', subsystems: null }];
    const out: CgroupMountSource[] = layout.hierarchies.map((h) => {
      const named = h.controllers.find((c) => c.startsWith('name='));
      const hostDir = paths[h.controllers[0] ?? ''] ?? '';
      return { name: basename(h.mountPoint), hostDir, subsystems: named ? `none,${named}` : h.controllers.join(',') };
    });
    // A hybrid host's cgroup2 mount is joined (procsFiles) but not shown inside, as runc does.
    return out.filter((m) => m.hostDir !== '');
  };
  return {
    async setup(path, resources) {
      const h = await manager.create(path, resources as Resources);
      return { procsFiles: h.procsFiles(), mounts: mountsOf(h.paths()) };
    },
    procsFiles: (path) => manager.open(path)?.procsFiles() ?? [],
    pids: async (path) => (await manager.open(path)?.pids()) ?? [],
    async destroy(path) {
      await manager.open(path)?.destroy({ kill: true });
    },
    prime: migrationPrimer(manager.layout),
    isFrozen(path) {
      const h = manager.open(path);
      if (!h) return false;
      const paths = h.paths();
      try {
        if (paths.freezer) return readFileSync(`${paths.freezer}/freezer.state`, 'utf8').trim() === 'FROZEN';
        if (h.version === 2 && paths.unified) return /^frozen 1$/m.test(readFileSync(`${paths.unified}/cgroup.events`, 'utf8'));
      } catch {
        // Gone meanwhile: not frozen.
      }
      return false;
    },
  };
}
