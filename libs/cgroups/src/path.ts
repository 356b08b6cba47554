import { BerthError } from '@berth/errors';

function invalid(path: string, why: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', `cgroup path "${path}": ${why}`, { details: { field: 'cgroupsPath', path } });
}

/**
 * Turns an OCI cgroupsPath into a path relative to every hierarchy's mount point.
 *
 * "berth/<id>" and "/berth/<id>" name the same group (OCI: an absolute cgroupsPath is relative
 * to the cgroup mount). A path that names the cgroup filesystem itself is accepted only when it
 * lies under one of the `roots` (mount points), and is made relative to that root; anything
 * else there is outside the roots. `..`, `.` and empty segments are refused, so the result can
 * never leave a hierarchy.
 */
export function normalizeCgroupPath(path: string, roots: readonly string[]): string {
  if (typeof path !== 'string' || path === '') throw invalid(String(path), 'is empty');
  if (path.includes('\0')) throw invalid(path, 'contains a NUL byte');
  let rel = path;
  if (path.startsWith('/')) {
    const root = roots.filter((r) => path === r || path.startsWith(`${r}/`)).sort((a, b) => b.length - a.length)[0];
    if (root !== undefined) {
      rel = path.slice(root.length);
    } else if (FS_DIRS.has(firstSegment(path)) || roots.some((r) => firstSegment(r) === firstSegment(path))) {
      throw invalid(path, `is outside the cgroup roots (${roots.join(', ')})`);
    }
  }
  const segments = rel.split('/');
  while (segments[0] === '') segments.shift();
  while (segments.length > 0 && segments[segments.length - 1] === '') segments.pop();
  if (segments.length === 0) throw invalid(path, 'names the root cgroup');
  for (const s of segments) {
    if (s === '..') throw invalid(path, 'contains ".."');
    if (s === '.' || s === '') throw invalid(path, 'contains an empty or "." segment');
  }
  return segments.join('/');
}

/** "sys" of "/sys/fs/cgroup/x". */
function firstSegment(p: string): string {
  return p.split('/')[1] ?? '';
}

// Top-level directories that only a filesystem path (never a cgroup name) starts with.
const FS_DIRS = new Set(['sys', 'proc', 'dev']);
