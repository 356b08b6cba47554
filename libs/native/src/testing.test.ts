import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SystemError, kindOf } from '@berth/errors';
import { RecordingSyscalls } from './testing.js';
import { CLONE_NEWNET, FS_TOPDIR_FL, MS_BIND, MS_REC, XATTR_CREATE, XATTR_REPLACE } from './constants.js';

test('RecordingSyscalls records each call with its arguments, in order', () => {
  const sys = new RecordingSyscalls();
  sys.mount('/src', '/dst', null, MS_BIND | MS_REC, null);
  sys.setns(7, CLONE_NEWNET);
  sys.umount2('/dst', 2);
  assert.deepEqual(sys.calls, [
    { name: 'mount', args: ['/src', '/dst', null, MS_BIND | MS_REC, null] },
    { name: 'setns', args: [7, CLONE_NEWNET] },
    { name: 'umount2', args: ['/dst', 2] },
  ]);
  assert.deepEqual(sys.names(), ['mount', 'setns', 'umount2']);
  assert.deepEqual(sys.callsTo('setns'), [{ name: 'setns', args: [7, CLONE_NEWNET] }]);
});

test('failOn throws the SystemError the real call would, and the call is still recorded', () => {
  const sys = new RecordingSyscalls().failOn('mount', 'ENOENT', (_source, target) => target === '/missing');
  sys.mount(null, '/present', 'tmpfs', 0, null);
  assert.throws(
    () => sys.mount('tmpfs', '/missing', 'tmpfs', 0, 'size=1m'),
    (err: unknown) => {
      assert.ok(err instanceof SystemError);
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.errno, 2);
      assert.equal(err.syscall, 'mount');
      assert.equal(err.path, 'tmpfs');
      assert.equal(err.dest, '/missing');
      assert.equal(kindOf(err), 'NotFound');
      return true;
    },
  );
  assert.equal(sys.calls.length, 2);
});

test('failOn names the kernel call and the path like the real implementation', () => {
  const sys = new RecordingSyscalls().failOn('pidfdOpen', 'ESRCH').failOn('lchown', 'EPERM').failOn('mount', 'EBUSY');
  assert.throws(() => sys.pidfdOpen(123), { syscall: 'pidfd_open', code: 'ESRCH', errno: 3, path: undefined });
  assert.throws(() => sys.lchown('/f', 0, 0), { syscall: 'lchown', code: 'EPERM', path: '/f' });
  assert.throws(() => sys.mount(null, '/m', 'tmpfs', 0, null), { path: '/m', dest: undefined });
});

test('failOn refuses a code that is not an errno name', () => {
  assert.throws(() => new RecordingSyscalls().failOn('mount', 'ENOTANERRNO'), /not an errno name/);
});

test('the xattr model returns what was set and honours XATTR_CREATE / XATTR_REPLACE', () => {
  const sys = new RecordingSyscalls();
  assert.equal(sys.lgetxattr('/f', 'trusted.overlay.opaque'), null);
  assert.throws(() => sys.lsetxattr('/f', 'trusted.overlay.opaque', Buffer.from('y'), XATTR_REPLACE), { code: 'ENODATA' });
  sys.lsetxattr('/f', 'trusted.overlay.opaque', Buffer.from('y'), XATTR_CREATE);
  assert.deepEqual(sys.lgetxattr('/f', 'trusted.overlay.opaque'), Buffer.from('y'));
  assert.equal(sys.lgetxattr('/g', 'trusted.overlay.opaque'), null);
  assert.throws(() => sys.lsetxattr('/f', 'trusted.overlay.opaque', Buffer.from('n'), XATTR_CREATE), { code: 'EEXIST' });
});

test('the inodeFlags model keeps flags per path; a failure names ioctl_setflags and the path', () => {
  const sys = new RecordingSyscalls();
  assert.equal(sys.inodeFlags('/d', 0, 0), 0);
  assert.equal(sys.inodeFlags('/d', FS_TOPDIR_FL | 0x80000, 0), FS_TOPDIR_FL | 0x80000);
  assert.equal(sys.inodeFlags('/d', 0, 0x80000), FS_TOPDIR_FL);
  assert.equal(sys.inodeFlags('/e', 0, 0), 0);
  sys.failOn('inodeFlags', 'EOPNOTSUPP', (path) => path === '/tmpfs');
  assert.throws(() => sys.inodeFlags('/tmpfs', FS_TOPDIR_FL, 0), { code: 'EOPNOTSUPP', syscall: 'ioctl_setflags', path: '/tmpfs' });
  assert.deepEqual(sys.names(), ['inodeFlags', 'inodeFlags', 'inodeFlags', 'inodeFlags', 'inodeFlags']);
});

test('respond replaces the model for one call name', () => {
  const sys = new RecordingSyscalls().respond('statfs', (path) => ({
    type: path === '/t' ? 0x01021994 : 0xef53,
    bsize: 4096,
    blocks: 1,
    bfree: 1,
    bavail: 1,
    files: 1,
    ffree: 1,
    flags: 0,
  }));
  assert.equal(sys.statfs('/t').type, 0x01021994);
  assert.equal(sys.statfs('/e').type, 0xef53);
  assert.equal(sys.pidfdOpen(1), 1000);
  assert.equal(sys.pidfdOpen(2), 1001);
});

test('reset forgets calls and failures', () => {
  const sys = new RecordingSyscalls().failOn('unshare', 'EINVAL');
  assert.throws(() => sys.unshare(1));
  sys.reset();
  sys.unshare(1);
  assert.deepEqual(sys.names(), ['unshare']);
});
