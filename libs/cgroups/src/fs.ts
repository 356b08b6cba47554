import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, writeSync } from 'node:fs';
import { SystemError } from '@berth/errors';

/** One entry of a directory listing. */
export interface CgroupDirEntry {
  name: string;
  isDirectory: boolean;
}

/**
 * Every cgroup filesystem access goes through this seam, so the decisions (which file, which
 * value, which order) are unit-tested on a recording fake and the privileged layer stays thin.
 * Paths are absolute. Failures reject with an error carrying an errno `code` (ENOENT, EBUSY...).
 */
export interface CgroupFs {
  readFile(path: string): Promise<string>;
  /**
   * Writes `data` in one write(2) to an existing file; never creates one, so a control file the
   * kernel does not offer fails with ENOENT instead of being made up.
   */
  writeFile(path: string, data: string): Promise<void>;
  /** mkdir -p; resolves to the first directory it created, or undefined if `path` existed. */
  mkdir(path: string): Promise<string | undefined>;
  rmdir(path: string): Promise<void>;
  readdir(path: string): Promise<CgroupDirEntry[]>;
  /** Synchronous on purpose: one stat, used where the API is synchronous (`open`). */
  exists(path: string): boolean;
}

/** Sends a signal to a process; the seam for destroy's kill. ESRCH must be swallowed by callers. */
export interface ProcessKiller {
  kill(pid: number, signal: NodeJS.Signals): void;
}

function toSystemError(err: unknown, syscall: string, path: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string' || typeof e.errno !== 'number') return err;
  return new SystemError({ errno: Math.abs(e.errno), code: e.code, syscall, path }, { cause: err });
}

// O_WRONLY|O_TRUNC without O_CREAT: cgroupfs files exist or the controller is absent.
const WRITE_FLAGS = constants.O_WRONLY | constants.O_TRUNC;

/**
 * The CgroupFs of the running host. The calls are synchronous behind the async seam: cgroupfs
 * is in-memory kernel state, so a thread-pool round trip per file costs more than the call
 * itself (about 1 ms of a container start over ~30 files, bench/runtime).
 */
export const realCgroupFs: CgroupFs = {
  async readFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw toSystemError(err, 'open', path);
    }
  },
  async writeFile(path, data) {
    try {
      const fd = openSync(path, WRITE_FLAGS);
      try {
        writeSync(fd, data);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      throw toSystemError(err, 'write', path);
    }
  },
  async mkdir(path) {
    try {
      return mkdirSync(path, { recursive: true });
    } catch (err) {
      throw toSystemError(err, 'mkdir', path);
    }
  },
  async rmdir(path) {
    try {
      rmdirSync(path);
    } catch (err) {
      throw toSystemError(err, 'rmdir', path);
    }
  },
  async readdir(path) {
    try {
      const entries = readdirSync(path, { withFileTypes: true });
      return entries.map((d) => ({ name: d.name, isDirectory: d.isDirectory() }));
    } catch (err) {
      throw toSystemError(err, 'readdir', path);
    }
  },
  exists(path) {
    return existsSync(path);
  },
};

/** process.kill behind the ProcessKiller seam. */
export const realProcessKiller: ProcessKiller = {
  kill(pid, signal) {
    process.kill(pid, signal);
  },
};
