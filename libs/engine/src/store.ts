/**
 * Container records on disk: `<dataRoot>/containers/<id>/config.v2.json` and `hostconfig.json`,
 * Docker's names, each written atomically (temp, fsync, rename).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ContainerConfig, ContainerState, HostConfig, MountPoint } from '@berth/api';
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

  /** Every readable record; half-made directories (no config.v2.json) are reported separately. */
  loadAll(): { records: { rec: ContainerRecord; host: HostConfig }[]; broken: string[] } {
    const records: { rec: ContainerRecord; host: HostConfig }[] = [];
    const broken: string[] = [];
    let names: string[] = [];
    try {
      names = readdirSync(this.root);
    } catch {
      return { records, broken };
    }
    for (const id of names) {
      if (!/^[0-9a-f]{64}$/.test(id)) continue;
      try {
        const rec = JSON.parse(readFileSync(join(this.dir(id), 'config.v2.json'), 'utf8')) as ContainerRecord;
        const host = JSON.parse(readFileSync(join(this.dir(id), 'hostconfig.json'), 'utf8')) as HostConfig;
        records.push({ rec, host });
      } catch {
        broken.push(id);
      }
    }
    return { records, broken };
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }
}
