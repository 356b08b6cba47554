import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BerthError } from '@berth/errors';

/** Is `pid` a live berthd (not a recycled pid of something else)? */
async function isLiveBerthd(pid: number): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('berthd');
  } catch {
    return false;
  }
}

/**
 * Claims the pid file: refuses when another live berthd holds it, replaces a stale one.
 * Returns the function that removes it (only if it still holds our pid).
 */
export async function acquirePidfile(path: string, pid: number = process.pid): Promise<() => Promise<void>> {
  try {
    const held = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    if (Number.isInteger(held) && held > 0 && held !== pid && (await isLiveBerthd(held)))
      throw new BerthError('BERTH_DAEMON_RUNNING', `pid file found, ensure berthd is not running or delete ${path} (held by pid ${held})`, {
        details: { field: 'pidfile', pid: held },
      });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${pid}\n`);
  return async () => {
    try {
      if (Number.parseInt((await readFile(path, 'utf8')).trim(), 10) === pid) await unlink(path);
    } catch {
      // already gone
    }
  };
}
