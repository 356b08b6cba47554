// Bundles the compiled CLI (dist/src/main.js and what it imports, @berth/* included) into one
// CommonJS function, dist/berth.cjs, and a V8 code cache for it, dist/berth.cjs.cache; bin/berth
// compiles the bundle with that cache (vm.Script cachedData). One file, mostly precompiled,
// instead of ~25 ES modules to resolve, read and compile: ~8 ms off every start here.
//
// dist/berth.cjs is `(function (exports, require, module, __filename, __dirname) {...})`, the
// exact text the cache was made from (V8 checks only the length of the source against a cache).
// Command modules stay lazy (esbuild wraps the dynamically imported ones in init functions);
// the cache is made with eager compilation so it holds every function, whatever the command.
//
// dist/berth.inputs.json records every input file's mtime, the bundle's mtime and the node
// version that made the cache. bin/berth runs the bundle only while every input still has its
// recorded mtime, so a `tsc -b` without a re-bundle never runs stale code (it falls back to
// dist/src/main.js); the cache is used only under the same node version.
//
//   node apps/berth/scripts/bundle.mjs      (npm run bundle -w @berth/berth)
import { build } from 'esbuild';
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(pkg, 'dist');
const out = join(dist, 'berth.cjs');
const cacheOut = join(dist, 'berth.cjs.cache');
const man = join(dist, 'berth.inputs.json');
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
  banner: { js: '(function (exports, require, module, __filename, __dirname) {' },
  footer: { js: '})' },
});

// every function compiled now (--no-lazy), the flag restored before the cache is serialised
// (V8 rejects a cache made under other flags)
const source = readFileSync(tmp, 'utf8');
setFlagsFromString('--no-lazy');
let script;
try {
  script = new Script(source, { filename: out });
} finally {
  setFlagsFromString('--lazy');
}
writeFileSync(`${cacheOut}.${process.pid}.tmp`, script.createCachedData());

const cwd = process.cwd();
const inputs = Object.keys(result.metafile.inputs).map((p) => resolve(cwd, p));
// no manifest while the files are replaced (bin/berth then runs dist/src), the new one after
rmSync(man, { force: true });
renameSync(tmp, out);
renameSync(`${cacheOut}.${process.pid}.tmp`, cacheOut);
const manifest = {
  node: process.version,
  bundle: statSync(out).mtimeMs,
  inputs: inputs.map((abs) => [relative(dist, abs), statSync(abs).mtimeMs]),
};
writeFileSync(`${man}.${process.pid}.tmp`, JSON.stringify(manifest));
renameSync(`${man}.${process.pid}.tmp`, man);
