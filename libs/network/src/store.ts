/** The controller's records on disk: `<root>/networks/<id>.json` and `<root>/sandboxes/<containerId>.json`. */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
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
    writeAtomic(join(this.sandboxesDir, `${s.containerId}.json`), JSON.stringify(s), false);
  }

  deleteSandbox(containerId: string): void {
    rmSync(join(this.sandboxesDir, `${containerId}.json`), { force: true });
  }

  /** A sandbox whose namespace is gone and whose endpoints are still being deleted (by sandbox id). */
  reaping(): SandboxRecord[] {
    return readAll<SandboxRecord>(this.reapDir(), this.log);
  }

  saveReaping(s: SandboxRecord): void {
    writeAtomic(join(this.reapDir(), `${s.id}.json`), JSON.stringify(s), false);
  }

  deleteReaping(id: string): void {
    rmSync(join(this.reapDir(), `${id}.json`), { force: true });
  }

  private reapDir(): string {
    const d = join(this.sandboxesDir, 'reaping');
    mkdirSync(d, { recursive: true, mode: 0o700 });
    return d;
  }
}
