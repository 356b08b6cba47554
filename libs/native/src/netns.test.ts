import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { SystemError } from '@berth/errors';
import { inNetns } from './netns.js';
import { RecordingSyscalls } from './testing.js';
import { CLONE_NEWNET } from './constants.js';

// These run without root: the fake setns moves nothing, so any readable ns file will do.
const nsPath = '/proc/self/ns/net';

test('inNetns enters the namespace, runs fn, and returns to the thread\'s own namespace', () => {
  const sys = new RecordingSyscalls();
  const order: string[] = [];
  sys.respond('setns', (fd) => void order.push(`setns ${fd}`));
  const result = inNetns(nsPath, () => (order.push('fn'), 42), sys);
  assert.equal(result, 42);
  const [enter, leave] = sys.callsTo('setns');
  assert.ok(enter && leave);
  assert.equal(enter.args[1], CLONE_NEWNET);
  assert.equal(leave.args[1], CLONE_NEWNET);
  assert.notEqual(enter.args[0], leave.args[0], 'enters with the target fd and leaves with the saved one');
  assert.deepEqual(order, [`setns ${enter.args[0]}`, 'fn', `setns ${leave.args[0]}`]);
});

test('inNetns returns to the own namespace when fn throws', () => {
  const sys = new RecordingSyscalls();
  assert.throws(() => inNetns(nsPath, () => { throw new Error('boom'); }, sys), /boom/);
  assert.equal(sys.callsTo('setns').length, 2);
});

test('inNetns refuses a fn that returns a promise, after returning to the own namespace', () => {
  const sys = new RecordingSyscalls();
  assert.throws(() => inNetns(nsPath, async () => 1, sys), { code: 'BERTH_INVALID_ARGUMENT', message: /synchronous/ });
  assert.equal(sys.callsTo('setns').length, 2);
});

test('inNetns names the namespace path when it cannot be opened or entered', () => {
  assert.throws(() => inNetns('/run/netns/berth-does-not-exist', () => 1, new RecordingSyscalls()), (err: unknown) => {
    assert.ok(err instanceof SystemError);
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.path, '/run/netns/berth-does-not-exist');
    return true;
  });
  const sys = new RecordingSyscalls().failOn('setns', 'EINVAL');
  let ran = false;
  assert.throws(() => inNetns(nsPath, () => (ran = true), sys), { code: 'EINVAL', syscall: 'setns', path: nsPath });
  assert.equal(ran, false);
  assert.equal(sys.callsTo('setns').length, 1, 'no setns back when the thread never left');
});

test('inNetns reports a failure to return as an internal error', () => {
  let n = 0;
  const sys = new RecordingSyscalls().failOn('setns', 'EPERM', () => ++n === 2);
  assert.throws(() => inNetns(nsPath, () => 1, sys), { code: 'BERTH_INTERNAL', message: /could not return/ });
  // The thread's own namespace is untouched by the fake; the real one would now be wrong.
  assert.equal(readlinkSync('/proc/thread-self/ns/net'), readlinkSync('/proc/self/ns/net'));
});
