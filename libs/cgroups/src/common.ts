import { BerthError, errnoCodeOf, wrap } from '@berth/errors';
import type { Logger } from '@berth/log';
import type { BlkioEntry, BlkioStats } from './types.js';
import type { CgroupFs, ProcessKiller } from './fs.js';

/** What a manager and its handles share. */
export interface Ctx {
  fs: CgroupFs;
  killer: ProcessKiller;
  logger: Logger;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function join(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** Writes one control file; the error names the file and value. */
export async function write(ctx: Ctx, dir: string, file: string, value: string): Promise<void> {
  try {
    await ctx.fs.writeFile(join(dir, file), value);
  } catch (err) {
    throw wrap(err, `set ${file} to "${value}"`);
  }
}

/** Like write, but a control file the kernel does not offer (ENOENT) answers false. */
export async function tryWrite(ctx: Ctx, dir: string, file: string, value: string): Promise<boolean> {
  try {
    await ctx.fs.writeFile(join(dir, file), value);
    return true;
  } catch (err) {
    if (errnoCodeOf(err) === 'ENOENT') return false;
    throw wrap(err, `set ${file} to "${value}"`);
  }
}

/** Reads a control file; ENOENT answers undefined. */
export async function tryRead(ctx: Ctx, path: string): Promise<string | undefined> {
  try {
    return await ctx.fs.readFile(path);
  } catch (err) {
    if (errnoCodeOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** "key value" lines (memory.stat, cpu.stat, cgroup.events) as numbers. */
export function parseKeyed(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k !== undefined && k !== '' && v !== undefined) {
      const n = Number(v);
      if (!Number.isNaN(n)) out[k] = n;
    }
  }
  return out;
}

export function parsePids(text: string): number[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

// v1 reports "unlimited" as PAGE_COUNTER_MAX pages in bytes (~2^63); anything past 2^62 is that.
const UNLIMITED_V1 = 2 ** 62;

/** A limit file's value: a number, or null for "max" / v1's huge unlimited value. */
export function parseLimit(text: string): number | null {
  const t = text.trim();
  if (t === 'max' || t === '-1') return null;
  const n = Number(t);
  if (!Number.isFinite(n) || n >= UNLIMITED_V1) return null;
  return n;
}

/** Directories of a group and its sub-groups, parents before children. */
export async function listTree(ctx: Ctx, dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await ctx.fs.readdir(dir);
  } catch (err) {
    if (errnoCodeOf(err) === 'ENOENT') return [];
    throw err;
  }
  const out = [dir];
  for (const e of entries) if (e.isDirectory) out.push(...(await listTree(ctx, join(dir, e.name))));
  return out;
}

/** Pids in `dir` and its sub-groups. */
export async function pidsOfTree(ctx: Ctx, dir: string): Promise<number[]> {
  const dirs = await listTree(ctx, dir);
  const texts = await Promise.all(dirs.map((d) => tryRead(ctx, join(d, 'cgroup.procs'))));
  const pids = new Set<number>();
  for (const t of texts) if (t !== undefined) for (const p of parsePids(t)) pids.add(p);
  return [...pids].sort((a, b) => a - b);
}

export function killAll(ctx: Ctx, pids: number[]): void {
  for (const pid of pids) {
    try {
      ctx.killer.kill(pid, 'SIGKILL');
    } catch (err) {
      // Already gone between listing and kill.
      if (errnoCodeOf(err) !== 'ESRCH') throw wrap(err, `kill ${pid}`);
    }
  }
}

/** Polls `done` with a growing interval (1 ms up to 50 ms) until it answers true or time runs out. */
export async function pollUntil(done: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

/** Waits between rmdir attempts on EBUSY: a process that was just killed may still be exiting. */
export const BUSY_RETRY_DELAYS_MS = [5, 10, 20, 40, 80, 160];

/**
 * rmdir with retries on EBUSY; a missing directory is fine. On EBUSY, sub-groups are removed
 * first (the container may have made some) and, with `kill`, processes left in the directory
 * (an init that died while joining some hierarchies only) are killed.
 */
export async function removeGroupDir(ctx: Ctx, dir: string, kill: boolean): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await ctx.fs.rmdir(dir);
      return;
    } catch (err) {
      const code = errnoCodeOf(err);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' && code !== 'ENOTEMPTY') throw wrap(err, `remove cgroup ${dir}`);
      if (attempt >= BUSY_RETRY_DELAYS_MS.length) {
        const left = await pidsOfTree(ctx, dir).catch(() => []);
        throw new BerthError('BERTH_CGROUP', `remove cgroup ${dir}: still busy after ${attempt + 1} attempts${left.length > 0 ? ` (processes ${left.join(', ')} remain)` : ''}`, {
          cause: err,
          details: { path: dir, pids: left },
        });
      }
      if (attempt === 0) {
        const entries = await ctx.fs.readdir(dir).catch(() => []);
        for (const e of entries) if (e.isDirectory) await removeGroupDir(ctx, join(dir, e.name), kill);
        if (kill) {
          const left = parsePids((await tryRead(ctx, join(dir, 'cgroup.procs'))) ?? '');
          killAll(ctx, left);
        }
      }
      await sleep(BUSY_RETRY_DELAYS_MS[attempt]!);
    }
  }
}

/** Parent directories of `rel` under `mount`, from the mount point down, excluding the leaf. */
export function ancestors(mount: string, rel: string): string[] {
  const segs = rel.split('/');
  const out = [mount];
  for (let i = 1; i < segs.length; i++) out.push(join(mount, segs.slice(0, i).join('/')));
  return out;
}

/** v1 blkio "<major>:<minor> <Op> <value>" lines; the closing "Total <n>" line is skipped. */
export function parseBlkioV1(text: string): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):(\d+)\s+(\S+)\s+(\d+)$/.exec(line.trim());
    if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3]!, value: Number(m[4]) });
  }
  return out;
}

/** v2 io.stat "<major>:<minor> rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=.." as Docker's op names. */
export function parseIoStatV2(text: string): BlkioStats {
  const serviceBytes: BlkioEntry[] = [];
  const serviced: BlkioEntry[] = [];
  const names: Record<string, [BlkioEntry[], string]> = {
    rbytes: [serviceBytes, 'read'], wbytes: [serviceBytes, 'write'], dbytes: [serviceBytes, 'discard'],
    rios: [serviced, 'read'], wios: [serviced, 'write'], dios: [serviced, 'discard'],
  };
  for (const line of text.split('\n')) {
    const [dev, ...kvs] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) continue;
    for (const kv of kvs) {
      const [k, v] = kv.split('=');
      const dest = names[k ?? ''];
      if (dest && v !== undefined && /^\d+$/.test(v)) dest[0].push({ major: Number(m[1]), minor: Number(m[2]), op: dest[1], value: Number(v) });
    }
  }
  return { serviceBytes, serviced };
}
