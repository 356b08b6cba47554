import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { CgroupManager, Resources } from '@berth/cgroups';
import type { RuntimeCgroups } from './runtime.js';
import type { CgroupMountSource } from './plan-builder.js';

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
