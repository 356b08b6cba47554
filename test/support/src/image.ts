import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_BUSYBOX_IMAGE_TAR, makeBusyboxImageTar } from '@berth/fixtures';

let made: Promise<string> | undefined;

/**
 * The busybox rootfs tarball that `berth import -c 'CMD ["sh"]' <tar> busybox:latest` turns
 * into the default image; made once per process (deterministic bytes, so a stable image id).
 */
export function busyboxImageTar(): Promise<string> {
  made ??= (async () => {
    if (!existsSync(DEFAULT_BUSYBOX_IMAGE_TAR)) await makeBusyboxImageTar(DEFAULT_BUSYBOX_IMAGE_TAR);
    return DEFAULT_BUSYBOX_IMAGE_TAR;
  })();
  return made;
}

let redisMade: Promise<string | undefined> | undefined;

/**
 * A rootfs tarball of busybox plus the host's redis-server and the libraries it links, for
 * `berth import -c 'CMD ["redis-server","--protected-mode","no"]'`; undefined when the host has
 * no redis-server (Debian's redis-server package). One file per redis-server build, shared by
 * every test process (made under a temporary name and renamed): a tarball per process (20 MB
 * each) was left in /tmp by every run.
 */
export function redisImageTar(): Promise<string | undefined> {
  redisMade ??= (async () => {
    const bin = '/usr/bin/redis-server';
    if (!existsSync(bin)) return undefined;
    const st = statSync(bin);
    const out = join(tmpdir(), `berth-redis-image-${st.size}-${Math.trunc(st.mtimeMs)}.tar`);
    if (existsSync(out)) return out;
    const dir = mkdtempSync(join(tmpdir(), 'berth-redis-rootfs-'));
    const tmp = `${out}.${process.pid}.tmp`;
    try {
      execFileSync('tar', ['-xf', await busyboxImageTar(), '-C', dir]);
      const libs = execFileSync('ldd', [bin], { encoding: 'utf8' })
        .split('\n')
        .map((l) => /(\/\S+) \(0x/.exec(l)?.[1])
        .filter((x): x is string => !!x);
      for (const f of [bin, ...libs]) execFileSync('cp', ['--parents', '-L', f, dir]);
      execFileSync('tar', ['-C', dir, '-cf', tmp, '.']);
      renameSync(tmp, out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(tmp, { force: true });
    }
    return out;
  })();
  return redisMade;
}
