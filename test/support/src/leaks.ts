import { readdir, readFile, lstat } from 'node:fs/promises';
import * as path from 'node:path';
import assert from 'node:assert/strict';

/** What to look at; each part is optional so a test scopes the check to what it can create. */
export interface LeakScope {
  /** Cgroup directories (at any depth, in every mounted hierarchy) whose name starts with this. */
  cgroupPrefix?: string;
  /**
   * Processes whose cmdline or environment contains one of these (a state-dir path, a marker
   * env var put in the spec). The calling process and its ancestors are never reported.
   */
  processMarkers?: string[];
  /** Directories whose entries (recursively) must come back to what they were, e.g. `--root` dirs. */
  stateDirs?: string[];
  /** Only mounts for which this is true are compared (default: the whole mount table). */
  mountFilter?: (mountPoint: string) => boolean;
  /** Network namespace files dirs (default /run/netns and /var/run/netns). */
  netnsDirs?: string[];
}

export interface LeakSnapshot {
  scope: LeakScope;
  mounts: string[];
  cgroups: string[];
  processes: string[];
  stateEntries: string[];
  netns: string[];
}

/** A mount as "mountPoint fstype source root": the parts that identify it across snapshots. */
function mountKeys(mountinfo: string, filter?: (mp: string) => boolean): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const mp = f[4]!;
    if (filter && !filter(mp)) continue;
    const [fstype, source] = post.split(' ');
    out.push(`${mp} ${fstype} ${source} ${f[3]}`);
  }
  return out.sort();
}

async function cgroupMounts(): Promise<string[]> {
  const mi = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of mi.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const fstype = post.split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') out.push(pre.split(' ')[4]!);
  }
  return out;
}

async function findCgroups(root: string, prefix: string, depth: number, out: string[]): Promise<void> {
  let ents;
  try {
    ents = await readdir(root, { withFileTypes: true });
  } catch {
    return; // removed meanwhile
  }
  for (const e of ents) {
    if (!e.isDirectory()) continue;
    const p = path.join(root, e.name);
    if (e.name.startsWith(prefix)) out.push(p);
    if (depth > 0) await findCgroups(p, prefix, depth - 1, out);
  }
}

async function ancestors(): Promise<Set<number>> {
  const out = new Set<number>();
  let pid = process.pid;
  while (pid > 1 && !out.has(pid)) {
    out.add(pid);
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return out;
}

async function findProcesses(markers: string[]): Promise<string[]> {
  if (markers.length === 0) return [];
  const skip = await ancestors();
  const out: string[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || skip.has(Number(name))) continue;
    let cmdline: string;
    let environ = '';
    try {
      cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8')).replace(/\0/g, ' ').trim();
      environ = await readFile(`/proc/${name}/environ`, 'utf8').catch(() => '');
    } catch {
      continue; // exited meanwhile
    }
    if (cmdline === '') continue; // kernel thread or zombie
    if (markers.some((m) => cmdline.includes(m) || environ.includes(m))) out.push(`${name} ${cmdline}`);
  }
  return out.sort();
}

async function listTree(dir: string, out: string[]): Promise<void> {
  let ents;
  try {
    ents = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of ents) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) await listTree(p, out);
  }
}

async function listNetns(dirs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) {
    try {
      const st = await lstat(d);
      if (!st.isDirectory()) continue;
      for (const e of await readdir(d)) out.push(path.join(d, e));
    } catch {
      // no such dir: nothing there
    }
  }
  return out.sort();
}

/** Takes a snapshot of the kernel and file-system objects a container run may leave behind. */
export async function snapshotLeaks(scope: LeakScope = {}): Promise<LeakSnapshot> {
  const mounts = mountKeys(await readFile('/proc/self/mountinfo', 'utf8'), scope.mountFilter);
  const cgroups: string[] = [];
  if (scope.cgroupPrefix) {
    for (const m of await cgroupMounts()) await findCgroups(m, scope.cgroupPrefix, 4, cgroups);
  }
  const stateEntries: string[] = [];
  for (const d of scope.stateDirs ?? []) await listTree(d, stateEntries);
  return {
    scope,
    mounts,
    cgroups: cgroups.sort(),
    processes: await findProcesses(scope.processMarkers ?? []),
    stateEntries: stateEntries.sort(),
    netns: await listNetns(scope.netnsDirs ?? ['/run/netns', '/var/run/netns']),
  };
}

/** What `after` holds that `before` did not, one line per leaked object. */
export function diffLeaks(before: LeakSnapshot, after: LeakSnapshot): string[] {
  const out: string[] = [];
  const added = (kind: string, a: string[], b: string[]) => {
    const had = new Map<string, number>();
    for (const x of a) had.set(x, (had.get(x) ?? 0) + 1);
    for (const x of b) {
      const n = had.get(x) ?? 0;
      if (n > 0) had.set(x, n - 1);
      else out.push(`${kind}: ${x}`);
    }
  };
  added('mount', before.mounts, after.mounts);
  added('cgroup', before.cgroups, after.cgroups);
  // Processes are compared by pid+cmdline: one that was there before is not this test's.
  added('process', before.processes, after.processes);
  added('state', before.stateEntries, after.stateEntries);
  added('netns', before.netns, after.netns);
  return out;
}

/**
 * Fails, listing every leaked mount, cgroup, process, state entry and netns file, when
 * `after` holds something `before` did not.
 */
export function assertNoLeaks(before: LeakSnapshot, after: LeakSnapshot, context = ''): void {
  const leaks = diffLeaks(before, after);
  assert.deepEqual(leaks, [], `${context ? `${context}: ` : ''}left behind:\n  ${leaks.join('\n  ')}`);
}

/**
 * Polls until nothing leaks (processes take a moment to be reaped after a forced delete), then
 * asserts. Returns the final snapshot.
 */
export async function assertNoLeaksEventually(before: LeakSnapshot, context = '', timeoutMs = 3000): Promise<LeakSnapshot> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const after = await snapshotLeaks(before.scope);
    if (diffLeaks(before, after).length === 0 || Date.now() > deadline) {
      assertNoLeaks(before, after, context);
      return after;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
