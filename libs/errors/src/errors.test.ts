import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BerthError, SystemError, catalog, httpStatusOfKind, kindOf, wrap, errnoCodeOf } from './index.js';

test('kindOf walks the cause chain through wrapped errors', () => {
  const inner = new BerthError('BERTH_CONTAINER_NOT_FOUND', 'container c1 does not exist');
  const outer = wrap(wrap(inner, 'state c1'), 'runtime');
  assert.equal(kindOf(outer), 'NotFound');
  assert.equal(httpStatusOfKind[kindOf(outer)], 404);
  assert.equal(outer.message, 'runtime: state c1: container c1 does not exist');
});

test('a SystemError takes its kind from errno and names syscall and path', () => {
  const err = new SystemError({ errno: 2, code: 'ENOENT', syscall: 'mount', path: '/a', dest: '/b' });
  assert.equal(err.message, 'mount /a -> /b: ENOENT');
  assert.equal(kindOf(err), 'NotFound');
  assert.equal(errnoCodeOf(wrap(err, 'x')), 'ENOENT');
  assert.equal(kindOf(new SystemError({ errno: 5, code: 'EIO', syscall: 'read' })), 'Internal');
});

test('plain errors are Internal', () => {
  assert.equal(kindOf(new Error('x')), 'Internal');
  assert.equal(kindOf('a string'), 'Internal');
});

test('docs/errors.md lists exactly the codes of the catalog', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../../../docs/errors.md', import.meta.url)), 'utf8');
  const documented = [...doc.matchAll(/^\| `(BERTH_[A-Z_]+)` \| (\w+) \|/gm)].map((m) => [m[1], m[2]]);
  const coded = Object.entries(catalog).map(([code, row]) => [code, row.kind]);
  assert.deepEqual(documented.sort(), coded.sort());
});
