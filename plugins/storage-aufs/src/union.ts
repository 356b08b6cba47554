import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MNT_DETACH, type Syscalls } from '@berth/native';

const execFileP = promisify(execFile);

/** Which union filesystem mounts the branches. */
export type UnionKind = 'aufs' | 'fuse-overlayfs';

/** The kernel calls the driver makes (@berth/native's realSyscalls() in production). */
export type AufsSyscalls = Pick<Syscalls, 'mount' | 'umount2' | 'mknod' | 'lsetxattr' | 'lgetxattr' | 'statfs'> &
  Partial<Pick<Syscalls, 'inodeFlags'>>;

/** Runs a program; answers its stderr (a failure rejects with `stderr` on the error). */
export type RunProgram = (file: string, args: string[]) => Promise<{ stderr: string }>;

export const runProgram: RunProgram = async (file, args) => {
  const { stderr } = await execFileP(file, args, { maxBuffer: 1 << 20 });
  return { stderr };
};

/** The branches of one mount: the layer's own (read-write) and its parents' (nearest first). */
export interface Branches {
  rw: string;
  ro: readonly string[];
  mountPoint: string;
  /** fuse-overlayfs's work dir (same filesystem as `rw`); unused by kernel aufs. */
  work: string;
}

/**
 * The kernel aufs mount as Docker makes it: `br:<rw>=rw:<ro>=ro+wh...` with as many branches
 * as fit one page of mount data, the rest appended one remount at a time.
 */
export function aufsMountPlan(b: Branches, pageSize = 4096): { first: string; appends: string[] } {
  const opts = 'dio,xino=/dev/shm/aufs.xino';
  let data = `br:${b.rw}=rw`;
  let i = 0;
  for (; i < b.ro.length; i++) {
    const layer = `:${b.ro[i]}=ro+wh`;
    if (Buffer.byteLength(`${opts},${data}${layer}`) >= pageSize) break;
    data += layer;
  }
  return { first: `${opts},${data}`, appends: b.ro.slice(i).map((ro) => `append:${ro}=ro+wh`) };
}

/** fuse-overlayfs's -o value for the same branches (it reads `.wh.` whiteouts in every branch). */
export function fuseOverlayOptions(b: Branches): string {
  // allow_other: container processes of any uid use the mount; dev, suid: as a kernel union.
  return [`lowerdir=${b.ro.join(':')}`, `upperdir=${b.rw}`, `workdir=${b.work}`, 'allow_other', 'dev', 'suid'].join(',');
}

export async function mountUnion(kind: UnionKind, b: Branches, sys: AufsSyscalls, run: RunProgram, pageSize = 4096): Promise<void> {
  if (kind === 'aufs') {
    const plan = aufsMountPlan(b, pageSize);
    sys.mount('none', b.mountPoint, 'aufs', 0, plan.first);
    const MS_REMOUNT = 32;
    try {
      for (const a of plan.appends) sys.mount('none', b.mountPoint, 'aufs', MS_REMOUNT, a);
    } catch (err) {
      sys.umount2(b.mountPoint, MNT_DETACH);
      throw err;
    }
    return;
  }
  await run('fuse-overlayfs', ['-o', fuseOverlayOptions(b), b.mountPoint]);
}

const isErrno = (err: unknown, ...codes: string[]): boolean => codes.includes((err as { code?: string }).code ?? '');

/** Unmounts a union: umount2 (lazily when busy); without privilege, fusermount3 -u. */
export async function unmountUnion(kind: UnionKind, mountPoint: string, sys: AufsSyscalls, run: RunProgram): Promise<void> {
  try {
    sys.umount2(mountPoint, 0);
  } catch (err) {
    if (isErrno(err, 'EINVAL', 'ENOENT')) return; // not mounted
    if (isErrno(err, 'EBUSY')) {
      sys.umount2(mountPoint, MNT_DETACH);
      return;
    }
    if (kind === 'fuse-overlayfs' && isErrno(err, 'EPERM')) {
      await run('fusermount3', ['-u', '-z', mountPoint]);
      return;
    }
    throw err;
  }
}
