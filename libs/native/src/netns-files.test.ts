import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLONE_NEWNET, FsMagic, MNT_DETACH, MS_BIND } from './constants.js';
import { createNetns, deleteNetns, netnsExists } from './netns-files.js';
import { RecordingSyscalls } from './testing.js';

test('createNetns: unshare, bind-mount the thread’s netns on a new file, setns back, in that order', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netns-unit-'));
  try {
    const sys = new RecordingSyscalls();
    const path = join(dir, 'sub', 'ns1');
    createNetns(path, sys);
    assert.deepEqual(
      sys.calls.map((c) => c.name),
      ['unshare', 'mount', 'setns'],
    );
    assert.deepEqual(sys.calls[0]!.args, [CLONE_NEWNET]);
    assert.deepEqual(sys.calls[1]!.args, ['/proc/thread-self/ns/net', path, null, MS_BIND, null]);
    assert.equal(sys.calls[2]!.args[1], CLONE_NEWNET);
    assert.ok(existsSync(path), 'the mount point file exists (parents made)');
    assert.throws(() => createNetns(path, sys), { code: 'EEXIST' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('createNetns: a failed mount still returns the thread and removes the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netns-unit-'));
  try {
    const sys = new RecordingSyscalls().failOn('mount', 'EPERM');
    const path = join(dir, 'ns1');
    assert.throws(() => createNetns(path, sys), { code: 'EPERM' });
    assert.deepEqual(
      sys.calls.map((c) => c.name),
      ['unshare', 'mount', 'setns'],
    );
    assert.equal(existsSync(path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deleteNetns: MNT_DETACH then unlink; absent or not mounted is no error. netnsExists: nsfs only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netns-unit-'));
  try {
    const sys = new RecordingSyscalls();
    const path = join(dir, 'ns1');
    createNetns(path, sys);
    deleteNetns(path, sys);
    assert.deepEqual(sys.callsTo('umount2').map((c) => c.args), [[path, MNT_DETACH]]);
    assert.equal(existsSync(path), false);
    deleteNetns(path, new RecordingSyscalls().failOn('umount2', 'ENOENT'));
    deleteNetns(path, new RecordingSyscalls().failOn('umount2', 'EINVAL'));
    assert.throws(() => deleteNetns(path, new RecordingSyscalls().failOn('umount2', 'EBUSY')), { code: 'EBUSY' });
    const nsfs = new RecordingSyscalls().respond('statfs', () => ({ type: FsMagic.NSFS, bsize: 0, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, flags: 0 }));
    assert.equal(netnsExists(path, nsfs), true);
    assert.equal(netnsExists(path, new RecordingSyscalls()), false);
    assert.equal(netnsExists(path, new RecordingSyscalls().failOn('statfs', 'ENOENT')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
