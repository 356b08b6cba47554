/** `--mount` as the docker CLI reads it (cli/opts/mount.go): CSV fields into one HostConfig.Mounts entry. */
import { resolve } from 'node:path';
import { CliError } from '../client.js';

/** `-v .:/x` or `-v ./dir:/x`: the docker CLI makes the host part absolute (a bind, not a volume named `.`). */
export function absoluteBindSource(spec: string): string {
  const i = spec.indexOf(':');
  const host = spec.slice(0, i);
  return host === '.' || host.startsWith('./') ? `${resolve(host)}${spec.slice(i)}` : spec;
}

export interface MountEntry {
  Type: string;
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string>; DriverConfig?: { Name?: string; Options?: Record<string, string> } };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

/** Go's strconv.ParseBool. */
function parseBool(key: string, v: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new Error(`invalid value for ${key}: ${v}`);
}

/** Fields of a CSV line (Go's encoding/csv: double quotes group, `""` is a quote). */
function csvFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quoted) {
      if (ch === '"' && s[i + 1] === '"') (cur += '"'), i++;
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"' && cur === '') quoted = true;
    else if (ch === ',') out.push(cur), (cur = '');
    else cur += ch;
  }
  out.push(cur);
  return out;
}

/** docker/go-units RAMInBytes. */
function ramInBytes(v: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m) throw new Error(`invalid size: '${v}'`);
  return Math.trunc(Number(m[1]) * 1024 ** (m[2] ? 'kmgtp'.indexOf(m[2].toLowerCase()) + 1 : 0));
}

function parse(value: string): MountEntry {
  const m: MountEntry = { Type: 'volume', Target: '' };
  const volume = (): NonNullable<MountEntry['VolumeOptions']> => (m.VolumeOptions ??= {});
  const bind = (): NonNullable<MountEntry['BindOptions']> => (m.BindOptions ??= {});
  const tmpfs = (): NonNullable<MountEntry['TmpfsOptions']> => (m.TmpfsOptions ??= {});
  for (const field of csvFields(value)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') m.ReadOnly = true;
      else if (key === 'volume-nocopy') volume().NoCopy = true;
      else if (key === 'bind-nonrecursive') bind().NonRecursive = true;
      else throw new Error(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    const val = field.slice(eq + 1);
    switch (key) {
      case 'type': m.Type = val; break;
      case 'source': case 'src': m.Source = val; break;
      case 'target': case 'dst': case 'destination': m.Target = val; break;
      case 'readonly': case 'ro': m.ReadOnly = parseBool(key, val); break;
      case 'consistency': m.Consistency = val; break;
      case 'bind-propagation': bind().Propagation = val; break;
      case 'bind-nonrecursive': bind().NonRecursive = parseBool(key, val); break;
      case 'volume-driver': (volume().DriverConfig ??= {}).Name = val; break;
      case 'volume-nocopy': volume().NoCopy = parseBool(key, val); break;
      case 'volume-label': {
        const i = val.indexOf('=');
        (volume().Labels ??= {})[i < 0 ? val : val.slice(0, i)] = i < 0 ? '' : val.slice(i + 1);
        break;
      }
      case 'volume-opt': {
        const i = val.indexOf('=');
        const dc = (volume().DriverConfig ??= {});
        (dc.Options ??= {})[i < 0 ? val : val.slice(0, i)] = i < 0 ? '' : val.slice(i + 1);
        break;
      }
      case 'tmpfs-size': tmpfs().SizeBytes = ramInBytes(val); break;
      case 'tmpfs-mode': {
        if (!/^[0-7]+$/.test(val)) throw new Error(`invalid value for ${key}: ${val}`);
        tmpfs().Mode = Number.parseInt(val, 8);
        break;
      }
      default:
        throw new Error(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (m.Type === '') throw new Error('type is required');
  if (m.Target === '') throw new Error('target is required');
  if (m.VolumeOptions && m.Type !== 'volume') throw new Error(`cannot mix 'volume-*' options with mount type '${m.Type}'`);
  if (m.BindOptions && m.Type !== 'bind') throw new Error(`cannot mix 'bind-*' options with mount type '${m.Type}'`);
  if (m.TmpfsOptions && m.Type !== 'tmpfs') throw new Error(`cannot mix 'tmpfs-*' options with mount type '${m.Type}'`);
  // A relative bind source is taken from the current directory, as the docker CLI does.
  if (m.Type === 'bind' && m.Source && !m.Source.startsWith('/')) m.Source = resolve(m.Source);
  return m;
}

/** Every `--mount` value, or the docker CLI's flag error (exit 125). */
export function parseMountFlags(values: readonly string[]): MountEntry[] {
  return values.map((v) => {
    try {
      return parse(v);
    } catch (err) {
      throw new CliError(`invalid argument "${v}" for "--mount" flag: ${(err as Error).message}`, 125);
    }
  });
}
