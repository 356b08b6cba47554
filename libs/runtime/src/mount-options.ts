import {
  MS_BIND, MS_DIRSYNC, MS_MANDLOCK, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID,
  MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT, MS_SHARED, MS_SLAVE, MS_STRICTATIME,
  MS_SYNCHRONOUS, MS_UNBINDABLE, MS_NOSYMFOLLOW,
} from '@berth/native';

/** [set, clear] per option name, as mount(8) reads them. */
const flagOptions: Readonly<Record<string, [number, number]>> = {
  ro: [MS_RDONLY, 0], rw: [0, MS_RDONLY], nosuid: [MS_NOSUID, 0], suid: [0, MS_NOSUID],
  nodev: [MS_NODEV, 0], dev: [0, MS_NODEV], noexec: [MS_NOEXEC, 0], exec: [0, MS_NOEXEC],
  sync: [MS_SYNCHRONOUS, 0], async: [0, MS_SYNCHRONOUS], dirsync: [MS_DIRSYNC, 0],
  remount: [MS_REMOUNT, 0], mand: [MS_MANDLOCK, 0], nomand: [0, MS_MANDLOCK],
  atime: [0, MS_NOATIME], noatime: [MS_NOATIME, 0], diratime: [0, MS_NODIRATIME],
  nodiratime: [MS_NODIRATIME, 0], bind: [MS_BIND, 0], rbind: [MS_BIND | MS_REC, 0],
  relatime: [MS_RELATIME, 0], norelatime: [0, MS_RELATIME], strictatime: [MS_STRICTATIME, 0],
  nostrictatime: [0, MS_STRICTATIME], nosymfollow: [MS_NOSYMFOLLOW, 0],
};

const propagationOptions: Readonly<Record<string, number>> = {
  private: MS_PRIVATE, rprivate: MS_PRIVATE | MS_REC, shared: MS_SHARED, rshared: MS_SHARED | MS_REC,
  slave: MS_SLAVE, rslave: MS_SLAVE | MS_REC, unbindable: MS_UNBINDABLE, runbindable: MS_UNBINDABLE | MS_REC,
};

/** Options runtimes accept and that mean nothing to mount(2). */
const ignored = new Set(['tmpcopyup', 'idmap', 'ridmap']);

export interface ParsedMountOptions {
  flags: number;
  propagation: number;
  data: string | null;
}

export function parseMountOptions(options: readonly string[] | undefined): ParsedMountOptions {
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  for (const opt of options ?? []) {
    const f = flagOptions[opt];
    if (f) {
      flags = (flags | f[0]) & ~f[1];
      continue;
    }
    const p = propagationOptions[opt];
    if (p !== undefined) {
      propagation = p;
      continue;
    }
    if (!ignored.has(opt)) data.push(opt);
  }
  return { flags, propagation, data: data.length ? data.join(',') : null };
}

export function parsePropagation(name: string | undefined, fallback: number): number | undefined {
  if (name === undefined || name === '') return fallback;
  return propagationOptions[name];
}
