/**
 * Container records on disk: `<dataRoot>/containers/<id>/config.v2.json` and `hostconfig.json`,
 * Docker's names, each written atomically (temp, fsync, rename).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ContainerConfig, ContainerState, HostConfig, MountPoint } from '@berth/api';
import type { VolumeMount } from './volumes-mounts.js';
import type { EndpointConfig } from './network.js';

export interface StoredState extends ContainerState {
  RemovalInProgress?: boolean;
}

/** config.v2.json: what inspect shows, minus HostConfig, plus Berth's bookkeeping. */
export interface ContainerRecord {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  Config: ContainerConfig;
  /** `sha256:<id>` of the image. */
  Image: string;
  /** Name with the leading slash. */
  Name: string;
  RestartCount: number;
  Driver: string;
  Platform: string;
  State: StoredState;
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  LogPath: string;
  MountPoints: MountPoint[];
  /** The container's volumes (and --volumes-from binds) with what inspect does not show (volumes-mounts.ts). */
  VolumeMounts?: VolumeMount[];
  HasBeenStartedBefore: boolean;
  HasBeenManuallyStopped: boolean;
  /** The networks the container asked for (name -> request part of EndpointSettings); absent for host/none/container modes. */
  Networks?: Record<string, EndpointConfig>;
}

/**
 * Writes via a temporary file and rename, so readers and a restarted daemon see the old or the
 * new content, never a torn one. With `durable` (the default) the data is fsynced before the
 * rename, so it also survives a power loss: for what lives in the data root and must outlive a
 * reboot (container records). Files under the exec root (/run: the OCI bundle) describe a run
 * that a reboot ends; they skip the fsync (0.3-1 ms each on ext4).
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644, durable = true): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** A container directory whose record cannot be used: left on disk as it is. */
export interface UnusableRecord {
  id: string;
  /** The file at fault. */
  path: string;
  /** Why it cannot be used: the read or parse error, or the field that is missing. */
  error: string;
}

export interface LoadedRecords {
  records: { rec: ContainerRecord; host: HostConfig }[];
  /** Ids of creates a crash cut short: nothing of them was shown to a client; their layer and directory may go. */
  halfMade: string[];
  unusable: UnusableRecord[];
}

/** Files createContainer writes into the directory before the record, as itself or as a temp file of writeFileAtomic. */
const CREATE_FILES = ['hostname', 'hosts', 'resolv.conf', 'config.v2.json', 'hostconfig.json'];

function entries(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/**
 * Whether a directory is what createContainer leaves when it dies before its record is complete:
 * in order it makes the layer, the directory, hostname, hosts and resolv.conf (each via a temp
 * file), then config.v2.json and last hostconfig.json (both via temp files). Anything else in the
 * directory (a log, a checkpoint, a file a user put there) means it is not such a directory.
 * With `recordWritten`, config.v2.json is present and only hostconfig.json is missing.
 */
function halfMadeCreate(dir: string, recordWritten: boolean): boolean {
  return entries(dir).every((e) => {
    if (e === 'hostname' || e === 'hosts' || e === 'resolv.conf') return true;
    if (recordWritten && e === 'config.v2.json') return true;
    const tmp = /^(.+)\.tmp-\d+-[0-9a-f]*$/.exec(e);
    return tmp !== null && CREATE_FILES.includes(tmp[1]!);
  });
}

function readJson(path: string): { value: unknown } | { missing: true } | { error: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    return { error: `cannot read it: ${(err as Error).message}` };
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (err) {
    return { error: `not valid JSON (${text.length} bytes): ${(err as Error).message}` };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The first field of config.v2.json the engine needs that is missing or of the wrong type; null when it is usable. */
export function recordProblem(v: unknown, id: string): string | null {
  if (!isObject(v)) return 'the record is not a JSON object';
  if (v['Id'] !== id) return `Id ${JSON.stringify(v['Id'])} is not the directory's name`;
  const fields: [string, string][] = [
    ['Name', 'string'], ['Created', 'string'], ['Image', 'string'], ['Path', 'string'], ['LogPath', 'string'],
    ['Driver', 'string'], ['RestartCount', 'number'], ['Config', 'object'], ['State', 'object'],
  ];
  for (const [k, t] of fields) if (t === 'object' ? !isObject(v[k]) : typeof v[k] !== t) return `${k} is missing or not a${t === 'object' ? 'n' : ''} ${t}`;
  if (!(v['Name'] as string).startsWith('/')) return 'Name does not start with /';
  if (!Array.isArray(v['Args'])) return 'Args is missing or not an array';
  const state = v['State'] as Record<string, unknown>;
  const stateFields: [string, string][] = [
    ['Status', 'string'], ['Running', 'boolean'], ['Paused', 'boolean'], ['Restarting', 'boolean'], ['Pid', 'number'],
    ['ExitCode', 'number'], ['StartedAt', 'string'], ['FinishedAt', 'string'],
  ];
  for (const [k, t] of stateFields) if (typeof state[k] !== t) return `State.${k} is missing or not a ${t}`;
  return null;
}

/** The first field of hostconfig.json the engine needs that is missing or of the wrong type; null when it is usable. */
export function hostConfigProblem(v: unknown): string | null {
  if (!isObject(v)) return 'the HostConfig is not a JSON object';
  const policy = v['RestartPolicy'];
  if (!isObject(policy) || typeof policy['Name'] !== 'string') return 'RestartPolicy.Name is missing or not a string';
  if (typeof v['NetworkMode'] !== 'string') return 'NetworkMode is missing or not a string';
  return null;
}

export class ContainerStore {
  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true, mode: 0o710 });
  }

  dir(id: string): string {
    return join(this.root, id);
  }

  save(rec: ContainerRecord, host?: HostConfig, durable = true): void {
    writeFileAtomic(join(this.dir(rec.Id), 'config.v2.json'), JSON.stringify(rec), 0o600, durable);
    if (host) writeFileAtomic(join(this.dir(rec.Id), 'hostconfig.json'), JSON.stringify(host), 0o600, durable);
  }

  /**
   * Every container directory, sorted into records that can be used, creates a crash cut short
   * (see `halfMadeCreate`), and records that cannot be used (unreadable, torn, or missing a field
   * the engine needs): the latter are reported with why, and left alone.
   */
  loadAll(): LoadedRecords {
    const out: LoadedRecords = { records: [], halfMade: [], unusable: [] };
    let names: string[] = [];
    try {
      names = readdirSync(this.root);
    } catch {
      return out;
    }
    for (const id of names) {
      if (!/^[0-9a-f]{64}$/.test(id)) continue;
      const loaded = this.load(id);
      if ('rec' in loaded) out.records.push(loaded);
      else if ('halfMade' in loaded) out.halfMade.push(id);
      else out.unusable.push(loaded);
    }
    return out;
  }

  private load(id: string): { rec: ContainerRecord; host: HostConfig } | { halfMade: true } | UnusableRecord {
    const dir = this.dir(id);
    const cfgPath = join(dir, 'config.v2.json');
    const hostPath = join(dir, 'hostconfig.json');
    const unusable = (path: string, error: string): UnusableRecord => ({ id, path, error });
    const rec = readJson(cfgPath);
    if ('missing' in rec) {
      if (halfMadeCreate(dir, false)) return { halfMade: true };
      return unusable(cfgPath, `no config.v2.json, and the directory holds more than a create writes before it (${entries(dir).join(', ')})`);
    }
    if ('error' in rec) return unusable(cfgPath, rec.error);
    const recError = recordProblem(rec.value, id);
    if (recError) return unusable(cfgPath, recError);
    const record = rec.value as ContainerRecord;
    const host = readJson(hostPath);
    if ('missing' in host) {
      // create writes config.v2.json, then hostconfig.json; a later save never drops the latter.
      if (record.State.Status === 'created' && !record.HasBeenStartedBefore && halfMadeCreate(dir, true)) return { halfMade: true };
      return unusable(hostPath, 'no hostconfig.json');
    }
    if ('error' in host) return unusable(hostPath, host.error);
    const hostError = hostConfigProblem(host.value);
    if (hostError) return unusable(hostPath, hostError);
    return { rec: record, host: host.value as HostConfig };
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }
}
