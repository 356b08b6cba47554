/**
 * `X-Docker-Container-Path-Stat` (GET/HEAD /containers/{id}/archive): Docker's `PathStat`,
 * base64 JSON, with the mode in Go's os.FileMode bits (type bits above the permission bits).
 */
export interface ContainerPathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** Go's os.FileMode type and special bits, as the docker CLI decodes them. */
export const GoFileMode = {
  Dir: 2 ** 31,
  Symlink: 2 ** 27,
  Device: 2 ** 26,
  NamedPipe: 2 ** 25,
  Socket: 2 ** 24,
  Setuid: 2 ** 23,
  Setgid: 2 ** 22,
  CharDevice: 2 ** 21,
  Sticky: 2 ** 20,
} as const;

/** Whether a Go FileMode (as in the stat header) is a directory. */
export const goModeIsDir = (mode: number): boolean => mode >= GoFileMode.Dir;
export const goModeIsSymlink = (mode: number): boolean => Math.floor(mode / GoFileMode.Symlink) % 2 === 1;
