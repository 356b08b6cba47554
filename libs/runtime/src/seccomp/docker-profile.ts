// Docker's seccomp profile format (the one of `--security-opt seccomp=profile.json` and of
// /usr/share/containers/seccomp.json) and its conversion to the OCI `linux.seccomp` a
// container gets, with the rules that apply to its capabilities, architecture and kernel.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { BerthError, SystemError } from '@berth/errors';
import {
  seccompActions,
  seccompFilterFlags,
  seccompOperators,
  type OciSeccomp,
  type OciSeccompArg,
  type OciSeccompSyscall,
  type SeccompAction,
} from '@berth/native';

/** Conditions on the container under which a Docker profile entry applies. */
export interface DockerSeccompFilter {
  /** Capabilities (CAP_SYS_ADMIN...): includes needs all of them, excludes any one. */
  caps?: string[];
  /** Go architecture names (amd64, arm64, x86, x32...). */
  arches?: string[];
  /** A kernel version such as "4.8": includes needs at least it, excludes less than it. */
  minKernel?: string;
}

export interface DockerSeccompSyscall {
  /** Deprecated single name; either this or `names`. */
  name?: string;
  names?: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: OciSeccompArg[] | null;
  comment?: string;
  includes?: DockerSeccompFilter;
  excludes?: DockerSeccompFilter;
}

export interface DockerSeccompArchMap {
  architecture: string;
  subArchitectures?: string[] | null;
}

export interface DockerSeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  /** Either a fixed list of SCMP_ARCH_* or `archMap`, not both. */
  architectures?: string[];
  archMap?: DockerSeccompArchMap[] | null;
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: DockerSeccompSyscall[] | null;
}

export interface DockerProfileOptions {
  /** The container's capabilities (its bounding set), with or without the CAP_ prefix. */
  capabilities: string[];
  /** Go (amd64, arm64...) or Node (x64...) architecture name; this machine's by default. */
  arch?: string;
  /** Kernel release for `minKernel`, e.g. "6.1.0-18-amd64"; this machine's by default. */
  kernelVersion?: string;
}

/** Node's process.arch and common aliases -> Go's GOARCH, which profiles use. */
const goArchOf: Readonly<Record<string, string>> = {
  x64: 'amd64',
  x86_64: 'amd64',
  amd64: 'amd64',
  ia32: '386',
  '386': '386',
  arm: 'arm',
  arm64: 'arm64',
  aarch64: 'arm64',
  ppc64: 'ppc64le',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips: 'mips',
  mipsel: 'mipsle',
  mipsle: 'mipsle',
  mips64: 'mips64',
  mips64el: 'mips64le',
  mips64le: 'mips64le',
  loong64: 'loong64',
};

/** GOARCH -> the libseccomp architecture an archMap entry is keyed by. */
const scmpArchOf: Readonly<Record<string, string>> = {
  amd64: 'SCMP_ARCH_X86_64',
  '386': 'SCMP_ARCH_X86',
  arm: 'SCMP_ARCH_ARM',
  arm64: 'SCMP_ARCH_AARCH64',
  ppc64le: 'SCMP_ARCH_PPC64LE',
  s390x: 'SCMP_ARCH_S390X',
  riscv64: 'SCMP_ARCH_RISCV64',
  mips: 'SCMP_ARCH_MIPS',
  mipsle: 'SCMP_ARCH_MIPSEL',
  mips64: 'SCMP_ARCH_MIPS64',
  mips64le: 'SCMP_ARCH_MIPSEL64',
  loong64: 'SCMP_ARCH_LOONGARCH64',
};

function invalid(source: string, field: string, problem: string): BerthError {
  return new BerthError('BERTH_SECCOMP_PROFILE', `seccomp profile ${source}: ${field}: ${problem}`, {
    details: { source, field },
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkStrings(v: unknown, source: string, field: string): void {
  if (v === undefined || v === null) return;
  if (!Array.isArray(v)) throw invalid(source, field, 'must be an array of strings');
  v.forEach((s, i) => {
    if (typeof s !== 'string') throw invalid(source, `${field}[${i}]`, 'must be a string');
  });
}

function checkUint(v: unknown, source: string, field: string, max: number): void {
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw invalid(source, field, `must be an integer from 0 to ${max}, got ${JSON.stringify(v)}`);
  }
}

function checkAction(v: unknown, source: string, field: string): void {
  if (typeof v !== 'string' || !(seccompActions as readonly string[]).includes(v)) {
    throw invalid(source, field, `unknown action ${JSON.stringify(v)} (expected one of ${seccompActions.join(', ')})`);
  }
}

const kernelRe = /^(\d+)\.(\d+)(?:\.(\d+))?/;

function checkFilter(v: unknown, source: string, field: string): void {
  if (v === undefined || v === null) return;
  if (!isObject(v)) throw invalid(source, field, 'must be an object');
  checkStrings(v['caps'], source, `${field}.caps`);
  checkStrings(v['arches'], source, `${field}.arches`);
  const mk = v['minKernel'];
  if (mk !== undefined && mk !== null && mk !== '' && (typeof mk !== 'string' || !kernelRe.test(mk))) {
    throw invalid(source, `${field}.minKernel`, `must be a kernel version such as "4.8", got ${JSON.stringify(mk)}`);
  }
}

/**
 * Checks that `value` is a Docker seccomp profile; throws BerthError BERTH_SECCOMP_PROFILE
 * naming `source` and the field at fault.
 */
export function validateDockerSeccompProfile(value: unknown, source = 'profile'): asserts value is DockerSeccompProfile {
  if (!isObject(value)) throw invalid(source, '(top level)', 'must be a JSON object');
  checkAction(value['defaultAction'], source, 'defaultAction');
  checkUint(value['defaultErrnoRet'], source, 'defaultErrnoRet', 0xffff);
  checkStrings(value['architectures'], source, 'architectures');
  checkStrings(value['flags'], source, 'flags');
  try {
    seccompFilterFlags({ flags: (value['flags'] as string[] | undefined) ?? [] });
  } catch (err) {
    throw invalid(source, 'flags', (err as Error).message);
  }
  const archMap = value['archMap'];
  if (archMap !== undefined && archMap !== null) {
    if (!Array.isArray(archMap)) throw invalid(source, 'archMap', 'must be an array');
    archMap.forEach((a: unknown, i) => {
      if (!isObject(a) || typeof a['architecture'] !== 'string') throw invalid(source, `archMap[${i}].architecture`, 'must be a string');
      checkStrings(a['subArchitectures'], source, `archMap[${i}].subArchitectures`);
    });
    if (archMap.length > 0 && Array.isArray(value['architectures']) && value['architectures'].length > 0) {
      throw invalid(source, 'architectures', "use either 'architectures' or 'archMap', not both");
    }
  }
  const syscalls = value['syscalls'];
  if (syscalls === undefined || syscalls === null) return;
  if (!Array.isArray(syscalls)) throw invalid(source, 'syscalls', 'must be an array');
  syscalls.forEach((s: unknown, i) => {
    const at = `syscalls[${i}]`;
    if (!isObject(s)) throw invalid(source, at, 'must be an object');
    checkAction(s['action'], source, `${at}.action`);
    checkUint(s['errnoRet'], source, `${at}.errnoRet`, 0xffff);
    checkStrings(s['names'], source, `${at}.names`);
    const hasName = s['name'] !== undefined && s['name'] !== '';
    if (hasName && typeof s['name'] !== 'string') throw invalid(source, `${at}.name`, 'must be a string');
    const names = (s['names'] as string[] | undefined) ?? [];
    if (hasName && names.length > 0) throw invalid(source, at, "use either 'name' or 'names', not both");
    if (!hasName && names.length === 0) throw invalid(source, `${at}.names`, 'names no syscall');
    const args = s['args'];
    if (args !== undefined && args !== null) {
      if (!Array.isArray(args)) throw invalid(source, `${at}.args`, 'must be an array');
      args.forEach((a: unknown, j) => {
        const af = `${at}.args[${j}]`;
        if (!isObject(a)) throw invalid(source, af, 'must be an object');
        checkUint(a['index'], source, `${af}.index`, 5);
        if (a['index'] === undefined || a['index'] === null) throw invalid(source, `${af}.index`, 'is required');
        for (const k of ['value', 'valueTwo'] as const) {
          const v = a[k];
          if (v !== undefined && v !== null && typeof v !== 'bigint' && !(typeof v === 'number' && Number.isSafeInteger(v))) {
            throw invalid(source, `${af}.${k}`, `must be an integer, got ${JSON.stringify(v)}`);
          }
        }
        if (typeof a['op'] !== 'string' || !(seccompOperators as readonly string[]).includes(a['op'])) {
          throw invalid(source, `${af}.op`, `unknown operator ${JSON.stringify(a['op'])} (expected one of ${seccompOperators.join(', ')})`);
        }
      });
    }
    checkFilter(s['includes'], source, `${at}.includes`);
    checkFilter(s['excludes'], source, `${at}.excludes`);
  });
}

/** Parses the text of a Docker seccomp profile; `source` names it in errors. */
export function parseSeccompProfile(text: string, source = 'profile'): DockerSeccompProfile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BerthError('BERTH_SECCOMP_PROFILE', `seccomp profile ${source}: invalid JSON: ${(err as Error).message}`, {
      cause: err,
      details: { source },
    });
  }
  validateDockerSeccompProfile(value, source);
  return value;
}

/** Reads and checks a Docker seccomp profile file. */
export function loadSeccompProfile(path: string): DockerSeccompProfile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (typeof e.errno === 'number' && typeof e.code === 'string') {
      throw new SystemError({ errno: Math.abs(e.errno), code: e.code, syscall: e.syscall ?? 'open', path }, { cause: err });
    }
    throw err;
  }
  return parseSeccompProfile(text, path);
}

type KernelVersion = [major: number, minor: number];

/** Major and minor of a kernel version; like Docker, minKernel ignores the patch level. */
function kernelTuple(v: string): KernelVersion | undefined {
  const m = kernelRe.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function kernelAtLeast(kernel: KernelVersion, min: KernelVersion): boolean {
  return kernel[0] !== min[0] ? kernel[0] > min[0] : kernel[1] >= min[1];
}

const capName = (c: string): string => {
  const up = c.toUpperCase();
  return up.startsWith('CAP_') ? up : `CAP_${up}`;
};

/**
 * The OCI `linux.seccomp` Docker derives from `profile` for a container: `archMap` picks the
 * entry of this architecture with its sub-architectures; a syscall entry is kept when the
 * container has every capability of `includes.caps` and none of `excludes.caps`, the
 * architecture is in `includes.arches` (when given) and not in `excludes.arches`, and the
 * kernel is at least `includes.minKernel` and below `excludes.minKernel`.
 */
export function dockerProfileToOci(profile: DockerSeccompProfile, opts: DockerProfileOptions): OciSeccomp {
  validateDockerSeccompProfile(profile);
  const goArch = goArchOf[opts.arch ?? process.arch];
  if (goArch === undefined) {
    throw new BerthError('BERTH_SECCOMP_PROFILE', `seccomp profile: unknown architecture ${JSON.stringify(opts.arch ?? process.arch)}`);
  }
  const kernelRelease = opts.kernelVersion ?? release();
  const kernel = kernelTuple(kernelRelease);
  const caps = new Set(opts.capabilities.map(capName));

  const out: OciSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined && profile.defaultErrnoRet !== null) out.defaultErrnoRet = profile.defaultErrnoRet;

  const architectures: string[] = [...(profile.architectures ?? [])];
  const native = scmpArchOf[goArch];
  for (const entry of profile.archMap ?? []) {
    if (entry.architecture === native) architectures.push(entry.architecture, ...(entry.subArchitectures ?? []));
  }
  if (architectures.length > 0) out.architectures = architectures;
  if (profile.flags !== undefined && profile.flags.length > 0) out.flags = [...profile.flags];
  if (profile.listenerPath) out.listenerPath = profile.listenerPath;
  if (profile.listenerMetadata) out.listenerMetadata = profile.listenerMetadata;

  const needKernel = (field: string): KernelVersion => {
    if (kernel === undefined) {
      throw new BerthError('BERTH_SECCOMP_PROFILE', `seccomp profile: ${field} needs the kernel version, and ${JSON.stringify(kernelRelease)} is not one`);
    }
    return kernel;
  };

  const syscalls: OciSeccompSyscall[] = [];
  for (const [i, call] of (profile.syscalls ?? []).entries()) {
    const ex = call.excludes;
    if (ex) {
      if (ex.arches?.includes(goArch)) continue;
      if (ex.caps?.some((c) => caps.has(capName(c)))) continue;
      if (ex.minKernel && kernelAtLeast(needKernel(`syscalls[${i}].excludes.minKernel`), kernelTuple(ex.minKernel)!)) continue;
    }
    const inc = call.includes;
    if (inc) {
      if (inc.arches && inc.arches.length > 0 && !inc.arches.includes(goArch)) continue;
      if (inc.caps && !inc.caps.every((c) => caps.has(capName(c)))) continue;
      if (inc.minKernel && !kernelAtLeast(needKernel(`syscalls[${i}].includes.minKernel`), kernelTuple(inc.minKernel)!)) continue;
    }
    const names = call.name ? [call.name] : [...(call.names ?? [])];
    const rule: OciSeccompSyscall = { names, action: call.action };
    if (call.errnoRet !== undefined && call.errnoRet !== null) rule.errnoRet = call.errnoRet;
    if (call.args && call.args.length > 0) {
      rule.args = call.args.map((a) => {
        const arg: OciSeccompArg = { index: a.index, value: a.value ?? 0, op: a.op };
        if (a.valueTwo !== undefined && a.valueTwo !== null) arg.valueTwo = a.valueTwo;
        return arg;
      });
    }
    syscalls.push(rule);
  }
  out.syscalls = syscalls;
  return out;
}
