import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { FsMagic } from '@berth/native';
import { mountUnion, unmountUnion, type AufsSyscalls, type RunProgram, type UnionKind } from './union.js';

/** Docker's names for backing filesystems (`docker info`'s "Backing Filesystem"). */
export function backingFsName(magic: number): string {
  const names: Record<number, string> = {
    [FsMagic.EXT4]: 'extfs',
    [FsMagic.XFS]: 'xfs',
    [FsMagic.BTRFS]: 'btrfs',
    [FsMagic.TMPFS]: 'tmpfs',
    [FsMagic.ZFS]: 'zfs',
    [FsMagic.OVERLAYFS]: 'overlayfs',
    [FsMagic.AUFS]: 'aufs',
    [FsMagic.SQUASHFS]: 'squashfs',
  };
  return names[magic] ?? `<unknown 0x${(magic >>> 0).toString(16)}>`;
}

/** What decides whether aufs applies here, and with which union (gathered by `probeAufs`). */
export interface AufsFacts {
  /** /proc/filesystems lists `aufs`. */
  kernelHasAufs: boolean;
  /** /dev/fuse is a character device we can open. */
  devFuse: boolean;
  /** The absolute path of fuse-overlayfs, or null when it is not on PATH. */
  fuseOverlayfs: string | null;
  /** statfs magic of the driver home. */
  backingFs: number;
  /** The error of the test mount (a `.wh.` whiteout in a lower branch must hide its file); null = it worked. */
  testMountError?: string | null;
}

/** The union to use, or why the driver does not apply. */
export function chooseUnion(f: AufsFacts): { union: UnionKind } | { skip: string } {
  if (f.backingFs === FsMagic.AUFS) return { skip: 'aufs: the backing filesystem is aufs, which cannot hold aufs branches' };
  if (f.kernelHasAufs) {
    if (f.testMountError) return { skip: `aufs: a test aufs mount failed: ${f.testMountError}` };
    return { union: 'aufs' };
  }
  const missing: string[] = [];
  if (!f.devFuse) missing.push('/dev/fuse is not available');
  if (f.fuseOverlayfs === null) missing.push('fuse-overlayfs is not installed (Debian package fuse-overlayfs)');
  if (missing.length > 0) return { skip: `aufs: the kernel has no aufs (not in /proc/filesystems) and ${missing.join(' and ')}` };
  if (f.testMountError) return { skip: `aufs: a test fuse-overlayfs mount of aufs branches failed: ${f.testMountError}` };
  return { union: 'fuse-overlayfs' };
}

async function which(name: string): Promise<string | null> {
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    try {
      await fs.access(p, fsc.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

/**
 * Gathers the facts; when a union is available, mounts two branches in a fresh dir under `root`
 * (the lower one holding `f` and `.wh.g` over a lowest one holding `g`) and checks `f` shows
 * and `g` is whited out.
 */
export async function probeAufs(root: string, sys: AufsSyscalls, run: RunProgram): Promise<AufsFacts> {
  const filesystems = await fs.readFile('/proc/filesystems', 'utf8').catch(() => '');
  const devFuse = await fs
    .open('/dev/fuse', 'r+')
    .then(async (fh) => {
      await fh.close();
      return true;
    })
    .catch(() => false);
  const facts: AufsFacts = {
    kernelHasAufs: /\taufs$/m.test(filesystems),
    devFuse,
    fuseOverlayfs: await which('fuse-overlayfs'),
    backingFs: sys.statfs(root).type,
  };
  const choice = chooseUnion(facts);
  if ('skip' in choice) return facts;
  const dir = path.join(root, `probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  const b = { rw: path.join(dir, 'rw'), ro: [path.join(dir, 'l1'), path.join(dir, 'l2')], mountPoint: path.join(dir, 'mnt'), work: path.join(dir, 'work') };
  try {
    for (const d of [b.rw, ...b.ro, b.mountPoint, b.work]) await fs.mkdir(d, { recursive: true });
    await fs.writeFile(path.join(b.ro[0]!, 'f'), '');
    await fs.writeFile(path.join(b.ro[0]!, '.wh.g'), '');
    await fs.writeFile(path.join(b.ro[1]!, 'g'), '');
    await mountUnion(choice.union, b, sys, run);
    try {
      const names = await fs.readdir(b.mountPoint);
      facts.testMountError = names.includes('f') && !names.includes('g') ? null : `the union shows ${JSON.stringify(names.sort())}, not ["f"]`;
    } finally {
      await unmountUnion(choice.union, b.mountPoint, sys, run);
    }
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    facts.testMountError = stderr || (err instanceof Error ? err.message : String(err));
  } finally {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  return facts;
}
