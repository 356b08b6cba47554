// The summary line of `npm test` comes from tools/test/summary-reporter.mjs. These tests run
// node's own test runner on fixture files so the counts are checked against the events Node
// really emits (Node 20: a file's tests at nesting 0, suites marked details.type 'suite',
// crashed or timed-out files reported as a failed test named by the file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createCounter } from './summary-reporter.mjs';

const REPORTER = fileURLToPath(new URL('./summary-reporter.mjs', import.meta.url));

/** Run `node --test` on the given files (name -> source) and return the summary line. */
function runFixture(files, extraArgs = []) {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-summary-'));
  try {
    for (const [name, src] of Object.entries(files)) writeFileSync(path.join(dir, name), src);
    const out = path.join(dir, 'summary.txt');
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT; // else the nested runner talks the child protocol to us
    const r = spawnSync(process.execPath, [
      '--test', '--test-concurrency=2', ...extraArgs,
      '--test-reporter=tap', '--test-reporter-destination=stdout',
      `--test-reporter=${REPORTER}`, `--test-reporter-destination=${out}`,
      ...Object.keys(files),
    ], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
    return { line: readFileSync(out, 'utf8'), status: r.status, tap: r.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const IMPORTS = "import { test, describe, it, before, after } from 'node:test';\n";

test('leaf tests are counted, suites and parents of subtests are not, todo counts as skipped', () => {
  const r = runFixture({
    'a.test.mjs': IMPORTS + `
test('top pass', () => {});
test('top skip', { skip: 'not here' }, () => {});
test('top todo', { todo: true }, () => { throw new Error('todo may fail'); });
test('runtime skip', (t) => { t.skip('host lacks it'); });
test('parent', async (t) => { await t.test('child 1', () => {}); await t.test('child 2', () => {}); });
describe('suite', () => {
  it('in suite', () => {});
  it('fails', () => { throw new Error('boom'); });
  describe('inner', () => { it('deep', () => {}); });
});
describe('empty suite', () => {});
`,
  });
  assert.equal(r.line, '5 passed, 1 failed, 3 skipped\n');
  assert.equal(r.status, 1);
});

test('a file that crashes while loading counts as one failure; a file without tests counts nothing', () => {
  const r = runFixture({
    'crash.test.mjs': "throw new Error('cannot load');\n",
    'empty.test.mjs': '// nothing here\n',
    'ok.test.mjs': IMPORTS + "test('fine', () => {});\n",
  });
  assert.equal(r.line, '1 passed, 1 failed, 0 skipped\n');
});

test('a file that exits non-zero after its tests passed counts one failure', () => {
  const r = runFixture({
    'exit.test.mjs': IMPORTS + "test('passes', () => { setTimeout(() => process.exit(3), 20); });\n",
  });
  assert.equal(r.line, '1 passed, 1 failed, 0 skipped\n');
});

test('failing hooks and a parent failing on its own are failures, without double counting', () => {
  const r = runFixture({
    'hooks.test.mjs': IMPORTS + `
describe('before fails', () => { before(() => { throw new Error('x'); }); it('a', () => {}); it('b', () => {}); });
describe('after fails', () => { after(() => { throw new Error('y'); }); it('c', () => {}); });
test('parent throws after its subtests', async (t) => { await t.test('d', () => {}); throw new Error('own'); });
`,
  });
  // a and b are cancelled (2 failed, their suite adds nothing); c and d pass; the after hook
  // and the parent fail on their own (2 more)
  assert.equal(r.line, '2 passed, 4 failed, 0 skipped\n');
});

test('a file that outlives the per-file timeout counts as one failure', () => {
  const r = runFixture({
    'hang.test.mjs': IMPORTS + "test('never ends', () => new Promise(() => { setInterval(() => {}, 1000); }));\n",
    'ok.test.mjs': IMPORTS + "test('fine', () => {});\n",
  }, ['--test-timeout=1500']);
  assert.equal(r.line, '1 passed, 1 failed, 0 skipped\n');
});

test('the counter keeps files apart when their events interleave', () => {
  const c = createCounter();
  const ev = (type, file, nesting, name, extra = {}) => c.onEvent({ type, data: { file, nesting, name, ...extra } });
  ev('test:pass', '/a', 1, 'a child');
  ev('test:pass', '/b', 0, 'b leaf');
  ev('test:pass', '/a', 0, 'a parent');
  ev('test:fail', '/b', 0, 'b todo', { todo: true });
  assert.equal(c.line(), '2 passed, 0 failed, 1 skipped');
});
