/**
 * `docker cp` on a mounted container filesystem: stat, tar out and extract in, every path
 * resolved inside the container's root (scoped-path.ts). The caller holds the mount and, for a
 * running container, keeps its processes frozen while this runs, so nothing inside can swap a
 * directory for a symlink between the resolution and the use (see docs in pinDir).
 */
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { applyTar, encodeHeader, entryComponents, readTar, type ArchiveFs } from '@berth/archive';
import { GoFileMode, type ContainerPathStat } from '@berth/api/wire';
import { BerthError } from '@berth/errors';
import { tarTree } from './export.js';
import { containerPathOf, pinDir, resolveInRoot } from './scoped-path.js';

const { Dir: GO_DIR, Symlink: GO_SYMLINK, Device: GO_DEVICE, NamedPipe: GO_NAMEDPIPE, Socket: GO_SOCKET, Setuid: GO_SETUID, Setgid: GO_SETGID, CharDevice: GO_CHARDEVICE, Sticky: GO_STICKY } = GoFileMode;

/** Go's os.FileMode of an lstat result (what the docker CLI decodes). */
export function goFileMode(st: Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m += GO_DIR;
  else if (st.isSymbolicLink()) m += GO_SYMLINK;
  else if (st.isCharacterDevice()) m += GO_DEVICE + GO_CHARDEVICE;
  else if (st.isBlockDevice()) m += GO_DEVICE;
  else if (st.isFIFO()) m += GO_NAMEDPIPE;
  else if (st.isSocket()) m += GO_SOCKET;
  if (st.mode & 0o4000) m += GO_SETUID;
  if (st.mode & 0o2000) m += GO_SETGID;
  if (st.mode & 0o1000) m += GO_STICKY;
  return m;
}


/** `filepath.Base` of the cleaned path with its trailing `/` or `/.` kept in mind, as Docker names the member. */
function memberName(containerPath: string): string {
  if (/(^|\/)\.$/.test(containerPath)) return '.';
  const parts = containerPath.split('/').filter((p) => p !== '' && p !== '.');
  const norm = path.posix.normalize(`/${parts.join('/')}`);
  return norm === '/' ? '/' : path.posix.basename(norm);
}

function notFound(containerPath: string, container: string, cause?: unknown): BerthError {
  return new BerthError('BERTH_CONTAINER_PATH_NOT_FOUND', `Could not find the file ${containerPath} in container ${container}`, {
    cause,
    details: { path: containerPath, containerId: container },
  });
}

async function lstatIn(hostPath: string, containerPath: string, container: string): Promise<Stats> {
  try {
    return await fs.lstat(hostPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw notFound(containerPath, container, err);
    throw err;
  }
}

/**
 * Stat of `containerPath` (HEAD /containers/{id}/archive): the last component is not followed
 * unless the path ends in `/` or `/.`; a symlink's `linkTarget` is its target resolved in the root.
 */
export async function statContainerPath(root: string, containerPath: string, container: string): Promise<{ stat: ContainerPathStat; hostPath: string; st: Stats }> {
  const hostPath = await resolveInRoot(root, containerPath);
  const st = await lstatIn(hostPath, containerPath, container);
  let linkTarget = '';
  if (st.isSymbolicLink()) linkTarget = containerPathOf(root, await resolveInRoot(root, containerPath, { followFinal: true }));
  return {
    hostPath,
    st,
    stat: { name: memberName(containerPath), size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget },
  };
}

/**
 * A tar of `containerPath` (GET /containers/{id}/archive): one member named like the path's last
 * component (a directory with everything below it). `release` runs once the walk is over.
 */
export async function archiveContainerPath(
  root: string,
  containerPath: string,
  container: string,
  release: () => Promise<void>,
): Promise<{ stat: ContainerPathStat; tar: Readable }> {
  const { stat, hostPath, st } = await statContainerPath(root, containerPath, container);
  // Pin the directory the walk starts from: the member itself when a directory, else its parent.
  const pinned = await pinDir(root, st.isDirectory() ? hostPath : path.dirname(hostPath));
  // `/.`: the directory the magic link names, not the link (an lstat of the bare fd path sees a symlink).
  const start = st.isDirectory() ? `${pinned.path}/.` : path.join(pinned.path, path.basename(hostPath));
  const name = stat.name === '/' ? '.' : stat.name;
  const tar = tarTree(start, async () => {
    await pinned.close().catch(() => undefined);
    await release();
  }, { name });
  return { stat, tar };
}

export interface ExtractOptions {
  fs: ArchiveFs;
  /** Refuse to replace a directory by a non-directory or the reverse (the docker CLI sets it). */
  noOverwriteDirNonDir: boolean;
}

/**
 * Extracts a tar into the directory `containerPath` (PUT /containers/{id}/archive), followed
 * inside the root. Extraction starts at the pinned directory and never writes through a symlink
 * below it (applyTar refuses), so nothing outside the container's root can be reached.
 */
export async function extractToContainer(root: string, containerPath: string, container: string, tar: Readable, opts: ExtractOptions): Promise<void> {
  const hostDir = await resolveInRoot(root, containerPath, { followFinal: true });
  const st = await lstatIn(hostDir, containerPath, container);
  if (!st.isDirectory()) throw new BerthError('BERTH_INVALID_ARGUMENT', 'extraction point is not a directory', { details: { field: 'path', path: containerPath } });
  const pinned = await pinDir(root, hostDir);
  try {
    const src = opts.noOverwriteDirNonDir ? checkedTar(pinned.path, tar) : tar;
    await applyTar(pinned.path, src, { fs: opts.fs, whiteoutFormat: 'keep' });
  } finally {
    await pinned.close();
  }
}

/** The tar again, refusing a member that would replace a directory by a non-directory or the reverse. */
async function* checkedTar(dir: string, tar: Readable): AsyncGenerator<Buffer> {
  for await (const { header: h, body } of readTar(tar)) {
    const parts = entryComponents(h.name);
    if (parts.length > 0) {
      const existing = await fs.lstat(path.join(dir, ...parts)).catch(() => null);
      if (existing !== null) {
        const newIsDir = h.type === 'dir';
        if (existing.isDirectory() && !newIsDir)
          throw new BerthError('BERTH_INVALID_ARGUMENT', `cannot overwrite directory "/${parts.join('/')}" with non-directory "${h.name}"`, { details: { field: 'path' } });
        if (!existing.isDirectory() && newIsDir && h.type !== 'link')
          throw new BerthError('BERTH_INVALID_ARGUMENT', `cannot overwrite non-directory "/${parts.join('/')}" with directory "${h.name}"`, { details: { field: 'path' } });
      }
    }
    yield encodeHeader(h);
    let n = 0;
    for await (const chunk of body) {
      n += chunk.length;
      yield chunk;
    }
    const pad = (512 - (n % 512)) % 512;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}
