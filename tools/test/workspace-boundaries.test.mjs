// The workspace itself obeys the module-boundary rules, so a violation also shows in the
// summary line of `npm test` (run-all.sh runs the lint as a step of its own as well).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { checkBoundaries } from '../lint/boundaries.mjs';

test('the workspace has no module-boundary violations', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const { violations, packages } = checkBoundaries(root);
  assert.ok(packages > 0, 'no workspace packages found');
  assert.deepEqual(violations.map((v) => `${v.file}:${v.line}: ${v.message}`), []);
});
