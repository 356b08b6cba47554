/**
 * bin/berth (through tools/bundle/launch.cjs) runs dist/berth.cjs only while it and every input recorded in dist/berth.inputs.json
 * still have their recorded mtimes; otherwise dist/src/main.js. The code cache is used only under
 * the node version that made it, and a bad one is only slower. Checked on a copy of the launcher
 * in a scratch tree with stand-in modules, so the real dist is not touched.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const root = mkdtempSync(join(tmpdir(), `berth-launcher-${process.pid}-`));
after(() => rmSync(root, { recursive: true, force: true }));

interface Tree {
  run: (env?: Record<string, string>) => string;
  input: string;
  bundle: string;
  manifest: (node?: string) => void;
}

function tree(): Tree {
  // <scratch>/apps/berth and <scratch>/tools/bundle/launch.cjs, as in the repository
  const top = mkdtempSync(join(root, 't-'));
  const dir = join(top, 'apps', 'berth');
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'dist', 'src'), { recursive: true });
  mkdirSync(join(top, 'tools', 'bundle'), { recursive: true });
  copyFileSync(join(pkg, 'bin', 'berth'), join(dir, 'bin', 'berth'));
  copyFileSync(join(pkg, 'bin', 'package.json'), join(dir, 'bin', 'package.json'));
  copyFileSync(join(pkg, '..', '..', 'tools', 'bundle', 'launch.cjs'), join(top, 'tools', 'bundle', 'launch.cjs'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  const mod = (what: string): string =>
    `main: async (argv) => { process.stdout.write('${what} ' + argv.join(' ')); return 3; }, exit: (c) => process.exit(c)`;
  const bundle = join(dir, 'dist', 'berth.cjs');
  writeFileSync(bundle, `(function (exports, require, module, __filename, __dirname) { module.exports = { ${mod('bundle')} }; })`);
  writeFileSync(join(dir, 'dist', 'src', 'main.js'), `const m = { ${mod('dist-src')} }; export const main = m.main, exit = m.exit;`);
  const input = join(dir, 'dist', 'src', 'main.js');
  const manifest = (node = process.version): void =>
    writeFileSync(
      join(dir, 'dist', 'berth.inputs.json'),
      JSON.stringify({ node, bundle: statSync(bundle).mtimeMs, inputs: [['src/main.js', statSync(input).mtimeMs]] }),
    );
  const run = (env: Record<string, string> = {}): string => {
    try {
      execFileSync(process.execPath, [join(dir, 'bin', 'berth'), 'ps', '-a'], { env: { ...process.env, ...env }, encoding: 'utf8' });
      return 'exit 0';
    } catch (err) {
      const e = err as { status: number; stdout: string };
      assert.equal(e.status, 3);
      return e.stdout;
    }
  };
  return { run, input, bundle, manifest };
}

test('the bundle runs while its inputs are unchanged', () => {
  const t = tree();
  t.manifest();
  assert.equal(t.run(), 'bundle ps -a');
  assert.equal(t.run({ BERTH_NO_BUNDLE: '1' }), 'dist-src ps -a');
});

test('dist/src runs when an input or the bundle changed since the manifest, or there is none', () => {
  const t = tree();
  assert.equal(t.run(), 'dist-src ps -a', 'no manifest');
  t.manifest();
  const later = new Date(Date.now() + 5000);
  utimesSync(t.input, later, later);
  assert.equal(t.run(), 'dist-src ps -a', 'a newer input');
  t.manifest();
  assert.equal(t.run(), 'bundle ps -a');
  const laterStill = new Date(Date.now() + 10000);
  utimesSync(t.bundle, laterStill, laterStill);
  assert.equal(t.run(), 'dist-src ps -a', 'a bundle the manifest does not describe');
});

test('a code cache from another node version is not read; a bad one only costs a compile', () => {
  const t = tree();
  writeFileSync(`${t.bundle}.cache`, 'not a V8 code cache');
  t.manifest('v0.0.1');
  assert.equal(t.run(), 'bundle ps -a');
  t.manifest();
  assert.equal(t.run(), 'bundle ps -a');
});

test('the built bundle accepts its code cache (V8 would silently compile without it)', (t) => {
  const file = join(pkg, 'dist', 'berth.cjs');
  let manifest: { node: string };
  try {
    manifest = JSON.parse(readFileSync(join(pkg, 'dist', 'berth.inputs.json'), 'utf8')) as { node: string };
  } catch {
    return t.skip('not bundled (node tools/bundle/bundle.mjs apps/berth)');
  }
  if (manifest.node !== process.version) return t.skip(`bundled under node ${manifest.node}`);
  // in a child without our V8 flags, as bin/berth runs (flags are part of the cache's key)
  const check = `const fs = require('fs'); const { Script } = require('vm'); const f = ${JSON.stringify(file)};
    const s = new Script(fs.readFileSync(f, 'utf8'), { filename: f, cachedData: fs.readFileSync(f + '.cache') });
    process.stdout.write(String(s.cachedDataRejected));`;
  const out = execFileSync(process.execPath, ['-e', check], { env: { ...process.env, NODE_OPTIONS: '' }, encoding: 'utf8' });
  assert.equal(out, 'false');
});

test('the built bundles have no import() left of a built-in (a vm.Script has no dynamic-import callback: it would fail at run time)', (t) => {
  const apps = ['berth', 'berth-runtime', 'berthd'].map((a) => join(pkg, '..', a, 'dist', `${a}.cjs`));
  let checked = 0;
  for (const file of apps) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    checked++;
    assert.doesNotMatch(text, /\bimport\(\s*["'](node:)?[a-z_/0-9]+["']\s*\)/, `${file} keeps an import() of a built-in`);
  }
  if (checked === 0) t.skip('no app is bundled (node tools/bundle/bundle.mjs apps/berth apps/berth-runtime apps/berthd)');
});
