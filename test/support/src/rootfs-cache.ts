import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DEFAULT_BUSYBOX_BINARY, makeBusyboxRootfs } from '@berth/fixtures';

/** Where test runs keep their shared busybox rootfs, one per busybox build. */
export const ROOTFS_CACHE_DIR = '/tmp/berth-test-cache';

let cached: Promise<string> | undefined;

/**
 * A busybox rootfs built once and shared by all test processes on the machine; bundles copy it.
 * Built in a private directory and renamed into place, so concurrent test processes never see
 * a half-built tree; the name carries the busybox binary's size and mtime so an upgraded
 * busybox-static gets a fresh tree.
 */
export function cachedBusyboxRootfs(): Promise<string> {
  cached ??= (async () => {
    const st = await fs.stat(DEFAULT_BUSYBOX_BINARY);
    const dir = path.join(ROOTFS_CACHE_DIR, `busybox-rootfs-${st.size}-${Math.trunc(st.mtimeMs)}`);
    const stamp = path.join(dir, '.berth-complete');
    if (await exists(stamp)) return dir;
    await fs.mkdir(ROOTFS_CACHE_DIR, { recursive: true, mode: 0o755 });
    await fs.chmod(ROOTFS_CACHE_DIR, 0o755);
    const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    await makeBusyboxRootfs(tmp);
    await fs.writeFile(path.join(tmp, '.berth-complete'), '');
    try {
      await fs.rename(tmp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Another process won the race (ENOTEMPTY/EEXIST); or a crashed run left an incomplete tree.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      if (!(await exists(stamp))) {
        await fs.rm(dir, { recursive: true, force: true });
        await fs.rename(tmp, dir);
      }
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
    return dir;
  })();
  return cached;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Copies a rootfs tree. Regular files are hard-linked (fast, no space) except under etc/,
 * which tests may edit; falls back to copying when the trees are on different filesystems.
 */
export async function copyRootfs(src: string, dest: string): Promise<void> {
  await copyTree(src, dest, '');
}

async function copyTree(src: string, dest: string, rel: string): Promise<void> {
  const st = await fs.lstat(src);
  await fs.mkdir(dest, { mode: st.mode & 0o7777 });
  await fs.chmod(dest, st.mode & 0o7777);
  await fs.lchown(dest, st.uid, st.gid).catch(() => undefined);
  for (const ent of await fs.readdir(src, { withFileTypes: true })) {
    if (rel === '' && ent.name === '.berth-complete') continue;
    const s = path.join(src, ent.name);
    const d = path.join(dest, ent.name);
    const r = rel === '' ? ent.name : `${rel}/${ent.name}`;
    if (ent.isDirectory()) {
      await copyTree(s, d, r);
    } else if (ent.isSymbolicLink()) {
      await fs.symlink(await fs.readlink(s), d);
    } else if (ent.isFile()) {
      if (r.startsWith('etc/')) {
        await fs.copyFile(s, d);
      } else {
        try {
          await fs.link(s, d);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
          await fs.copyFile(s, d);
          await fs.chmod(d, (await fs.stat(s)).mode & 0o7777);
        }
      }
    }
  }
}
