// Checks every constant of src/constants.ts against the C headers of this machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as native from '../src/index.js';

// TS name -> C expression. FsMagic values are checked by their linux/magic.h names.
const scalar = [
  'MS_RDONLY', 'MS_NOSUID', 'MS_NODEV', 'MS_NOEXEC', 'MS_SYNCHRONOUS', 'MS_REMOUNT', 'MS_MANDLOCK', 'MS_DIRSYNC',
  'MS_NOSYMFOLLOW', 'MS_NOATIME', 'MS_NODIRATIME', 'MS_BIND', 'MS_MOVE', 'MS_REC', 'MS_SILENT', 'MS_POSIXACL',
  'MS_UNBINDABLE', 'MS_PRIVATE', 'MS_SLAVE', 'MS_SHARED', 'MS_RELATIME', 'MS_I_VERSION', 'MS_STRICTATIME',
  'MS_LAZYTIME', 'MNT_FORCE', 'MNT_DETACH', 'MNT_EXPIRE', 'UMOUNT_NOFOLLOW', 'CLONE_NEWTIME', 'CLONE_NEWNS',
  'CLONE_NEWCGROUP', 'CLONE_NEWUTS', 'CLONE_NEWIPC', 'CLONE_NEWUSER', 'CLONE_NEWPID', 'CLONE_NEWNET',
  'XATTR_CREATE', 'XATTR_REPLACE', 'S_IFMT', 'S_IFSOCK', 'S_IFLNK', 'S_IFREG', 'S_IFBLK', 'S_IFDIR', 'S_IFCHR',
  'S_IFIFO', 'ST_RDONLY', 'ST_NOSUID', 'ST_NODEV', 'ST_NOEXEC', 'FS_TOPDIR_FL',
] as const;
const magic: Record<string, string> = {
  TMPFS: 'TMPFS_MAGIC',
  EXT4: 'EXT4_SUPER_MAGIC',
  XFS: 'XFS_SUPER_MAGIC',
  BTRFS: 'BTRFS_SUPER_MAGIC',
  OVERLAYFS: 'OVERLAYFS_SUPER_MAGIC',
  PROC: 'PROC_SUPER_MAGIC',
  SYSFS: 'SYSFS_MAGIC',
  CGROUP: 'CGROUP_SUPER_MAGIC',
  CGROUP2: 'CGROUP2_SUPER_MAGIC',
  NSFS: 'NSFS_MAGIC',
  DEVPTS: 'DEVPTS_SUPER_MAGIC',
  SQUASHFS: 'SQUASHFS_MAGIC',
};

test('constants equal the values of the system headers', (t) => {
  const dir = mkdtempSync(join(tmpdir(), `berth-consts-${process.pid}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const exprs: [string, string][] = [
    ...scalar.map((n): [string, string] => [n, n]),
    ...Object.entries(magic).map(([k, c]): [string, string] => [`FsMagic.${k}`, c]),
    ...Object.keys(native.SeccompFilterFlag).map((k): [string, string] => [`SeccompFilterFlag.${k}`, k]),
  ];
  const src = [
    '#define _GNU_SOURCE',
    '#include <sched.h>',
    '#include <stdio.h>',
    '#include <sys/mount.h>',
    '#include <sys/stat.h>',
    '#include <sys/statvfs.h>',
    '#include <sys/xattr.h>',
    '#include <linux/fs.h>',
    '#include <linux/magic.h>',
    '#include <linux/seccomp.h>',
    'int main(void) {',
    ...exprs.map(([name, c]) => `  printf("%s %llu\\n", "${name}", (unsigned long long)(${c}));`),
    '  return 0;',
    '}',
  ].join('\n');
  writeFileSync(join(dir, 'c.c'), src);
  execFileSync('gcc', ['-o', join(dir, 'c'), join(dir, 'c.c')], { stdio: 'pipe' });
  const fromC = Object.fromEntries(
    execFileSync(join(dir, 'c'), { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string])
      .map(([n, v]) => [n, Number(v)]),
  );
  const fromTs: Record<string, number> = {};
  for (const n of scalar) fromTs[n] = native[n];
  for (const k of Object.keys(magic)) fromTs[`FsMagic.${k}`] = native.FsMagic[k as keyof typeof native.FsMagic];
  for (const [k, v] of Object.entries(native.SeccompFilterFlag)) fromTs[`SeccompFilterFlag.${k}`] = v;
  assert.deepEqual(fromTs, fromC);
  // aufs is out of tree: its magic is the ASCII of "aufs".
  assert.equal(native.FsMagic.AUFS, Buffer.from('aufs').readUInt32BE(0));
});
