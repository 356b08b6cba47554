// The only module that loads berth_native.node. Everything else goes through `Syscalls`.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { BerthError } from '@berth/errors';
import { nativePaths } from './paths.js';
import type { BpfQuery, StatfsInfo } from './syscalls.js';

/** The raw functions of the addon. Failures throw an Error with errno, code, syscall, path, dest. */
export interface NativeAddon {
  readonly abiVersion: number;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  mknod(path: string, mode: number, major: number, minor: number): void;
  lchown(path: string, uid: number, gid: number): void;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): void;
  lgetxattr(path: string, name: string): Buffer | null;
  statfs(path: string): StatfsInfo;
  inodeFlags(path: string, set: number, clear: number): number;
  mallocTrim(): boolean;
  setns(fd: number, nstype: number): void;
  unshare(flags: number): void;
  gettid(): number;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, sig: number): void;
  compileSeccomp(profile: object): { bpf: Buffer; skipped: string[]; sameAsDefault: string[] };
  bpfProgLoadCgroupDevice(insns: Buffer, license: string): number;
  bpfProgAttach(progFd: number, targetFd: number, attachType: number, flags: number, replaceFd?: number): void;
  bpfProgDetach(progFd: number, targetFd: number, attachType: number): void;
  bpfProgQuery(targetFd: number, attachType: number): BpfQuery;
  bpfProgGetFdById(id: number): number;
  spawn(
    path: string,
    argv: string[],
    fds: (number | null)[],
    setsid: boolean,
    notifyExit: boolean,
    callback: (what: 'spawned' | 'error' | 'exit', a: unknown, b?: number | null) => void,
  ): void;
  pipe(minCapacity: number): [number, number];
}

/** The addon contract this TypeScript was written against (addon.cc exports `abiVersion`). */
const expectedAbi = 4;

let loaded: NativeAddon | undefined;

/** Loads the addon once; a BerthError BERTH_NATIVE_UNAVAILABLE says how to build it. */
export function loadAddon(): NativeAddon {
  if (loaded !== undefined) return loaded;
  const path = nativePaths().addon;
  if (!existsSync(path)) {
    throw new BerthError('BERTH_NATIVE_UNAVAILABLE', `native addon ${path} is not built; run \`npm run build:native\``, {
      details: { path },
    });
  }
  let mod: NativeAddon;
  try {
    mod = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    throw new BerthError('BERTH_NATIVE_UNAVAILABLE', `native addon ${path} failed to load: ${(err as Error).message}`, {
      cause: err,
      details: { path },
    });
  }
  // spawn and pipe were added without bumping abiVersion (bundles already built, expecting ABI 4,
  // load the rebuilt addon too, and only gain two functions): a build without them is stale.
  if (mod.abiVersion !== expectedAbi || typeof mod.spawn !== 'function' || typeof mod.pipe !== 'function') {
    throw new BerthError(
      'BERTH_NATIVE_UNAVAILABLE',
      mod.abiVersion !== expectedAbi
        ? `native addon ${path} has ABI ${String(mod.abiVersion)}, expected ${expectedAbi}; rebuild it with \`npm run build:native\``
        : `native addon ${path} predates spawn/pipe; rebuild it with \`npm run build:native\``,
      { details: { path } },
    );
  }
  loaded = mod;
  return mod;
}
