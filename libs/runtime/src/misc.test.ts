import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MS_BIND, MS_NODEV, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC } from '@berth/native';
import { parseSignal } from './signals.js';
import { parseMountOptions } from './mount-options.js';
import { validateSpec } from './spec.js';
import { validateId } from './state-store.js';
import { describeFailure, parseFailure } from './launch.js';
import { containerDeviceRules } from './device-rules.js';

test('signals by name, SIG name or number; anything else is refused', () => {
  assert.equal(parseSignal('TERM'), 15);
  assert.equal(parseSignal('sigkill'), 9);
  assert.equal(parseSignal('10'), 10);
  assert.throws(() => parseSignal('NOPE'), /invalid signal "NOPE"/);
  assert.throws(() => parseSignal('0'), /invalid signal/);
  assert.throws(() => parseSignal('65'), /invalid signal/);
});

test('mount options split into flags, propagation and data', () => {
  assert.deepEqual(parseMountOptions(['nosuid', 'nodev', 'mode=755', 'size=65536k', 'ro', 'rw']), {
    flags: MS_NOSUID | MS_NODEV, propagation: 0, data: 'mode=755,size=65536k',
  });
  assert.deepEqual(parseMountOptions(['rbind', 'rprivate', 'ro']), { flags: MS_BIND | MS_REC | MS_RDONLY, propagation: MS_PRIVATE | MS_REC, data: null });
});

test('spec validation names the field', () => {
  const base = { ociVersion: '1.0.2', root: { path: 'rootfs' }, process: { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 } } };
  assert.doesNotThrow(() => validateSpec(base));
  assert.throws(() => validateSpec({ ...base, process: { ...base.process, args: [] } }), /^BerthError: process.args: must be a non-empty array/);
  assert.throws(() => validateSpec({ ...base, process: { ...base.process, cwd: 'rel' } }), /process.cwd: "rel" is not an absolute path/);
  assert.throws(() => validateSpec({ ...base, linux: { namespaces: [{ type: 'pid' }, { type: 'pid' }] } }), /linux.namespaces\[1\].type: namespace "pid" listed twice/);
  assert.throws(() => validateSpec({ ...base, mounts: [{ destination: 'x' }] }), /mounts\[0\].destination: "x" is not an absolute path/);
  assert.throws(() => validateSpec({ ...base, root: undefined }), /^BerthError: root: missing/);
  assert.throws(() => validateSpec([]), /config.json: expected a JSON object/);
});

test('container ids follow runc: letters, digits and _ + . -', () => {
  assert.doesNotThrow(() => validateId('a.b-c_d+1'));
  for (const bad of ['', '..', 'a/b', 'a b', 'x\0']) assert.throws(() => validateId(bad), /invalid container id/);
});

test('init failures map to messages and exit codes like docker (127 not found, 126 not executable)', () => {
  assert.deepEqual(describeFailure(parseFailure('error\t2\texec\tfoo\texecutable file not found in $PATH')), {
    message: 'exec: "foo": executable file not found in $PATH', exitCode: 127,
  });
  assert.equal(describeFailure(parseFailure('error\t13\taccess\t/etc/passwd\t')).exitCode, 126);
  assert.equal(describeFailure(parseFailure('error\t2\tchdir\t/nope\t')).message, 'process.cwd: chdir /nope: ENOENT');
  assert.equal(describeFailure(parseFailure('error\t1\tmount\t/proc\tproc on /proc (proc)')).message, 'mount /proc: EPERM (proc on /proc (proc))');
});

test('device rules: a node with its own spec rule keeps that access; others are usable fully', () => {
  const spec = [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 10, minor: 229, access: 'r' },
  ];
  const rules = containerDeviceRules(spec, [
    { path: '/dev/fuse', type: 'c', major: 10, minor: 229 },
    { path: '/dev/tty5', type: 'c', major: 4, minor: 5 },
  ]);
  // Last match wins: nothing after the spec's read-only rule widens 10:229.
  const last = (t: string, ma: number, mi: number) => [...rules].reverse().find((r) => (r.type === undefined || r.type === 'a' || r.type === t) && (r.major === undefined || r.major === ma) && (r.minor === undefined || r.minor === mi) && r.access !== 'm');
  assert.equal(last('c', 10, 229)?.access, 'r');
  assert.deepEqual(last('c', 4, 5), { allow: true, type: 'c', major: 4, minor: 5, access: 'rwm' });
});
