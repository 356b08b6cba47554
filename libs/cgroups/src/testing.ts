import { SystemError } from '@berth/errors';
import type { CgroupDirEntry, CgroupFs, ProcessKiller } from './fs.js';

/** One recorded filesystem call. */
export interface FsOp {
  op: 'read' | 'write' | 'mkdir' | 'rmdir' | 'readdir' | 'exists';
  path: string;
  data?: string;
}

const ERRNO: Record<string, number> = { ENOENT: 2, ESRCH: 3, EBUSY: 16, EEXIST: 17, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENOSPC: 28, EOPNOTSUPP: 95 };

export function fakeErrno(code: string, syscall: string, path: string): SystemError {
  return new SystemError({ errno: ERRNO[code] ?? 5, code, syscall, path });
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function baseOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

interface Failure {
  op: FsOp['op'];
  match: (path: string) => boolean;
  code: string;
  times: number;
}

/** Hooks a fake host uses to behave like the kernel; each may throw an errno error. */
export interface FakeFsHooks {
  /** Files a new directory starts with (name -> content). */
  populate?: (dir: string, fs: FakeCgroupFs) => Record<string, string>;
  /** Runs before a write lands; return a string to store that instead, or throw. */
  beforeWrite?: (path: string, data: string, fs: FakeCgroupFs) => string | void;
  /** Computes a file's content on read (e.g. cgroup.events); undefined = stored content. */
  onRead?: (path: string, fs: FakeCgroupFs) => string | undefined;
}

/**
 * An in-memory CgroupFs that records every call in order. Writes never create files (like
 * cgroupfs), rmdir refuses a directory with sub-directories or processes (EBUSY), and
 * `fail()` injects errno failures.
 */
export class FakeCgroupFs implements CgroupFs {
  readonly ops: FsOp[] = [];
  readonly dirs = new Set<string>(['/']);
  readonly files = new Map<string, string>();
  private failures: Failure[] = [];

  constructor(private readonly hooks: FakeFsHooks = {}) {}

  /** Adds a directory (and parents) and files without recording; for test setup. */
  seed(dir: string, files: Record<string, string> = {}): this {
    for (let d = dir; !this.dirs.has(d); d = parentOf(d)) this.dirs.add(d);
    for (const [name, content] of Object.entries(files)) this.files.set(`${dir}/${name}`, content);
    return this;
  }

  /** The next `times` calls of `op` on a path matching `path` (exact, or a predicate) fail with `code`. */
  fail(op: FsOp['op'], path: string | ((p: string) => boolean), code: string, times = 1): this {
    const match = typeof path === 'string' ? (p: string) => p === path : path;
    this.failures.push({ op, match, code, times });
    return this;
  }

  /** Recorded writes, optionally only those whose file name is one of `names`. */
  writes(...names: string[]): { path: string; data: string }[] {
    return this.ops
      .filter((o) => o.op === 'write' && (names.length === 0 || names.includes(baseOf(o.path))))
      .map((o) => ({ path: o.path, data: o.data! }));
  }

  /** Stored content of a file (no recording). */
  content(path: string): string | undefined {
    return this.files.get(path);
  }

  clearOps(): void {
    this.ops.length = 0;
  }

  private injected(op: FsOp['op'], path: string, syscall: string): void {
    const f = this.failures.find((x) => x.op === op && x.times > 0 && x.match(path));
    if (f === undefined) return;
    f.times--;
    throw fakeErrno(f.code, syscall, path);
  }

  async readFile(path: string): Promise<string> {
    this.ops.push({ op: 'read', path });
    this.injected('read', path, 'open');
    const computed = this.hooks.onRead?.(path, this);
    if (computed !== undefined) return computed;
    const c = this.files.get(path);
    if (c === undefined) throw fakeErrno(this.dirs.has(path) ? 'EISDIR' : 'ENOENT', 'open', path);
    return c;
  }

  async writeFile(path: string, data: string): Promise<void> {
    this.ops.push({ op: 'write', path, data });
    this.injected('write', path, 'write');
    if (!this.files.has(path)) throw fakeErrno(this.dirs.has(path) ? 'EISDIR' : 'ENOENT', 'write', path);
    const stored = this.hooks.beforeWrite?.(path, data, this);
    this.files.set(path, typeof stored === 'string' ? stored : data);
  }

  async mkdir(path: string): Promise<string | undefined> {
    this.ops.push({ op: 'mkdir', path });
    this.injected('mkdir', path, 'mkdir');
    if (this.dirs.has(path)) return undefined;
    if (this.files.has(path)) throw fakeErrno('EEXIST', 'mkdir', path);
    const chain: string[] = [];
    for (let d = path; !this.dirs.has(d); d = parentOf(d)) chain.unshift(d);
    for (const d of chain) {
      this.dirs.add(d);
      for (const [name, content] of Object.entries(this.hooks.populate?.(d, this) ?? {})) this.files.set(`${d}/${name}`, content);
    }
    return chain[0];
  }

  async rmdir(path: string): Promise<void> {
    this.ops.push({ op: 'rmdir', path });
    this.injected('rmdir', path, 'rmdir');
    if (!this.dirs.has(path)) throw fakeErrno('ENOENT', 'rmdir', path);
    const hasChild = [...this.dirs].some((d) => d !== path && parentOf(d) === path);
    const procs = this.files.get(`${path}/cgroup.procs`) ?? '';
    if (hasChild || procs.trim() !== '') throw fakeErrno('EBUSY', 'rmdir', path);
    this.dirs.delete(path);
    for (const f of [...this.files.keys()]) if (parentOf(f) === path) this.files.delete(f);
  }

  async readdir(path: string): Promise<CgroupDirEntry[]> {
    this.ops.push({ op: 'readdir', path });
    this.injected('readdir', path, 'readdir');
    if (!this.dirs.has(path)) throw fakeErrno('ENOENT', 'readdir', path);
    const out: CgroupDirEntry[] = [];
    for (const d of this.dirs) if (d !== path && parentOf(d) === path) out.push({ name: baseOf(d), isDirectory: true });
    for (const f of this.files.keys()) if (parentOf(f) === path) out.push({ name: baseOf(f), isDirectory: false });
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  exists(path: string): boolean {
    this.ops.push({ op: 'exists', path });
    return this.dirs.has(path) || this.files.has(path);
  }

  /** Puts pids into a group's cgroup.procs without recording (a process that is "running"). */
  addProcs(dir: string, ...pids: number[]): void {
    const cur = (this.files.get(`${dir}/cgroup.procs`) ?? '').split('\n').filter((l) => l !== '');
    this.files.set(`${dir}/cgroup.procs`, [...cur, ...pids.map(String)].map((l) => `${l}\n`).join(''));
  }

  /** Removes a pid from every cgroup.procs (the process exited). */
  removeProc(pid: number): void {
    for (const [path, content] of this.files) {
      if (baseOf(path) !== 'cgroup.procs') continue;
      const lines = content.split('\n').filter((l) => l !== '' && l !== String(pid));
      this.files.set(path, lines.map((l) => `${l}\n`).join(''));
    }
  }
}

/** Records kill calls; `onKill` decides what happens (by default nothing). */
export class RecordingKiller implements ProcessKiller {
  readonly calls: { pid: number; signal: NodeJS.Signals }[] = [];
  constructor(public onKill: (pid: number, signal: NodeJS.Signals) => void = () => undefined) {}
  kill(pid: number, signal: NodeJS.Signals): void {
    this.calls.push({ pid, signal });
    this.onKill(pid, signal);
  }
}

export type FakeHostMode = 'v1' | 'hybrid' | 'v2';

export interface FakeHostOptions {
  /** v1: memory.memsw.* present (swap accounting on). Default true. */
  swapAccounting?: boolean;
  /** v1 blkio flavour: "bfq" (blkio.bfq.weight only, like kernel 6.x) or "cfq" (blkio.weight). Default bfq. */
  blkio?: 'bfq' | 'cfq';
  /** v2: cgroup.kill exists (5.14+). Default true. */
  cgroupKill?: boolean;
  /** v2 root controllers. Default cpuset cpu io memory hugetlb pids. */
  v2Controllers?: string[];
}

export interface FakeHost {
  fs: FakeCgroupFs;
  killer: RecordingKiller;
  mountinfo: string;
  procCgroups: string;
}

const V1_MOUNTS: [string, string][] = [
  ['cpu', 'cpu'],
  ['cpuacct', 'cpuacct'],
  ['cpuset', 'cpuset'],
  ['memory', 'memory'],
  ['devices', 'devices'],
  ['freezer', 'freezer'],
  ['blkio', 'blkio'],
  ['pids', 'pids'],
  ['systemd', 'name=systemd'],
];

const PROC_CGROUPS =
  '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\ncpu\t1\t1\t1\ncpuacct\t2\t1\t1\nblkio\t7\t1\t1\nmemory\t4\t1\t1\n' +
  'devices\t5\t1\t1\nfreezer\t6\t1\t1\nnet_cls\t0\t1\t1\nperf_event\t0\t1\t1\nnet_prio\t0\t1\t1\nhugetlb\t0\t1\t1\npids\t8\t1\t1\n';

const MAX_V1 = '9223372036854771712';

function v1Files(controller: string, opts: FakeHostOptions): Record<string, string> {
  switch (controller) {
    case 'cpu':
      return { 'cpu.shares': '1024\n', 'cpu.cfs_quota_us': '-1\n', 'cpu.cfs_period_us': '100000\n', 'cpu.rt_period_us': '1000000\n', 'cpu.rt_runtime_us': '0\n', 'cpu.stat': 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\n' };
    case 'cpuacct':
      return { 'cpuacct.usage': '0\n', 'cpuacct.usage_user': '0\n', 'cpuacct.usage_sys': '0\n' };
    case 'cpuset':
      return { 'cpuset.cpus': '\n', 'cpuset.mems': '\n' };
    case 'memory': {
      const f: Record<string, string> = {
        'memory.limit_in_bytes': `${MAX_V1}\n`,
        'memory.soft_limit_in_bytes': `${MAX_V1}\n`,
        'memory.usage_in_bytes': '0\n',
        'memory.max_usage_in_bytes': '0\n',
        'memory.stat': 'cache 0\nrss 0\ntotal_inactive_file 0\n',
        'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
        'memory.swappiness': '60\n',
        'memory.kmem.limit_in_bytes': `${MAX_V1}\n`,
        'memory.kmem.tcp.limit_in_bytes': `${MAX_V1}\n`,
      };
      if (opts.swapAccounting !== false) f['memory.memsw.limit_in_bytes'] = `${MAX_V1}\n`;
      return f;
    }
    case 'devices':
      return { 'devices.allow': '', 'devices.deny': '', 'devices.list': 'a *:* rwm\n' };
    case 'freezer':
      return { 'freezer.state': 'THAWED\n' };
    case 'blkio': {
      const f: Record<string, string> = { 'blkio.throttle.read_bps_device': '', 'blkio.throttle.write_bps_device': '', 'blkio.throttle.read_iops_device': '', 'blkio.throttle.write_iops_device': '' };
      if (opts.blkio === 'cfq') Object.assign(f, { 'blkio.weight': '500\n', 'blkio.weight_device': '', 'blkio.leaf_weight': '500\n', 'blkio.leaf_weight_device': '' });
      else Object.assign(f, { 'blkio.bfq.weight': 'default 100\n', 'blkio.bfq.weight_device': '' });
      return f;
    }
    case 'pids':
      return { 'pids.max': 'max\n', 'pids.current': '0\n' };
    default:
      return {};
  }
}

function v2Files(controller: string): Record<string, string> {
  switch (controller) {
    case 'cpu':
      return { 'cpu.weight': '100\n', 'cpu.max': 'max 100000\n' };
    case 'cpuset':
      return { 'cpuset.cpus': '\n', 'cpuset.mems': '\n' };
    case 'memory':
      return { 'memory.max': 'max\n', 'memory.low': '0\n', 'memory.swap.max': 'max\n', 'memory.current': '0\n', 'memory.peak': '0\n', 'memory.stat': 'anon 0\nfile 0\ninactive_file 0\n' };
    case 'io':
      return { 'io.weight': 'default 100\n', 'io.max': '' };
    case 'pids':
      return { 'pids.max': 'max\n', 'pids.current': '0\n' };
    case 'hugetlb':
      return { 'hugetlb.2MB.max': 'max\n', 'hugetlb.1GB.max': 'max\n' };
    default:
      return {};
  }
}

function limitValue(v: string): number {
  const t = v.trim();
  return t === '-1' || t === 'max' || Number(t) >= 2 ** 62 ? Infinity : Number(t);
}

/**
 * A fake host shaped like the given layout (v1 and hybrid like Berth's development machine:
 * one hierarchy per controller plus name=systemd, and for hybrid a cgroup2 mount at
 * /sys/fs/cgroup/unified offering hugetlb). The fake enforces what the kernel enforces and the
 * managers must respect: memory limit <= memsw limit, cpuset filled before a task joins, files
 * of a v2 controller only after the parent enabled it, EBUSY on a group with processes.
 */
export function fakeHost(mode: FakeHostMode, opts: FakeHostOptions = {}): FakeHost {
  const base = '/sys/fs/cgroup';
  const lines = [
    '22 27 0:21 / /proc rw,relatime - proc proc rw',
    '23 27 0:22 / /sys rw,relatime - sysfs sysfs rw',
    '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
  ];
  const v1Roots = new Map<string, string>();
  if (mode === 'v2') {
    lines.push(`31 23 0:28 / ${base} rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot`);
  } else {
    lines.push(`31 23 0:28 / ${base} rw,relatime - tmpfs tmpfs rw,mode=755`);
    V1_MOUNTS.forEach(([dir, opt], i) => {
      lines.push(`${32 + i} 31 0:${29 + i} / ${base}/${dir} rw,relatime - cgroup cgroup rw,${opt}`);
      v1Roots.set(`${base}/${dir}`, opt);
    });
    if (mode === 'hybrid') lines.push(`41 31 0:38 / ${base}/unified rw,relatime - cgroup2 cgroup2 rw`);
  }
  const unifiedRoot = mode === 'v2' ? base : mode === 'hybrid' ? `${base}/unified` : undefined;
  const unifiedControllers = mode === 'v2' ? (opts.v2Controllers ?? ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids']) : ['hugetlb'];

  const v1ControllerOf = (dir: string): string | undefined => {
    for (const [root, opt] of v1Roots) if (dir === root || dir.startsWith(`${root}/`)) return opt;
    return undefined;
  };
  const underUnified = (p: string): boolean => unifiedRoot !== undefined && (p === unifiedRoot || p.startsWith(`${unifiedRoot}/`));
  const enabledIn = (dir: string, fs: FakeCgroupFs): string[] =>
    (fs.content(`${dir}/cgroup.subtree_control`) ?? '').split(/\s+/).filter((c) => c !== '');

  const populate = (dir: string, fs: FakeCgroupFs): Record<string, string> => {
    const c = v1ControllerOf(dir);
    if (c !== undefined) return { 'cgroup.procs': '', 'cgroup.clone_children': '0\n', tasks: '', ...v1Files(c, opts) };
    if (underUnified(dir)) {
      const available = enabledIn(parentOf(dir), fs);
      const files: Record<string, string> = {
        'cgroup.procs': '',
        'cgroup.controllers': `${available.join(' ')}\n`,
        'cgroup.subtree_control': '\n',
        'cgroup.events': 'populated 0\nfrozen 0\n',
        'cgroup.freeze': '0\n',
        'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n',
      };
      if (opts.cgroupKill !== false) files['cgroup.kill'] = '';
      for (const ctl of available) Object.assign(files, v2Files(ctl));
      return files;
    }
    return {};
  };

  const beforeWrite = (path: string, data: string, fs: FakeCgroupFs): string | void => {
    const dir = parentOf(path);
    const file = baseOf(path);
    const err = (code: string): SystemError => fakeErrno(code, 'write', path);
    switch (file) {
      case 'memory.limit_in_bytes': {
        const memsw = fs.content(`${dir}/memory.memsw.limit_in_bytes`);
        if (memsw !== undefined && limitValue(data) > limitValue(memsw)) throw err('EINVAL');
        return data === '-1' ? `${MAX_V1}\n` : `${data}\n`;
      }
      case 'memory.memsw.limit_in_bytes': {
        const limit = fs.content(`${dir}/memory.limit_in_bytes`) ?? '-1';
        if (limitValue(data) < limitValue(limit)) throw err('EINVAL');
        return data === '-1' ? `${MAX_V1}\n` : `${data}\n`;
      }
      case 'memory.kmem.limit_in_bytes':
        throw err('EOPNOTSUPP'); // gone on current kernels
      case 'cgroup.procs': {
        if (v1ControllerOf(dir) === 'cpuset') {
          if ((fs.content(`${dir}/cpuset.cpus`) ?? '').trim() === '' || (fs.content(`${dir}/cpuset.mems`) ?? '').trim() === '') throw err('ENOSPC');
        }
        return `${fs.content(path) ?? ''}${data.trim()}\n`;
      }
      case 'freezer.state':
        return `${data.trim()}\n`;
      case 'cgroup.freeze':
        fs.files.set(`${dir}/cgroup.events`, `populated ${(fs.content(`${dir}/cgroup.procs`) ?? '').trim() === '' ? 0 : 1}\nfrozen ${data.trim()}\n`);
        return `${data.trim()}\n`;
      case 'cgroup.kill': {
        for (const pid of (fs.content(`${dir}/cgroup.procs`) ?? '').split('\n').filter((l) => l !== '')) fs.removeProc(Number(pid));
        return '';
      }
      case 'cgroup.subtree_control': {
        const available = (fs.content(`${dir}/cgroup.controllers`) ?? '').split(/\s+/).filter((c) => c !== '');
        const enabled = new Set(enabledIn(dir, fs));
        for (const tok of data.trim().split(/\s+/)) {
          const name = tok.slice(1);
          if (!available.includes(name)) throw err('ENOENT');
          if (tok.startsWith('+')) enabled.add(name);
          else enabled.delete(name);
        }
        // Children gain the files of newly enabled controllers.
        for (const child of fs.dirs) {
          if (parentOf(child) !== dir || child === dir) continue;
          fs.files.set(`${child}/cgroup.controllers`, `${[...enabled].join(' ')}\n`);
          for (const ctl of enabled) for (const [n, c] of Object.entries(v2Files(ctl))) if (!fs.files.has(`${child}/${n}`)) fs.files.set(`${child}/${n}`, c);
        }
        return `${[...enabled].join(' ')}\n`;
      }
      default:
        return undefined;
    }
  };

  const onRead = (path: string, fs: FakeCgroupFs): string | undefined => {
    if (baseOf(path) !== 'cgroup.events' || !fs.files.has(path)) return undefined;
    const dir = parentOf(path);
    const populated = [...fs.files].some(([p, c]) => baseOf(p) === 'cgroup.procs' && (p === `${dir}/cgroup.procs` || p.startsWith(`${dir}/`)) && c.trim() !== '');
    const frozen = (fs.content(`${dir}/cgroup.freeze`) ?? '0').trim() === '1' ? 1 : 0;
    return `populated ${populated ? 1 : 0}\nfrozen ${frozen}\n`;
  };

  const fs = new FakeCgroupFs({ populate, beforeWrite, onRead });
  fs.seed('/proc/self', { mountinfo: `${lines.join('\n')}\n` });
  fs.seed('/proc', { cgroups: PROC_CGROUPS });
  for (const [root, opt] of v1Roots) {
    const files: Record<string, string> = { 'cgroup.procs': '1\n' };
    if (opt === 'cpuset') Object.assign(files, { 'cpuset.cpus': '0-1\n', 'cpuset.mems': '0\n' });
    fs.seed(root, files);
  }
  if (unifiedRoot !== undefined) {
    fs.seed(unifiedRoot, { 'cgroup.procs': mode === 'v2' ? '1\n' : '', 'cgroup.controllers': `${unifiedControllers.join(' ')}\n`, 'cgroup.subtree_control': '\n' });
  }
  const killer = new RecordingKiller((pid) => fs.removeProc(pid));
  return { fs, killer, mountinfo: fs.content('/proc/self/mountinfo')!, procCgroups: PROC_CGROUPS };
}
