// Bundles the compiled CLI (dist/src/main.js and what it imports, @berth/* included) into one
// CommonJS file, dist/berth.cjs, which bin/berth runs: one file to read and compile instead of
// ~25 ES modules, a few ms off every start. Command modules stay lazy (esbuild wraps the
// dynamically imported ones in init functions). dist/berth.inputs.json lists every input file
// with its mtime; bin/berth runs the bundle only while all of them are unchanged, so a `tsc -b`
// without a re-bundle never runs stale code (it falls back to dist/src/main.js).
//
//   node apps/berth/scripts/bundle.mjs      (npm run bundle -w @berth/berth)
import { build } from 'esbuild';
import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(pkg, 'dist');
const out = join(dist, 'berth.cjs');
const tmp = `${out}.${process.pid}.tmp`;

const result = await build({
  entryPoints: [join(dist, 'src', 'main.js')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: tmp,
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});
const cwd = process.cwd();
const inputs = Object.keys(result.metafile.inputs).map((p) => resolve(cwd, p));
const manifest = {
  node: process.version,
  inputs: inputs.map((abs) => [relative(dist, abs), statSync(abs).mtimeMs]),
};
// no manifest while the bundle is replaced (bin/berth then runs dist/src), the new one after it
const man = join(dist, 'berth.inputs.json');
rmSync(man, { force: true });
renameSync(tmp, out);
writeFileSync(`${man}.tmp`, JSON.stringify(manifest));
renameSync(`${man}.tmp`, man);
