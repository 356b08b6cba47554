// Test-file discovery and build-state checks used by `npm test`, on fixture trees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { discover } from './discover.mjs';
import { nodeModulesState, lockDrift, nativeState, tsState } from './build-state.mjs';

function tree(files) {
  const root = mkdtempSync(path.join(tmpdir(), 'berth-discover-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), typeof text === 'string' ? text : JSON.stringify(text));
  }
  return root;
}

test('discover lists compiled tests that still have a source, and tools/**/*.test.mjs', (t) => {
  const root = tree({
    'package.json': { workspaces: ['libs/a', 'plugins/*'] },
    'libs/a/src/x.test.ts': '',
    'libs/a/dist/src/x.test.js': '',
    'libs/a/dist/src/x.js': '',
    'libs/a/test/privileged/p.test.ts': '',
    'libs/a/dist/test/privileged/p.test.js': '',
    'libs/a/dist/src/removed.test.js': '',
    'plugins/network-bridge/test/contract.test.ts': '',
    'plugins/network-bridge/dist/test/contract.test.js': '',
    'libs/not-a-workspace/dist/src/y.test.js': '',
    'tools/test/t.test.mjs': '',
    'tools/lint/node_modules/dep/z.test.mjs': '',
  });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const rel = (list) => list.map((f) => path.relative(root, f));
  const all = discover(root);
  assert.deepEqual(rel(all.files), [
    'libs/a/dist/src/x.test.js',
    'libs/a/dist/test/privileged/p.test.js',
    'plugins/network-bridge/dist/test/contract.test.js',
    'tools/test/t.test.mjs',
  ]);
  assert.deepEqual(rel(all.orphans), ['libs/a/dist/src/removed.test.js']);
  assert.deepEqual(rel(discover(root, ['privileged', 'tools/']).files), ['libs/a/dist/test/privileged/p.test.js', 'tools/test/t.test.mjs']);
  assert.deepEqual(discover(root, ['nothing-matches']).files, []);
});

test('nodeModulesState: missing, in sync, stale install; lockDrift: package.json ahead of the lock', (t) => {
  const lock = {
    packages: {
      '': { workspaces: ['libs/a'], devDependencies: { typescript: '5.9.3' } },
      'libs/a': { name: '@berth/a', dependencies: { pino: '10.4.0' } },
      'node_modules/@berth/a': { resolved: 'libs/a', link: true },
      'node_modules/pino': { version: '10.4.0' },
      'node_modules/typescript': { version: '5.9.3' },
      'node_modules/@nx/nx-darwin-arm64': { version: '24.0.6', optional: true },
    },
  };
  const installed = { packages: { ...lock.packages } };
  delete installed.packages[''];
  delete installed.packages['node_modules/@nx/nx-darwin-arm64'];
  const files = {
    'package.json': { workspaces: ['libs/a'], devDependencies: { typescript: '5.9.3' } },
    'libs/a/package.json': { name: '@berth/a', dependencies: { pino: '10.4.0' } },
    'package-lock.json': lock,
  };
  const bare = tree(files);
  const ok = tree({ ...files, 'node_modules/.package-lock.json': installed, 'node_modules/pino/package.json': {}, 'node_modules/typescript/package.json': {}, 'node_modules/@berth/a/package.json': {} });
  const old = tree({ ...files, 'node_modules/.package-lock.json': { packages: { ...installed.packages, 'node_modules/pino': { version: '9.0.0' } } }, 'node_modules/pino/package.json': {}, 'node_modules/typescript/package.json': {}, 'node_modules/@berth/a/package.json': {} });
  const ahead = tree({ ...files, 'libs/a/package.json': { name: '@berth/a', dependencies: { pino: '10.4.0', undici: '7.30.2' } }, 'node_modules/.package-lock.json': installed, 'node_modules/pino/package.json': {}, 'node_modules/typescript/package.json': {}, 'node_modules/@berth/a/package.json': {} });
  t.after(() => { for (const r of [bare, ok, old, ahead]) rmSync(r, { recursive: true, force: true }); });

  assert.deepEqual(nodeModulesState(bare), { ok: false, reason: 'node_modules is missing' });
  assert.deepEqual(nodeModulesState(ok), { ok: true });
  assert.match(nodeModulesState(old).reason, /node_modules\/pino is installed at another version/);
  // npm ci installs from the lock: a package.json ahead of it is drift, not a stale install
  assert.deepEqual(nodeModulesState(ahead), { ok: true });
  assert.deepEqual(lockDrift(ahead), ['libs/a/package.json dependencies']);
  assert.deepEqual(lockDrift(ok), []);
});

test('nativeState: unbuildable without sources, then missing, ok, and stale after a source edit', (t) => {
  const gyp = { targets: [
    { target_name: 'addon', sources: ['src/addon/a.cc'] },
    { target_name: 'tool', type: 'executable', sources: ['src/tool/t.c'] },
  ] };
  const root = tree({ 'libs/native/binding.gyp': gyp, 'libs/native/src/addon/a.cc': '' });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.deepEqual(nativeState(root), { state: 'unbuildable', missing: ['libs/native/src/tool/t.c'] });

  mkdirSync(path.join(root, 'libs/native/src/tool'));
  writeFileSync(path.join(root, 'libs/native/src/tool/t.c'), '');
  assert.deepEqual(nativeState(root), { state: 'missing', outputs: ['libs/native/build/Release/addon.node', 'libs/native/build/Release/tool'] });

  mkdirSync(path.join(root, 'libs/native/build/Release'), { recursive: true });
  const past = new Date(Date.now() - 60_000);
  for (const f of ['binding.gyp', 'src/addon/a.cc', 'src/tool/t.c']) utimesSync(path.join(root, 'libs/native', f), past, past);
  writeFileSync(path.join(root, 'libs/native/build/Release/addon.node'), '');
  writeFileSync(path.join(root, 'libs/native/build/Release/tool'), '');
  assert.deepEqual(nativeState(root), { state: 'ok' });

  writeFileSync(path.join(root, 'libs/native/src/tool/t.c'), 'int x;\n');
  utimesSync(path.join(root, 'libs/native/src/tool/t.c'), new Date(Date.now() + 60_000), new Date(Date.now() + 60_000));
  assert.deepEqual(nativeState(root), { state: 'stale', file: 'libs/native/src/tool/t.c' });
});

test('tsState names the referenced packages that have no dist yet', (t) => {
  const root = tree({
    'tsconfig.json': { files: [], references: [{ path: 'libs/a' }, { path: 'libs/b' }] },
    'libs/a/dist/src/index.js': '',
    'libs/b/src/index.ts': '',
  });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.deepEqual(tsState(root), { state: 'missing', missing: ['libs/b'] });
});
