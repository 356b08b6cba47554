import type { Readable } from 'node:stream';

/** The kernel calls extraction needs beyond node:fs (mknod, xattrs); @berth/native's Syscalls fits. */
export interface ArchiveFs {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): void;
  lgetxattr(path: string, name: string): Buffer | null;
}

export interface ApplyTarOptions {
  fs: ArchiveFs;
  /** Honour `.wh.` whiteouts (delete from lower content); default true. */
  whiteouts?: boolean;
}

/** Extracts a layer tar into `dir`, confined to it; answers the bytes of regular-file content written. */
export async function applyTar(_dir: string, _tar: Readable, _opts: ApplyTarOptions): Promise<number> {
  throw new Error('not implemented');
}

/** A tar of the whole directory `dir` (sorted entries, numeric owners, security.capability). */
export function packDir(_dir: string, _fs: ArchiveFs): Readable {
  throw new Error('not implemented');
}
