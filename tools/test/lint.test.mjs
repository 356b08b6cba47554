// Unit tests of the module-boundary check (tools/lint/boundaries.mjs) on small fixture
// workspaces written to a temp dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkBoundaries, findImports, findCycles } from '../lint/boundaries.mjs';

const LINT = fileURLToPath(new URL('../lint/boundaries.mjs', import.meta.url));

/**
 * Write a workspace: packages maps a folder to { name, type, deps, exports, files }.
 * Returns the root; the caller removes it.
 */
function workspace(packages, { workspaces } = {}) {
  const root = mkdtempSync(path.join(tmpdir(), 'berth-lint-'));
  const dirs = Object.keys(packages);
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'ws', private: true, workspaces: workspaces ?? dirs }));
  for (const [dir, p] of Object.entries(packages)) {
    mkdirSync(path.join(root, dir), { recursive: true });
    const pj = {
      name: p.name,
      type: 'module',
      exports: p.exports ?? { '.': { types: './dist/src/index.d.ts', default: './dist/src/index.js' } },
      dependencies: Object.fromEntries((p.deps ?? []).map((d) => [d, '0.1.0'])),
      devDependencies: Object.fromEntries((p.devDeps ?? []).map((d) => [d, '0.1.0'])),
    };
    if (p.exports === null) delete pj.exports;
    if (p.type !== null) pj.nx = { tags: [`type:${p.type}`] };
    writeFileSync(path.join(root, dir, 'package.json'), JSON.stringify(pj, null, 2));
    for (const [file, text] of Object.entries(p.files ?? { 'src/index.ts': 'export {};\n' })) {
      mkdirSync(path.dirname(path.join(root, dir, file)), { recursive: true });
      writeFileSync(path.join(root, dir, file), text);
    }
  }
  return root;
}

function lint(packages, opts) {
  const root = workspace(packages, opts);
  try {
    return checkBoundaries(root).violations.map((v) => `${v.file}:${v.line}: ${v.message}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const errors = { name: '@berth/errors', type: 'errors' };
const log = { name: '@berth/log', type: 'log' };

test('findImports sees every import form, with the line of the specifier', () => {
  const src = [
    "import { a } from './a.js';",            // 1
    "import type { T } from '@berth/t';",     // 2
    'import {',                               // 3
    '  b,',                                   // 4
    "} from '@berth/b';",                     // 5
    "import '@berth/side';",                  // 6
    "export * from './re.js';",               // 7
    "export { c } from '@berth/c/testing';",  // 8
    "const d = await import('@berth/d');",    // 9
    "const e = require('e');",                // 10
    "let f: import('@berth/f').F;",           // 11
  ].join('\n');
  assert.deepEqual(findImports(src), [
    { specifier: './a.js', line: 1 },
    { specifier: '@berth/t', line: 2 },
    { specifier: '@berth/b', line: 5 },
    { specifier: '@berth/side', line: 6 },
    { specifier: './re.js', line: 7 },
    { specifier: '@berth/c/testing', line: 8 },
    { specifier: '@berth/d', line: 9 },
    { specifier: 'e', line: 10 },
    { specifier: '@berth/f', line: 11 },
  ]);
});

test('findImports ignores imports inside comments, strings, templates and regexes', () => {
  const src = [
    "// import x from '@berth/comment';",
    "/* import y from '@berth/block'; */",
    "const s = \"import z from '@berth/string'\";",
    "const t = `import w from '@berth/template' ${ 'x' }`;",
    "const r = /import v from '@berth\\/regex'/;",
    "const url = 'http://example.com'; import real from '@berth/real';",
    'obj.import("@berth/method");',
  ].join('\n');
  assert.deepEqual(findImports(src), [{ specifier: '@berth/real', line: 6 }]);
});

test('a clean workspace has no violations, including an allowed ./testing import', () => {
  const out = lint({
    'libs/errors': errors,
    'libs/native': {
      name: '@berth/native', type: 'adapter', deps: ['@berth/errors'],
      exports: { '.': './dist/src/index.js', './testing': './dist/src/testing.js' },
      files: { 'src/index.ts': "import { BerthError } from '@berth/errors';\nexport const x = BerthError;\n", 'src/testing.ts': 'export const fake = 1;\n' },
    },
    'libs/runtime': {
      name: '@berth/runtime', type: 'domain', deps: ['@berth/native', '@berth/errors'],
      files: {
        'src/index.ts': "import { x } from '@berth/native';\nexport { x };\n",
        'src/plan.test.ts': "import { fake } from '@berth/native/testing';\nimport { x } from './index.js';\n",
        'test/privileged/run.test.ts': "import { x } from '../../src/index.js';\n",
      },
    },
  });
  assert.deepEqual(out, []);
});

test('a deep import into another package is reported with file and line', () => {
  const out = lint({
    'libs/errors': errors,
    'libs/native': {
      name: '@berth/native', type: 'adapter',
      exports: { '.': './dist/src/index.js', './testing': './dist/src/testing.js' },
    },
    'libs/runtime': {
      name: '@berth/runtime', type: 'domain', deps: ['@berth/native', '@berth/errors'],
      files: { 'src/index.ts': "export {};\nimport { f } from '@berth/native/dist/src/addon.js';\nimport { g } from '@berth/errors/src/kinds.js';\n" },
    },
  });
  assert.deepEqual(out, [
    "libs/runtime/src/index.ts:2: deep import '@berth/native/dist/src/addon.js': @berth/native exports only '@berth/native', '@berth/native/testing'",
    "libs/runtime/src/index.ts:3: deep import '@berth/errors/src/kinds.js': @berth/errors exports only '@berth/errors'",
  ]);
});

test('a relative import that leaves its package root is reported', () => {
  const out = lint({
    'libs/errors': errors,
    'libs/cgroups': {
      name: '@berth/cgroups', type: 'domain', deps: ['@berth/errors'],
      files: {
        'src/index.ts': "import { k } from '../../errors/src/kinds.js';\nimport { ok } from './ok.js';\n",
        'src/ok.ts': 'export const ok = 1;\n',
        'test/privileged/a.test.ts': "import { ok } from '../../src/ok.js';\nimport { z } from '../../../../tools/x.js';\n",
      },
    },
  });
  assert.deepEqual(out, [
    "libs/cgroups/src/index.ts:1: relative import '../../errors/src/kinds.js' leaves package @berth/cgroups (resolves to libs/errors/src/kinds.js); import '@berth/errors' instead",
    "libs/cgroups/test/privileged/a.test.ts:2: relative import '../../../../tools/x.js' leaves package @berth/cgroups (resolves to tools/x.js)",
  ]);
});

test('an import of a package not listed in package.json is reported', () => {
  const out = lint({
    'libs/errors': errors,
    'libs/log': log,
    'libs/cgroups': {
      name: '@berth/cgroups', type: 'domain', deps: ['@berth/errors'],
      files: { 'src/index.ts': "import { BerthError } from '@berth/errors';\nimport type { Logger } from '@berth/log';\nimport { q } from '@berth/nowhere';\n" },
    },
  });
  assert.deepEqual(out, [
    "libs/cgroups/src/index.ts:2: imports @berth/log, which @berth/cgroups's package.json does not list in dependencies or devDependencies",
    'libs/cgroups/src/index.ts:3: imports @berth/nowhere, which is not a workspace package',
  ]);
});

test('a devDependency counts as declared', () => {
  const out = lint({
    'libs/log': log,
    'libs/cgroups': { name: '@berth/cgroups', type: 'domain', devDeps: ['@berth/log'], files: { 'src/a.test.ts': "import '@berth/log';\n" } },
  });
  assert.deepEqual(out, []);
});

test('an arrow that points the wrong way by type tags is reported', () => {
  const out = lint({
    'libs/errors': { ...errors, deps: ['@berth/log'], files: { 'src/index.ts': "import '@berth/log';\n" } },
    'libs/log': log,
    'libs/runtime': { name: '@berth/runtime', type: 'domain' },
    'libs/native': { name: '@berth/native', type: 'adapter', deps: ['@berth/runtime'], files: { 'src/index.ts': "import { r } from '@berth/runtime';\n" } },
    'apps/berth-runtime': { name: '@berth/berth-runtime', type: 'app', deps: ['@berth/runtime'], files: { 'src/main.ts': "import '@berth/runtime';\n" } },
    'test/e2e': { name: '@berth/e2e', type: 'test', deps: ['@berth/berth-runtime', '@berth/runtime'], files: { 'src/run.test.ts': "import '@berth/berth-runtime';\nimport '@berth/runtime';\n" } },
  });
  assert.deepEqual(out, [
    'libs/errors/src/index.ts:1: @berth/errors (type:errors) must not import @berth/log (type:log); type:errors may import no other package (test code also type:testkit)',
    'libs/native/src/index.ts:1: @berth/native (type:adapter) must not import @berth/runtime (type:domain); type:adapter may import type:contract, type:errors, type:log (test code also type:testkit and type:adapter)',
    'test/e2e/src/run.test.ts:1: @berth/e2e (type:test) must not import @berth/berth-runtime (type:app); type:test may import type:core, type:domain, type:adapter, type:plugin, type:contract, type:errors, type:log, type:testkit, type:test, type:tool',
  ]);
});

test('test code may import a testkit, production code may not', () => {
  const out = lint({
    'libs/plugin-api': { name: '@berth/plugin-api', type: 'contract' },
    'libs/plugin-testkit': { name: '@berth/plugin-testkit', type: 'testkit', deps: ['@berth/plugin-api'], files: { 'src/index.ts': "import '@berth/plugin-api';\n" } },
    'plugins/network-bridge': {
      name: '@berth/network-bridge', type: 'plugin', deps: ['@berth/plugin-api'], devDeps: ['@berth/plugin-testkit'],
      files: {
        'src/driver.ts': "import '@berth/plugin-api';\nimport { suite } from '@berth/plugin-testkit';\n",
        'src/driver.test.ts': "import { suite } from '@berth/plugin-testkit';\n",
        'test/contract.test.ts': "import { suite } from '@berth/plugin-testkit';\n",
      },
    },
  }, { workspaces: ['libs/*', 'plugins/*'] });
  assert.deepEqual(out, [
    'plugins/network-bridge/src/driver.ts:2: @berth/network-bridge (type:plugin) must not import @berth/plugin-testkit (type:testkit); type:plugin may import type:contract, type:adapter, type:errors, type:log (test code also type:testkit)',
  ]);
});

test('an import cycle between packages is reported once, at an import of the cycle', () => {
  const out = lint({
    'libs/a': { name: '@berth/a', type: 'domain', deps: ['@berth/b'], files: { 'src/index.ts': "export {};\nimport { b } from '@berth/b';\n" } },
    'libs/b': { name: '@berth/b', type: 'domain', deps: ['@berth/c'], files: { 'src/index.ts': "import { c } from '@berth/c';\n" } },
    'libs/c': { name: '@berth/c', type: 'domain', deps: ['@berth/a'], files: { 'src/x.test.ts': "import { a } from '@berth/a';\n" } },
    'libs/d': { name: '@berth/d', type: 'domain', deps: ['@berth/a'], files: { 'src/index.ts': "import { a } from '@berth/a';\n" } },
  });
  assert.deepEqual(out, ['libs/a/src/index.ts:2: import cycle between packages: @berth/a -> @berth/b -> @berth/c -> @berth/a']);
});

test('findCycles returns one closed path per strongly connected component', () => {
  const g = (obj) => new Map(Object.entries(obj).map(([k, vs]) => [k, new Map(vs.map((v) => [v, {}]))]));
  assert.deepEqual(findCycles(g({ a: ['b'], b: ['c'], c: [] })), []);
  assert.deepEqual(findCycles(g({ a: ['b'], b: ['a'], c: ['d'], d: ['e'], e: ['c'] })), [['a', 'b', 'a'], ['c', 'd', 'e', 'c']]);
  // two loops through a: the shortest one is named
  assert.deepEqual(findCycles(g({ a: ['b', 'c'], b: ['d'], d: ['a'], c: ['a'] })), [['a', 'c', 'a']]);
});

test('packages without a type tag, or with an unknown one, are reported', () => {
  const out = lint({
    'libs/x': { name: '@berth/x', type: null },
    'libs/y': { name: '@berth/y', type: 'service' },
  });
  assert.equal(out.length, 2);
  assert.match(out[0], /^libs\/x\/package\.json:1: @berth\/x has no "type:" tag/);
  assert.match(out[1], /^libs\/y\/package\.json:1: @berth\/y has the unknown tag "type:service"/);
});

test('the CLI prints file:line: message lines and exits 1 on violations, 0 when clean', () => {
  const dirty = workspace({
    'libs/errors': errors,
    'libs/log': { ...log, files: { 'src/index.ts': "import { e } from '../../errors/src/index.js';\n" } },
  });
  const clean = workspace({ 'libs/errors': errors });
  try {
    const bad = spawnSync(process.execPath, [LINT, '--root', dirty], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.equal(bad.stdout, "libs/log/src/index.ts:1: relative import '../../errors/src/index.js' leaves package @berth/log (resolves to libs/errors/src/index.js); import '@berth/errors' instead\n");
    assert.match(bad.stderr, /1 violation/);
    const good = spawnSync(process.execPath, [LINT, '--root', clean], { encoding: 'utf8' });
    assert.equal(good.status, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /1 packages, 1 files, no violations/);
  } finally {
    rmSync(dirty, { recursive: true, force: true });
    rmSync(clean, { recursive: true, force: true });
  }
});

test("an adapter's test code may import another adapter, its production code may not", () => {
  const out = lint({
    'libs/native': { name: '@berth/native', type: 'adapter' },
    'libs/netlink': {
      name: '@berth/netlink', type: 'adapter', deps: [], devDeps: ['@berth/native'],
      files: { 'src/index.ts': "import '@berth/native';\n", 'test/privileged/netlink.test.ts': "import { inNetns } from '@berth/native';\n" },
    },
  });
  assert.deepEqual(out, [
    'libs/netlink/src/index.ts:1: @berth/netlink (type:adapter) must not import @berth/native (type:adapter); type:adapter may import type:contract, type:errors, type:log (test code also type:testkit and type:adapter)',
  ]);
});
