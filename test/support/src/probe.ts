/** The JSON object `probe` (test/probe) prints in report mode. */
export interface ProbeReport {
  probe: number;
  mode: 'report';
  argv: string[];
  stdio: ProbeFdKind[];
  fds: { fd: number; kind: ProbeFdKind; target: string }[];
  pid: number;
  ppid: number;
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  groups: number[];
  cwd: string | null;
  hostname: string | null;
  env: string[];
  umask: string;
  status: Partial<Record<'CapInh' | 'CapPrm' | 'CapEff' | 'CapBnd' | 'CapAmb' | 'NoNewPrivs' | 'Seccomp' | 'Seccomp_filters', string>>;
  processes: { pid: number; ppid: number; comm: string; state: string; cmdline: string[] }[];
  mounts: ProbeMount[];
  namespaces: Record<string, string | null>;
  rlimits: Record<string, { soft: number | 'unlimited'; hard: number | 'unlimited' } | null>;
  dev: { path: string; type: string; mode: string; uid: number; gid: number; device?: string; target?: string }[];
  rootWrite: { ok: boolean; errno: string | null };
  paths: Record<string, { exists: boolean; type?: string; errno?: string | null; entries?: string[] | null; bytesRead?: number; text?: string }>;
  readonly: Record<string, { exists: boolean; mountReadOnly?: boolean; errno?: string | null }>;
  procSysWrite: { ok: boolean; errno: string | null };
  uidMap: [number, number, number][] | null;
  gidMap: [number, number, number][] | null;
  cgroup: string[] | null;
}

export type ProbeFdKind = 'tty' | 'pipe' | 'socket' | 'char' | 'file' | 'dir' | 'other' | 'closed';

export interface ProbeMount {
  mountPoint: string;
  root: string;
  fstype: string;
  source: string;
  options: string[];
  superOptions: string[];
  propagation: string[];
}

export interface ProbeSignalReport {
  probe: number;
  mode: 'signal';
  pid: number;
  signal: number;
  name: string | null;
}

export interface ProbeWriteReport {
  probe: number;
  mode: 'write';
  path: string;
  ok: boolean;
  errno: string | null;
  syscall: string | null;
}

export interface ProbeSyscallReport {
  probe: number;
  mode: 'syscall';
  nr: number;
  ret: number;
  errno: string | null;
}

/**
 * The probe's JSON line from a run's stdout. Throws with the output quoted when there is none,
 * so a failed run reads as what the container printed, not as a JSON syntax error.
 */
export function parseProbeOutput<T extends { mode: string } = ProbeReport>(stdout: string, mode: T['mode'] = 'report'): T {
  const lines = stdout.split('\n').filter((l) => l.startsWith('{"probe":'));
  const last = lines.at(-1);
  if (last === undefined) throw new Error(`no probe output in stdout: ${JSON.stringify(stdout.slice(0, 2000))}`);
  const obj = JSON.parse(last) as T;
  if (obj.mode !== mode) throw new Error(`probe printed mode ${obj.mode}, expected ${mode}`);
  return obj;
}
