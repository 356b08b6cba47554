/**
 * `--ipc shareable` and `--ipc container:<ref>`, as Docker: a shareable container's /dev/shm is a
 * tmpfs mounted on the host at `<container dir>/mounts/shm`, bound into the container, so that a
 * container joining its IPC namespace binds the same one (POSIX shared memory is files there). It
 * is mounted at start and unmounted when the run ends; a joiner keeps its own reference.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';
import { MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID } from '@berth/native';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';

function shmDir(ctx: EngineContext, c: Ctr): string {
  return join(ctx.store.dir(c.id), 'mounts', 'shm');
}

/** The host side of the container's /dev/shm for the spec: its own tmpfs (mounted now) or its donor's; undefined for the other modes. */
export function prepareShm(ctx: EngineContext, c: Ctr): string | undefined {
  const mode = c.host.IpcMode;
  if (mode.startsWith('container:')) {
    const donor = ctx.get(mode.slice('container:'.length));
    if (donor.host.IpcMode !== 'shareable')
      throw new BerthError('BERTH_CONTAINER_START_FAILED', `can't join IPC of container ${donor.id}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)`);
    return shmDir(ctx, donor);
  }
  if (mode !== 'shareable') return undefined;
  const dir = shmDir(ctx, c);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // One left by a daemon that died during a run would be stacked on: release it first.
  releaseShm(ctx, c);
  const size = Math.floor(c.host.ShmSize / 1024);
  ctx.sys().mount('shm', dir, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,size=${size}k`);
  return dir;
}

/** Unmounts a shareable container's /dev/shm (the run ended, failed or is removed); idempotent. */
export function releaseShm(ctx: EngineContext, c: Ctr): void {
  if (c.host.IpcMode !== 'shareable') return;
  try {
    ctx.sys().umount2(shmDir(ctx, c), MNT_DETACH);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOENT') ctx.log.warn({ err, containerId: c.id }, 'unmounting /dev/shm failed');
  }
}
