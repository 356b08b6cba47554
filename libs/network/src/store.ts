/** The controller's records on disk: `<root>/networks/<id>.json` and `<root>/sandboxes/<containerId>.json`. */
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@berth/log';
import type { NetworkRecord, SandboxRecord } from './types.js';

/** Sandboxes are rewritten at every setup step and do not outlive a reboot: no fsync for them. */
function writeAtomic(path: string, data: string, durable = true): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, data);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** A write of at most one page at offset 0 is never torn by the daemon's death (the kernel copies a page at a time). */
const PAGE = 4096;
/** Records kept open for in-place rewrites; beyond this many the oldest is closed (and reopened when needed). */
const MAX_OPEN = 128;

/**
 * Records of kernel state that a reboot ends (sandboxes, and those being reaped): rewritten at
 * every setup step, so rewritten in place. The first write of a path is atomic (temp file,
 * rename onto a name that does not exist yet); later ones are one pwrite at offset 0 into the
 * file kept open, padded with spaces to its length (JSON.parse ignores them). A rename over an
 * existing file costs ~1 ms on ext4 (auto_da_alloc flushes the new file's data), and a sandbox
 * is rewritten ~8 times per container start. A record longer than a page is written atomically.
 */
class InPlaceRecords {
  private readonly open = new Map<string, { fd: number; size: number }>();

  write(path: string, data: string): void {
    const buf = Buffer.from(data);
    let f = this.open.get(path);
    if (f === undefined && buf.length <= PAGE) {
      try {
        const fd = openSync(path, 'r+');
        f = { fd, size: fstatSync(fd).size };
        this.remember(path, f);
      } catch {
        // not there yet: made atomically below
      }
    }
    if (f === undefined || buf.length > PAGE || f.size > PAGE) {
      this.close(path);
      writeAtomic(path, data, false);
      if (buf.length <= PAGE) this.remember(path, { fd: openSync(path, 'r+'), size: buf.length });
      return;
    }
    const out = buf.length >= f.size ? buf : Buffer.concat([buf, Buffer.alloc(f.size - buf.length, 0x20)]);
    writeSync(f.fd, out, 0, out.length, 0);
    f.size = out.length;
  }

  remove(path: string): void {
    this.close(path);
    rmSync(path, { force: true });
  }

  private remember(path: string, f: { fd: number; size: number }): void {
    this.open.set(path, f);
    if (this.open.size > MAX_OPEN) this.close(this.open.keys().next().value!);
  }

  private close(path: string): void {
    const f = this.open.get(path);
    if (f === undefined) return;
    this.open.delete(path);
    closeSync(f.fd);
  }
}

function readAll<T>(dir: string, log: Logger): T[] {
  const out: T[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json')) {
      if (f.endsWith('.tmp')) rmSync(join(dir, f), { force: true });
      continue;
    }
    try {
      out.push(JSON.parse(readFileSync(join(dir, f), 'utf8')) as T);
    } catch (err) {
      log.warn({ err, file: join(dir, f) }, 'unreadable network record skipped');
    }
  }
  return out;
}

export class NetworkStore {
  private readonly networksDir: string;
  private readonly sandboxesDir: string;
  private readonly inPlace = new InPlaceRecords();

  constructor(root: string, private readonly log: Logger) {
    this.networksDir = join(root, 'networks');
    this.sandboxesDir = join(root, 'sandboxes');
    mkdirSync(this.networksDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.sandboxesDir, { recursive: true, mode: 0o700 });
  }

  networks(): NetworkRecord[] {
    return readAll<NetworkRecord>(this.networksDir, this.log);
  }

  sandboxes(): SandboxRecord[] {
    return readAll<SandboxRecord>(this.sandboxesDir, this.log);
  }

  saveNetwork(n: NetworkRecord): void {
    writeAtomic(join(this.networksDir, `${n.Id}.json`), JSON.stringify(n));
  }

  deleteNetwork(id: string): void {
    rmSync(join(this.networksDir, `${id}.json`), { force: true });
  }

  saveSandbox(s: SandboxRecord): void {
    this.inPlace.write(join(this.sandboxesDir, `${s.containerId}.json`), JSON.stringify(s));
  }

  deleteSandbox(containerId: string): void {
    this.inPlace.remove(join(this.sandboxesDir, `${containerId}.json`));
  }

  /** A sandbox whose namespace is gone and whose endpoints are still being deleted (by sandbox id). */
  reaping(): SandboxRecord[] {
    return readAll<SandboxRecord>(this.reapDir(), this.log);
  }

  saveReaping(s: SandboxRecord): void {
    this.inPlace.write(join(this.reapDir(), `${s.id}.json`), JSON.stringify(s));
  }

  deleteReaping(id: string): void {
    this.inPlace.remove(join(this.reapDir(), `${id}.json`));
  }

  private reapDir(): string {
    const d = join(this.sandboxesDir, 'reaping');
    mkdirSync(d, { recursive: true, mode: 0o700 });
    return d;
  }
}
