/**
 * bin/berth runs dist/berth.cjs only while every input recorded in dist/berth.inputs.json still
 * has its recorded mtime (and the node version matches); otherwise dist/src/main.js. Checked on a
 * copy of the launcher in a scratch tree with stand-in modules, so the real dist is not touched.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const root = mkdtempSync(join(tmpdir(), `berth-launcher-${process.pid}-`));
after(() => rmSync(root, { recursive: true, force: true }));

function tree(): { run: (env?: Record<string, string>) => string; input: string; manifest: (node?: string) => void } {
  const dir = mkdtempSync(join(root, 't-'));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'dist', 'src'), { recursive: true });
  copyFileSync(join(pkg, 'bin', 'berth'), join(dir, 'bin', 'berth'));
  copyFileSync(join(pkg, 'bin', 'package.json'), join(dir, 'bin', 'package.json'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  const mod = (what: string): string =>
    `main: async (argv) => { process.stdout.write('${what} ' + argv.join(' ')); return 3; }, exit: (c) => process.exit(c)`;
  writeFileSync(join(dir, 'dist', 'berth.cjs'), `module.exports = { ${mod('bundle')} };`);
  writeFileSync(join(dir, 'dist', 'src', 'main.js'), `const m = { ${mod('dist-src')} }; export const main = m.main, exit = m.exit;`);
  const input = join(dir, 'dist', 'src', 'main.js');
  const manifest = (node = process.version): void =>
    writeFileSync(join(dir, 'dist', 'berth.inputs.json'), JSON.stringify({ node, inputs: [['src/main.js', statSync(input).mtimeMs]] }));
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
  return { run, input, manifest };
}

test('the bundle runs while its inputs are unchanged', () => {
  const t = tree();
  t.manifest();
  assert.equal(t.run(), 'bundle ps -a');
  assert.equal(t.run({ BERTH_NO_BUNDLE: '1' }), 'dist-src ps -a');
});

test('dist/src runs when an input changed since the bundle, or there is no manifest, or another node built it', () => {
  const t = tree();
  assert.equal(t.run(), 'dist-src ps -a', 'no manifest');
  t.manifest();
  const later = new Date(Date.now() + 5000);
  utimesSync(t.input, later, later);
  assert.equal(t.run(), 'dist-src ps -a', 'a newer input');
  t.manifest('v0.0.1');
  assert.equal(t.run(), 'dist-src ps -a', 'another node version');
  t.manifest();
  assert.equal(t.run(), 'bundle ps -a');
});
