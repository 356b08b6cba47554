import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { FsMagic } from '@berth/native';
import type { OverlaySyscalls } from './driver.js';

const execFileP = promisify(execFile);

/** What decides whether overlay2 applies on this host (gathered by `probeOverlay`). */
export interface OverlayFacts {
  /** /proc/filesystems lists `overlay`. */
  kernelHasOverlay: boolean;
  /** statfs magic of the driver home. */
  backingFs: number;
  /** The backing fs returns d_type in readdir; null = could not tell (assumed yes). */
  dType: boolean | null;
  /** The error of the test mount; null when it worked, undefined when it was not tried. */
  testMountError?: string | null;
}

/** Docker's names for backing filesystems (`docker info`'s "Backing Filesystem"). */
export function backingFsName(magic: number): string {
  switch (magic) {
    case FsMagic.EXT4:
      return 'extfs';
    case FsMagic.XFS:
      return 'xfs';
    case FsMagic.BTRFS:
      return 'btrfs';
    case FsMagic.TMPFS:
      return 'tmpfs';
    case FsMagic.ZFS:
      return 'zfs';
    case FsMagic.OVERLAYFS:
      return 'overlayfs';
    case FsMagic.AUFS:
      return 'aufs';
    case FsMagic.SQUASHFS:
      return 'squashfs';
    default:
      return `<unknown 0x${(magic >>> 0).toString(16)}>`;
  }
}

/** Why overlay2 cannot be used with these facts, or null when it can. */
export function skipReason(f: OverlayFacts): string | null {
  if (!f.kernelHasOverlay) return 'overlay2: the kernel has no overlayfs (not in /proc/filesystems)';
  if (f.backingFs === FsMagic.OVERLAYFS || f.backingFs === FsMagic.AUFS)
    return `overlay2: the backing filesystem ${backingFsName(f.backingFs)} cannot hold overlayfs upper dirs`;
  if (f.dType === false) return `overlay2: the backing filesystem ${backingFsName(f.backingFs)} does not support d_type (xfs needs ftype=1)`;
  if (f.testMountError) return `overlay2: a test overlay mount failed: ${f.testMountError}`;
  return null;
}

/**
 * The overlay mount options the kernel knows that keep upper dirs in the plain format the
 * native diff reads: no inode index (the same upper may be mounted again after a restart), no
 * redirect xattrs on renamed dirs, no metadata-only copy-ups. Answers those whose module
 * parameter exists.
 */
export async function plainFormatOptions(paramsDir = '/sys/module/overlay/parameters'): Promise<string[]> {
  const out: string[] = [];
  for (const [param, opt] of [
    ['index', 'index=off'],
    ['redirect_dir', 'redirect_dir=off'],
    ['metacopy', 'metacopy=off'],
  ] as const) {
    try {
      await fs.access(path.join(paramsDir, param));
      out.push(opt);
    } catch {
      // the kernel predates the option
    }
  }
  return out;
}

/** Whether the backing filesystem returns d_type; only xfs with ftype=0 does not (among those overlay accepts). */
async function hasDType(root: string, magic: number): Promise<boolean | null> {
  if (magic !== FsMagic.XFS) return true;
  try {
    const { stdout } = await execFileP('xfs_info', [root]);
    const m = /ftype=(\d)/.exec(stdout);
    return m === null ? null : m[1] === '1';
  } catch {
    return null;
  }
}

/** Gathers the facts for `skipReason`; the test mount happens in a fresh dir under `root`. */
export async function probeOverlay(root: string, sys: OverlaySyscalls, options: string[]): Promise<OverlayFacts> {
  const filesystems = await fs.readFile('/proc/filesystems', 'utf8').catch(() => '');
  const kernelHasOverlay = /\toverlay$/m.test(filesystems);
  const backingFs = sys.statfs(root).type;
  const facts: OverlayFacts = { kernelHasOverlay, backingFs, dType: await hasDType(root, backingFs) };
  if (skipReason(facts) !== null) return facts;
  const dir = path.join(root, `probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    for (const d of ['l1', 'l2', 'upper', 'work', 'merged']) await fs.mkdir(path.join(dir, d), { recursive: true });
    await fs.writeFile(path.join(dir, 'l2', 'f'), '');
    const data = [`lowerdir=${dir}/l1:${dir}/l2`, `upperdir=${dir}/upper`, `workdir=${dir}/work`, ...options].join(',');
    sys.mount('overlay', path.join(dir, 'merged'), 'overlay', 0, data);
    try {
      await fs.access(path.join(dir, 'merged', 'f'));
      facts.testMountError = null;
    } finally {
      sys.umount2(path.join(dir, 'merged'), 0);
    }
  } catch (err) {
    facts.testMountError = err instanceof Error ? err.message : String(err);
  } finally {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  return facts;
}
