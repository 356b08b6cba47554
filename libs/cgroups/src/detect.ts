import { BerthError } from '@berth/errors';

/** One line of /proc/<pid>/mountinfo (proc(5)). */
export interface MountInfoEntry {
  id: number;
  parentId: number;
  /** "major:minor" of the filesystem; equal for two mounts of one cgroup v1 hierarchy. */
  device: string;
  /** The directory of the filesystem that is mounted here ("/" unless a subtree is bind-mounted). */
  root: string;
  mountPoint: string;
  mountOptions: string[];
  optionalFields: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** One row of /proc/cgroups. Hierarchy 0 means "not on a v1 hierarchy" (on cgroup2, or unused). */
export interface ProcCgroupsEntry {
  name: string;
  hierarchy: number;
  numCgroups: number;
  enabled: boolean;
}

/** A mounted cgroup v1 hierarchy. */
export interface V1Hierarchy {
  mountPoint: string;
  root: string;
  /** Subsystems bound to it ("cpu", "cpuacct") and, for a named hierarchy, "name=<name>". */
  controllers: string[];
}

/** The cgroup2 mount. */
export interface UnifiedMount {
  mountPoint: string;
  root: string;
  /** Controllers available at its root (its cgroup.controllers); empty when not read. */
  controllers: string[];
}

export type CgroupLayout =
  | { mode: 'v1'; hierarchies: V1Hierarchy[] }
  /** v1 hierarchies plus a cgroup2 mount (systemd's hybrid); the cgroup2 one may hold controllers. */
  | { mode: 'hybrid'; hierarchies: V1Hierarchy[]; unified: UnifiedMount }
  | { mode: 'v2'; unified: UnifiedMount };

/** Undoes the octal escapes the kernel puts in mountinfo paths (space, tab, newline, backslash). */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses mountinfo text; lines that do not have the documented shape are skipped. */
export function parseMountinfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    const id = Number(fields[0]);
    const parentId = Number(fields[1]);
    if (!Number.isInteger(id) || !Number.isInteger(parentId)) continue;
    out.push({
      id,
      parentId,
      device: fields[2]!,
      root: unescapeMountPath(fields[3]!),
      mountPoint: unescapeMountPath(fields[4]!),
      mountOptions: fields[5]!.split(','),
      optionalFields: fields.slice(6, sep),
      fsType: fields[sep + 1]!,
      source: unescapeMountPath(fields[sep + 2]!),
      superOptions: (fields[sep + 3] ?? '').split(',').filter((o) => o !== ''),
    });
  }
  return out;
}

/** Parses /proc/cgroups (header line starts with '#'). */
export function parseProcCgroups(text: string): ProcCgroupsEntry[] {
  const out: ProcCgroupsEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [name, hierarchy, num, enabled] = line.trim().split(/\s+/);
    if (name === undefined || enabled === undefined) continue;
    out.push({ name, hierarchy: Number(hierarchy), numCgroups: Number(num), enabled: enabled === '1' });
  }
  return out;
}

/** Super options of a v1 cgroup mount that are options, not subsystems. */
const V1_MOUNT_OPTIONS = new Set(['rw', 'ro', 'noprefix', 'xattr', 'clone_children', 'cpuset_v2_mode', 'favordynmods', 'none']);

function v1Controllers(superOptions: string[], known: Set<string> | undefined): string[] {
  return superOptions.filter((o) => {
    if (o.startsWith('name=')) return o.length > 5;
    if (known !== undefined) return known.has(o);
    return !V1_MOUNT_OPTIONS.has(o) && !o.includes('=');
  });
}

export interface DetectInput {
  /** Text of /proc/self/mountinfo. */
  mountinfo: string;
  /** Text of /proc/cgroups; when given, only its enabled subsystems count as v1 controllers. */
  procCgroups?: string | undefined;
  /** Text of <cgroup2 mount>/cgroup.controllers. */
  unifiedControllers?: string | undefined;
}

const PREFERRED_UNIFIED = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'];

/** The cgroup2 mount among the entries, preferring the conventional places. */
export function findUnifiedMount(entries: MountInfoEntry[]): MountInfoEntry | undefined {
  const all = entries.filter((e) => e.fsType === 'cgroup2');
  for (const p of PREFERRED_UNIFIED) {
    const hit = all.find((e) => e.mountPoint === p);
    if (hit !== undefined) return hit;
  }
  return all[0];
}

/**
 * Decides the layout: any v1 hierarchy with a real subsystem means v1 (hybrid if a cgroup2
 * mount exists too); otherwise a cgroup2 mount means v2. A lone named v1 hierarchy next to
 * cgroup2 (systemd's name=systemd on a unified host) does not make a host v1.
 */
export function detectLayout(input: DetectInput): CgroupLayout {
  const entries = parseMountinfo(input.mountinfo);
  let known: Set<string> | undefined;
  if (input.procCgroups !== undefined) {
    known = new Set(parseProcCgroups(input.procCgroups).filter((c) => c.enabled).map((c) => c.name));
  }
  const seen = new Set<string>();
  const hierarchies: V1Hierarchy[] = [];
  for (const e of entries) {
    if (e.fsType !== 'cgroup' || seen.has(e.device)) continue;
    const controllers = v1Controllers(e.superOptions, known);
    if (controllers.length === 0) continue;
    seen.add(e.device);
    hierarchies.push({ mountPoint: e.mountPoint, root: e.root, controllers });
  }
  const u = findUnifiedMount(entries);
  const unified: UnifiedMount | undefined =
    u === undefined
      ? undefined
      : {
          mountPoint: u.mountPoint,
          root: u.root,
          controllers: (input.unifiedControllers ?? '').split(/\s+/).filter((c) => c !== ''),
        };
  const hasSubsystem = hierarchies.some((h) => h.controllers.some((c) => !c.startsWith('name=')));
  if (hasSubsystem) {
    return unified === undefined ? { mode: 'v1', hierarchies } : { mode: 'hybrid', hierarchies, unified };
  }
  if (unified !== undefined) return { mode: 'v2', unified };
  throw new BerthError('BERTH_CGROUP', 'no cgroup filesystem is mounted (mountinfo has neither a cgroup v1 hierarchy with a controller nor cgroup2)');
}
