/**
 * The subset of the OCI runtime spec (config.json) Berth carries out, and its loading with
 * errors that name the field at fault.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';
import type { OciSeccomp } from '@berth/native';

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
}

export interface OciCapabilities {
  bounding?: string[];
  effective?: string[];
  permitted?: string[];
  inheritable?: string[];
  ambient?: string[];
}

export interface OciProcess {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: OciUser;
  args: string[];
  env?: string[];
  cwd: string;
  capabilities?: OciCapabilities;
  rlimits?: { type: string; hard: number; soft: number }[];
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
  apparmorProfile?: string;
  selinuxLabel?: string;
}

export interface OciNamespace {
  type: string;
  path?: string;
}

export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciDevice {
  type: string;
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface OciLinux {
  namespaces?: OciNamespace[];
  uidMappings?: OciIdMapping[];
  gidMappings?: OciIdMapping[];
  devices?: OciDevice[];
  cgroupsPath?: string;
  resources?: Record<string, unknown>;
  rootfsPropagation?: string;
  seccomp?: OciSeccomp;
  sysctl?: Record<string, string>;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
}

export interface OciSpec {
  ociVersion: string;
  process?: OciProcess;
  root?: { path: string; readonly?: boolean };
  hostname?: string;
  domainname?: string;
  mounts?: OciMount[];
  annotations?: Record<string, string>;
  linux?: OciLinux;
}

function invalid(field: string, message: string): BerthError {
  return new BerthError('BERTH_SPEC_INVALID', `${field}: ${message}`, { details: { field } });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function expectType(v: unknown, type: 'string' | 'number' | 'boolean', field: string, optional = true): void {
  if (v === undefined && optional) return;
  if (typeof v !== type) throw invalid(field, `expected a ${type}, got ${v === null ? 'null' : typeof v}`);
}

/** The largest uid or gid: 4294967295 is (uid_t)-1, which setresuid reads as "unchanged". */
const MAX_ID = 4294967294;

function expectId(v: unknown, field: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_ID)
    throw invalid(field, `${typeof v === 'number' ? String(v) : `a ${v === null ? 'null' : typeof v}`} is not an integer in 0..${MAX_ID}`);
}

/** process.user: uid, gid and additionalGids in 0..4294967294, never truncated. */
export function validateUser(user: unknown, field = 'process.user'): void {
  if (!isObject(user)) throw invalid(field, 'missing');
  expectId(user.uid, `${field}.uid`);
  expectId(user.gid, `${field}.gid`);
  if (user.additionalGids !== undefined) {
    if (!Array.isArray(user.additionalGids)) throw invalid(`${field}.additionalGids`, 'expected an array of numbers');
    user.additionalGids.forEach((g, i) => expectId(g, `${field}.additionalGids[${i}]`));
  }
  if (user.umask !== undefined && (typeof user.umask !== 'number' || !Number.isInteger(user.umask) || user.umask < 0 || user.umask > 0o7777))
    throw invalid(`${field}.umask`, `${String(user.umask)} is not an integer in 0..0o7777`);
}

function expectStringArray(v: unknown, field: string): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) throw invalid(field, 'expected an array of strings');
  v.forEach((s, i) => expectType(s, 'string', `${field}[${i}]`, false));
}

export const namespaceTypes = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup'] as const;
export type NamespaceType = (typeof namespaceTypes)[number];

/** Structural checks; the meaning of values (paths, names) is checked when the plan is made. */
export function validateSpec(raw: unknown): OciSpec {
  if (!isObject(raw)) throw invalid('config.json', 'expected a JSON object');
  expectType(raw.ociVersion, 'string', 'ociVersion', false);
  if (!isObject(raw.root)) throw invalid('root', 'missing; the spec must name root.path');
  expectType(raw.root.path, 'string', 'root.path', false);
  expectType(raw.root.readonly, 'boolean', 'root.readonly');
  if (!isObject(raw.process)) throw invalid('process', 'missing');
  const p = raw.process;
  if (!Array.isArray(p.args) || p.args.length === 0) throw invalid('process.args', 'must be a non-empty array');
  expectStringArray(p.args, 'process.args');
  expectStringArray(p.env, 'process.env');
  expectType(p.cwd, 'string', 'process.cwd', false);
  if (!(p.cwd as string).startsWith('/')) throw invalid('process.cwd', `"${String(p.cwd)}" is not an absolute path`);
  expectType(p.terminal, 'boolean', 'process.terminal');
  expectType(p.noNewPrivileges, 'boolean', 'process.noNewPrivileges');
  validateUser(p.user);
  if (isObject(p.capabilities))
    for (const set of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'])
      expectStringArray(p.capabilities[set], `process.capabilities.${set}`);
  if (p.rlimits !== undefined) {
    if (!Array.isArray(p.rlimits)) throw invalid('process.rlimits', 'expected an array');
    p.rlimits.forEach((r: unknown, i: number) => {
      if (!isObject(r)) throw invalid(`process.rlimits[${i}]`, 'expected an object');
      expectType(r.type, 'string', `process.rlimits[${i}].type`, false);
      expectType(r.soft, 'number', `process.rlimits[${i}].soft`, false);
      expectType(r.hard, 'number', `process.rlimits[${i}].hard`, false);
    });
  }
  expectType(raw.hostname, 'string', 'hostname');
  if (raw.mounts !== undefined) {
    if (!Array.isArray(raw.mounts)) throw invalid('mounts', 'expected an array');
    raw.mounts.forEach((m: unknown, i: number) => {
      if (!isObject(m)) throw invalid(`mounts[${i}]`, 'expected an object');
      expectType(m.destination, 'string', `mounts[${i}].destination`, false);
      if (!(m.destination as string).startsWith('/'))
        throw invalid(`mounts[${i}].destination`, `"${String(m.destination)}" is not an absolute path`);
      expectType(m.type, 'string', `mounts[${i}].type`);
      expectType(m.source, 'string', `mounts[${i}].source`);
      expectStringArray(m.options, `mounts[${i}].options`);
    });
  }
  if (raw.linux !== undefined) {
    if (!isObject(raw.linux)) throw invalid('linux', 'expected an object');
    const l = raw.linux;
    if (l.namespaces !== undefined) {
      if (!Array.isArray(l.namespaces)) throw invalid('linux.namespaces', 'expected an array');
      const seen = new Set<string>();
      l.namespaces.forEach((ns: unknown, i: number) => {
        if (!isObject(ns)) throw invalid(`linux.namespaces[${i}]`, 'expected an object');
        expectType(ns.type, 'string', `linux.namespaces[${i}].type`, false);
        if (!(namespaceTypes as readonly string[]).includes(ns.type as string))
          throw invalid(`linux.namespaces[${i}].type`, `unknown namespace type "${String(ns.type)}" (known: ${namespaceTypes.join(', ')})`);
        if (seen.has(ns.type as string)) throw invalid(`linux.namespaces[${i}].type`, `namespace "${String(ns.type)}" listed twice`);
        seen.add(ns.type as string);
        expectType(ns.path, 'string', `linux.namespaces[${i}].path`);
      });
    }
    expectStringArray(l.maskedPaths, 'linux.maskedPaths');
    expectStringArray(l.readonlyPaths, 'linux.readonlyPaths');
    expectType(l.cgroupsPath, 'string', 'linux.cgroupsPath');
    for (const key of ['uidMappings', 'gidMappings'] as const) {
      const maps = l[key];
      if (maps === undefined) continue;
      if (!Array.isArray(maps)) throw invalid(`linux.${key}`, 'expected an array');
      maps.forEach((m: unknown, i: number) => {
        if (!isObject(m)) throw invalid(`linux.${key}[${i}]`, 'expected an object');
        for (const f of ['containerID', 'hostID', 'size']) expectType(m[f], 'number', `linux.${key}[${i}].${f}`, false);
      });
    }
    if (l.sysctl !== undefined && !isObject(l.sysctl)) throw invalid('linux.sysctl', 'expected an object of strings');
  }
  return raw as unknown as OciSpec;
}

/** Reads and validates `<bundle>/config.json`. */
export function loadSpec(bundle: string): OciSpec {
  let st;
  try {
    st = statSync(bundle);
  } catch {
    throw new BerthError('BERTH_BUNDLE_NOT_FOUND', `bundle ${bundle} does not exist`, { details: { bundle } });
  }
  if (!st.isDirectory()) throw new BerthError('BERTH_BUNDLE_NOT_FOUND', `bundle ${bundle} is not a directory`);
  const file = join(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BerthError('BERTH_SPEC_INVALID', `config.json: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BerthError('BERTH_SPEC_INVALID', `config.json: malformed JSON in ${file}: ${(err as Error).message}`, { cause: err });
  }
  return validateSpec(raw);
}
