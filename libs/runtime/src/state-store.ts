/**
 * The runtime's state directory: one folder per container under the root (runc's --root),
 * records written atomically (temp file, rename). No fsync: the root lives under the exec root
 * (/run, tmpfs on most hosts) and describes processes, which a power loss or kernel crash ends
 * anyway (the state is then stale whatever is on disk); the rename alone already keeps a crash
 * of the daemon from leaving a torn record. As runc, which does not fsync state.json either.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';

export interface ContainerRecord {
  id: string;
  pid: number;
  /** Field 22 of /proc/PID/stat when created: tells a reused pid from ours. */
  startTime: string;
  bundle: string;
  rootfs: string;
  created: string;
  annotations: Record<string, string>;
  cgroupPath: string;
  owner: string;
}

const ID_RE = /^[\w+.-]+$/;

export function validateId(id: string): void {
  if (!id || !ID_RE.test(id) || id === '.' || id === '..')
    throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid container id "${id}": use letters, digits and _ + . -`, { details: { id } });
}

export function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export class StateStore {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return join(this.root, id);
  }

  file(id: string, name: 'state.json' | 'exec.fifo' | 'init.pid' | 'exit'): string {
    return join(this.root, id, name);
  }

  /** Claims the id: fails with AlreadyExists when a container holds it. */
  claim(id: string): string {
    validateId(id);
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const dir = this.dir(id);
    try {
      mkdirSync(dir, { mode: 0o711 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        throw new BerthError('BERTH_CONTAINER_EXISTS', `container "${id}" already exists`, { details: { id } });
      throw err;
    }
    return dir;
  }

  save(rec: ContainerRecord): void {
    writeAtomic(this.file(rec.id, 'state.json'), JSON.stringify(rec));
  }

  load(id: string): ContainerRecord {
    validateId(id);
    try {
      return JSON.parse(readFileSync(this.file(id, 'state.json'), 'utf8')) as ContainerRecord;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new BerthError('BERTH_CONTAINER_NOT_FOUND', `container "${id}" does not exist`, { details: { id } });
      throw err;
    }
  }

  exitCode(id: string): number | null {
    try {
      return Number(readFileSync(this.file(id, 'exit'), 'utf8').trim());
    } catch {
      return null;
    }
  }

  fifoExists(id: string): boolean {
    return existsSync(this.file(id, 'exec.fifo'));
  }

  ids(): string[] {
    try {
      return readdirSync(this.root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && existsSync(join(this.root, d.name, 'state.json')))
        .map((d) => d.name);
    } catch {
      return [];
    }
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }
}
