import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The home directory runc puts in HOME when the spec's env has none: the uid's entry in the
 * container's /etc/passwd, else "/". A symlinked /etc or /etc/passwd is not followed (it could
 * point at the host's), and counts as no entry.
 */
export function homeOf(rootfs: string, uid: number): string {
  try {
    if (lstatSync(join(rootfs, 'etc')).isSymbolicLink()) return '/';
    const file = join(rootfs, 'etc', 'passwd');
    if (!lstatSync(file).isFile()) return '/';
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 6 && Number(f[2]) === uid && f[2] !== '') return f[5] || '/';
    }
  } catch {
    // No passwd file: the default.
  }
  return '/';
}

export function withHome(env: string[], rootfs: string | null, uid: number): string[] {
  if (env.some((e) => e.startsWith('HOME='))) return env;
  return [...env, `HOME=${rootfs ? homeOf(rootfs, uid) : '/'}`];
}
