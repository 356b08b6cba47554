import type { ImageRuntimeConfig } from '@berth/api';
import { BerthError } from '@berth/errors';

/** The instructions `docker import --change` accepts (Docker's list). */
const ALLOWED = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR']);

function invalid(change: string, why: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', `invalid change ${JSON.stringify(change)}: ${why}`, { details: { field: 'changes', change } });
}

/** Splits on unquoted whitespace; quotes group and are removed, backslash escapes the next character. */
export function shellWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1]!)) cur += s[++i]!;
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i]!;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur !== '') out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (quote !== null) throw new Error('unterminated quote');
  if (has || cur !== '') out.push(cur);
  return out;
}

/** JSON form (`["a","b"]`) when the argument parses as a string array, else null. */
export function jsonArray(arg: string): string[] | null {
  const t = arg.trim();
  if (!t.startsWith('[')) return null;
  try {
    const v = JSON.parse(t) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: shell form
  }
  return null;
}

function keyValues(change: string, arg: string, legacySpace: boolean): [string, string][] {
  let words: string[];
  try {
    words = shellWords(arg);
  } catch (err) {
    throw invalid(change, (err as Error).message);
  }
  if (words.length === 0) throw invalid(change, 'needs at least one argument');
  if (legacySpace && !words[0]!.includes('=')) {
    // `ENV KEY value with spaces`: one variable, the rest is its value.
    const m = /^\s*(\S+)\s+(.*)$/s.exec(arg);
    if (m === null) throw invalid(change, 'needs a value');
    return [[m[1]!, m[2]!.trim()]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw invalid(change, `${JSON.stringify(w)} is not KEY=VALUE`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

function expandPorts(change: string, spec: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (m === null) throw invalid(change, `invalid port ${JSON.stringify(spec)}`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || hi < lo) throw invalid(change, `invalid port ${JSON.stringify(spec)}`);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  const out: string[] = [];
  for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  return out;
}

/**
 * Applies Dockerfile instructions (`docker import --change`, `docker commit --change`) to a
 * runtime config; answers a new config. JSON and shell forms for CMD and ENTRYPOINT; ENV and
 * LABEL with KEY=VALUE pairs (or ENV's legacy `KEY value`); EXPOSE with ranges and protocols.
 */
export function applyChanges(config: ImageRuntimeConfig, changes: readonly string[]): ImageRuntimeConfig {
  const c: ImageRuntimeConfig = structuredClone(config);
  let cmdSet = false;
  for (const raw of changes) {
    const change = raw.trim();
    if (change === '') continue;
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(change);
    const instr = m![1]!.toUpperCase();
    const arg = (m![2] ?? '').trim();
    if (!ALLOWED.has(instr)) throw invalid(raw, `${instr} is not a valid change command`);
    switch (instr) {
      case 'CMD':
      case 'ENTRYPOINT': {
        const argv = jsonArray(arg) ?? (arg === '' ? [] : [...(c.Shell ?? ['/bin/sh', '-c']), arg]);
        if (instr === 'CMD') {
          c.Cmd = argv;
          cmdSet = true;
        } else {
          c.Entrypoint = argv.length === 0 ? null : argv;
          // As in a Dockerfile: an ENTRYPOINT resets a CMD not set alongside it.
          if (!cmdSet) c.Cmd = null;
        }
        break;
      }
      case 'ENV': {
        const env = [...(c.Env ?? [])];
        for (const [k, v] of keyValues(raw, arg, true)) {
          const i = env.findIndex((e) => e === k || e.startsWith(`${k}=`));
          if (i === -1) env.push(`${k}=${v}`);
          else env[i] = `${k}=${v}`;
        }
        c.Env = env;
        break;
      }
      case 'LABEL': {
        const labels = { ...(c.Labels ?? {}) };
        for (const [k, v] of keyValues(raw, arg, false)) labels[k] = v;
        c.Labels = labels;
        break;
      }
      case 'EXPOSE': {
        if (arg === '') throw invalid(raw, 'needs at least one port');
        const ports = { ...(c.ExposedPorts ?? {}) };
        for (const spec of arg.split(/\s+/)) for (const p of expandPorts(raw, spec)) ports[p] = {};
        c.ExposedPorts = ports;
        break;
      }
      case 'VOLUME': {
        const list = jsonArray(arg) ?? arg.split(/\s+/).filter((v) => v !== '');
        if (list.length === 0) throw invalid(raw, 'needs at least one path');
        const vols = { ...(c.Volumes ?? {}) };
        for (const v of list) vols[v] = {};
        c.Volumes = vols;
        break;
      }
      case 'WORKDIR': {
        if (arg === '') throw invalid(raw, 'needs a path');
        const base = c.WorkingDir && c.WorkingDir !== '' ? c.WorkingDir : '/';
        const joined = arg.startsWith('/') ? arg : `${base.replace(/\/+$/, '')}/${arg}`;
        c.WorkingDir = normalisePosix(joined);
        break;
      }
      case 'USER':
        if (arg === '') throw invalid(raw, 'needs a user');
        c.User = arg;
        break;
      case 'STOPSIGNAL':
        if (arg === '') throw invalid(raw, 'needs a signal');
        c.StopSignal = arg;
        break;
      case 'ONBUILD':
        if (arg === '') throw invalid(raw, 'needs an instruction');
        c.OnBuild = [...(c.OnBuild ?? []), arg];
        break;
    }
  }
  return c;
}

function normalisePosix(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}
