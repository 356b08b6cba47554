import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstatSync, mkdirSync, openSync, readdirSync, closeSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemError, kindOf } from '@berth/errors';
import {
  CLONE_NEWNET,
  FS_TOPDIR_FL,
  FsMagic,
  MNT_DETACH,
  MS_NODEV,
  MS_NOSUID,
  S_IFCHR,
  XATTR_CREATE,
  realSyscalls,
} from '../../src/index.js';
import { mountsUnder, notRoot, removeDir, tempDir } from './helpers.js';

const sys = notRoot ? undefined! : realSyscalls();

function withTmpfs(t: { after(fn: () => void): void }, flags = 0): string {
  const dir = tempDir('berth-t');
  sys.mount('tmpfs', dir, 'tmpfs', flags, 'size=1m,mode=0755');
  t.after(() => {
    if (mountsUnder(dir).length > 0) sys.umount2(dir, MNT_DETACH);
    removeDir(dir);
  });
  return dir;
}

function assertSystemError(fn: () => unknown, expect: { code: string; syscall: string; path?: string; dest?: string }): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SystemError, `expected a SystemError, got ${String(err)}`);
    assert.equal(err.code, expect.code);
    assert.equal(err.errno, osConstants.errno[expect.code as keyof typeof osConstants.errno]);
    assert.equal(err.syscall, expect.syscall);
    assert.equal(err.path, expect.path);
    assert.equal(err.dest, expect.dest);
    return true;
  });
}

test('mount a tmpfs on a temp dir, see it in statfs and mountinfo, umount it', { skip: notRoot }, () => {
  const dir = tempDir('berth-t');
  try {
    const before = sys.statfs(dir).type;
    assert.notEqual(before, FsMagic.TMPFS);
    sys.mount('tmpfs', dir, 'tmpfs', MS_NOSUID | MS_NODEV, 'size=1m');
    assert.deepEqual(mountsUnder(dir), [dir]);
    const st = sys.statfs(dir);
    assert.equal(st.type, 0x01021994);
    assert.equal(st.bsize * st.blocks, 1024 * 1024);
    assert.ok((st.flags & 0x2) !== 0 && (st.flags & 0x4) !== 0, 'ST_NOSUID and ST_NODEV reported');
    writeFileSync(join(dir, 'marker'), 'x');
    sys.umount2(dir, 0);
    assert.deepEqual(mountsUnder(dir), []);
    assert.equal(sys.statfs(dir).type, before);
    assert.throws(() => statSync(join(dir, 'marker')), { code: 'ENOENT' });
  } finally {
    if (mountsUnder(dir).length > 0) sys.umount2(dir, MNT_DETACH);
    removeDir(dir);
  }
});

test('mount and umount failures carry errno, code, syscall and the paths', { skip: notRoot }, () => {
  const dir = tempDir('berth-t');
  try {
    const missing = join(dir, 'missing');
    assertSystemError(() => sys.mount(null, missing, 'tmpfs', 0, null), { code: 'ENOENT', syscall: 'mount', path: missing });
    assertSystemError(() => sys.mount('tmpfs', missing, 'tmpfs', 0, null), { code: 'ENOENT', syscall: 'mount', path: 'tmpfs', dest: missing });
    assertSystemError(() => sys.umount2(dir, 0), { code: 'EINVAL', syscall: 'umount2', path: dir });
    assertSystemError(() => sys.statfs(missing), { code: 'ENOENT', syscall: 'statfs', path: missing });
    assert.throws(
      () => sys.mount(null, missing, 'tmpfs', 0, null),
      (err: unknown) => kindOf(err) === 'NotFound' && (err as Error).message === `mount ${missing}: ENOENT`,
    );
    assert.deepEqual(mountsUnder(dir), []);
  } finally {
    removeDir(dir);
  }
});

test('wrong argument types are TypeErrors, not system errors', { skip: notRoot }, () => {
  const raw = sys as unknown as { mount(...a: unknown[]): void; mknod(...a: unknown[]): void };
  assert.throws(() => raw.mount(1, '/x', null, 0, null), TypeError);
  assert.throws(() => raw.mknod('/x\0y', 0, 1, 3), { name: 'TypeError', message: /NUL/ });
  assert.throws(() => raw.mknod('/x', 0.5, 1, 3), TypeError);
});

test('mknod makes a char device 1:3 that behaves as /dev/null', { skip: notRoot }, (t) => {
  const dir = withTmpfs(t);
  const node = join(dir, 'null');
  sys.mknod(node, S_IFCHR | 0o666, 1, 3);
  const st = statSync(node);
  assert.ok(st.isCharacterDevice());
  assert.equal(st.mode & 0o777, 0o666 & ~process.umask());
  assert.equal(st.rdev, statSync('/dev/null').rdev);
  writeFileSync(node, 'discarded');
  assert.equal(readFileSync(node, 'utf8'), '');
  assertSystemError(() => sys.mknod(node, S_IFCHR | 0o666, 1, 3), { code: 'EEXIST', syscall: 'mknod', path: node });
});

test('lchown changes the link itself, not its target', { skip: notRoot }, (t) => {
  const dir = withTmpfs(t);
  const file = join(dir, 'f');
  const link = join(dir, 'l');
  writeFileSync(file, '');
  symlinkSync(file, link);
  sys.lchown(link, 1234, 5678);
  assert.deepEqual([lstatSync(link).uid, lstatSync(link).gid], [1234, 5678]);
  assert.deepEqual([statSync(file).uid, statSync(file).gid], [0, 0]);
  sys.lchown(file, 42, -1);
  assert.deepEqual([statSync(file).uid, statSync(file).gid], [42, 0], '-1 leaves the gid unchanged');
  assertSystemError(() => sys.lchown(join(dir, 'nope'), 0, 0), { code: 'ENOENT', syscall: 'lchown', path: join(dir, 'nope') });
});

for (const fs of ['tmpfs', 'the temp dir filesystem'] as const) {
  test(`lsetxattr / lgetxattr of user. and trusted. attributes on ${fs}`, { skip: notRoot }, (t) => {
    let dir: string;
    if (fs === 'tmpfs') dir = withTmpfs(t);
    else {
      dir = tempDir('berth-t');
      t.after(() => removeDir(dir));
    }
    const file = join(dir, 'f');
    writeFileSync(file, '');
    const binary = Buffer.from([0xff, 0x00, 0x80, 0x61]);
    sys.lsetxattr(file, 'user.berth', binary, 0);
    sys.lsetxattr(file, 'trusted.overlay.opaque', Buffer.from('y'), XATTR_CREATE);
    assert.deepEqual(sys.lgetxattr(file, 'user.berth'), binary);
    assert.deepEqual(sys.lgetxattr(file, 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.equal(sys.lgetxattr(file, 'user.absent'), null);
    sys.lsetxattr(file, 'user.empty', Buffer.alloc(0), 0);
    assert.deepEqual(sys.lgetxattr(file, 'user.empty'), Buffer.alloc(0));
    assertSystemError(() => sys.lsetxattr(file, 'trusted.overlay.opaque', Buffer.from('n'), XATTR_CREATE), {
      code: 'EEXIST',
      syscall: 'lsetxattr',
      path: file,
    });
    // The l- variants act on a symlink itself: the target does not get the attribute.
    const link = join(dir, 'l');
    symlinkSync(join(dir, 'other'), link);
    writeFileSync(join(dir, 'other'), '');
    sys.lsetxattr(link, 'trusted.on-link', Buffer.from('1'), 0);
    assert.deepEqual(sys.lgetxattr(link, 'trusted.on-link'), Buffer.from('1'));
    assert.equal(sys.lgetxattr(join(dir, 'other'), 'trusted.on-link'), null);
    assertSystemError(() => sys.lgetxattr(join(dir, 'nope'), 'user.x'), { code: 'ENOENT', syscall: 'lgetxattr', path: join(dir, 'nope') });
  });
}

test('gettid is the pid on the main thread', { skip: notRoot }, () => {
  assert.equal(sys.gettid(), process.pid);
});

test('unshare(CLONE_NEWNET) moves only this thread, and setns brings it back', { skip: notRoot }, () => {
  const own = openSync('/proc/thread-self/ns/net', 'r');
  const before = readlinkSync('/proc/thread-self/ns/net');
  try {
    sys.unshare(CLONE_NEWNET);
    assert.notEqual(readlinkSync('/proc/thread-self/ns/net'), before);
    assert.equal(readlinkSync(`/proc/${process.pid}/ns/net`), readlinkSync('/proc/thread-self/ns/net'), 'main thread is the process leader');
  } finally {
    sys.setns(own, CLONE_NEWNET);
    closeSync(own);
  }
  assert.equal(readlinkSync('/proc/thread-self/ns/net'), before);
  assertSystemError(() => sys.setns(own, CLONE_NEWNET), { code: 'EBADF', syscall: 'setns' });
});

test('pidfdOpen + pidfdSendSignal signal a child; a gone pid is ESRCH', { skip: notRoot }, async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  await once(child, 'spawn');
  const pid = child.pid!;
  const fd = sys.pidfdOpen(pid);
  try {
    assert.ok(fd > 2);
    const exited = once(child, 'exit');
    sys.pidfdSendSignal(fd, osConstants.signals.SIGTERM);
    const [code, signal] = await exited;
    assert.deepEqual([code, signal], [null, 'SIGTERM']);
    // The process is reaped now; its pidfd reports ESRCH.
    assertSystemError(() => sys.pidfdSendSignal(fd, 0), { code: 'ESRCH', syscall: 'pidfd_send_signal' });
  } finally {
    closeSync(fd);
  }
  assertSystemError(() => sys.pidfdOpen(pid), { code: 'ESRCH', syscall: 'pidfd_open' });
});

test('the tests above leave no mounts or temp dirs behind', { skip: notRoot }, () => {
  const mine = readdirSync(tmpdir()).filter((n) => n.startsWith(`berth-t-${process.pid}-`));
  assert.deepEqual(mine, []);
  assert.deepEqual(mountsUnder(tmpdir()).filter((m) => m.includes(`berth-t-${process.pid}-`)), []);
});

test('inodeFlags sets, reads and clears FS_TOPDIR_FL (chattr +T) on an ext4 dir; tmpfs and symlinks fail cleanly', { skip: notRoot }, (t) => {
  const dir = tempDir('berth-t');
  t.after(() => removeDir(dir));
  if (sys.statfs(dir).type !== FsMagic.EXT4) return t.skip('the temp dir is not on ext4');
  const sub = join(dir, 'layers');
  mkdirSync(sub);
  const before = sys.inodeFlags(sub, 0, 0);
  assert.equal(before & FS_TOPDIR_FL, 0);
  assert.equal(sys.inodeFlags(sub, FS_TOPDIR_FL, 0), before | FS_TOPDIR_FL);
  assert.equal(sys.inodeFlags(sub, 0, 0), before | FS_TOPDIR_FL, 'the flag is kept by the inode');
  // e2fsprogs' own view, where it is installed.
  const lsattr = ((): string | null => {
    try {
      return execFileSync('lsattr', ['-d', sub], { encoding: 'utf8' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  })();
  if (lsattr !== null) assert.match(lsattr, /^\S*T\S* /, 'lsattr shows T');
  assert.equal(sys.inodeFlags(sub, 0, FS_TOPDIR_FL), before);
  symlinkSync(sub, join(dir, 'link'));
  assertSystemError(() => sys.inodeFlags(join(dir, 'link'), FS_TOPDIR_FL, 0), { code: 'ELOOP', syscall: 'open', path: join(dir, 'link') });
  assert.equal(sys.inodeFlags(sub, 0, 0) & FS_TOPDIR_FL, 0, 'nothing was set through the symlink');
  const tmp = withTmpfs(t);
  assertSystemError(() => sys.inodeFlags(tmp, FS_TOPDIR_FL, 0), { code: 'EOPNOTSUPP', syscall: 'ioctl_setflags', path: tmp });
});
