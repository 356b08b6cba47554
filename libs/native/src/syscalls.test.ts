import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SystemError, kindOf } from '@berth/errors';
import { toSystemError } from './syscalls.js';

test('toSystemError keeps errno, code, syscall, path and dest of an addon error', () => {
  const raw = Object.assign(new Error('mount: EBUSY'), { errno: 16, code: 'EBUSY', syscall: 'mount', path: '/a', dest: '/b' });
  const err = toSystemError(raw);
  assert.ok(err instanceof SystemError);
  assert.equal(err.message, 'mount /a -> /b: EBUSY');
  assert.equal(err.errno, 16);
  assert.equal(kindOf(err), 'Conflict');
});

test('toSystemError passes other errors through unchanged', () => {
  const typeError = new TypeError('argument 0 (source) must be a string or null');
  assert.equal(toSystemError(typeError), typeError);
  assert.equal(toSystemError('x'), 'x');
});
