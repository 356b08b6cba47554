// What every bundled app's launcher (apps/<app>/bin/<bin>) does; CommonJS so it loads the bundle
// synchronously, without the ES module loader.
//
// It runs dist/<bin>.cjs (tools/bundle/bundle.mjs: the whole app as one function, compiled with
// the V8 code cache dist/<bin>.cjs.cache) while the bundle and every input of it still have the
// mtimes dist/<bin>.inputs.json recorded; otherwise (not bundled, or tsc -b rebuilt something
// since) it imports dist/src/main.js, so it never runs older code than dist/src.
// BERTH_NO_BUNDLE=1 forces dist/src.
//
// The app's main module exports `main(argv): Promise<number>` and `exit(code)`.
'use strict';
const fs = require('node:fs');

/** The bundle's exports, or undefined when it is missing or stale. */
function loadBundle(dist, name) {
  if (process.env.BERTH_NO_BUNDLE === '1') return undefined;
  const file = `${dist}/${name}.cjs`;
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(`${dist}/${name}.inputs.json`, 'utf8'));
    if (fs.statSync(file).mtimeMs !== manifest.bundle) return undefined;
    for (const [rel, mtime] of manifest.inputs) if (fs.statSync(`${dist}/${rel}`).mtimeMs !== mtime) return undefined;
  } catch {
    return undefined;
  }
  let cachedData;
  if (manifest.node === process.version) {
    try {
      cachedData = fs.readFileSync(`${file}.cache`);
    } catch {
      /* compiled without it */
    }
  }
  const { Script } = require('node:vm');
  const script = new Script(fs.readFileSync(file, 'utf8'), { filename: file, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, require, module, file, dist);
  return module.exports;
}

function start(m) {
  m.main(process.argv.slice(2)).then(
    (code) => m.exit(code),
    (err) => {
      process.stderr.write(`Error: ${err && err.message ? err.message : String(err)}\n`);
      m.exit(1);
    },
  );
}

/** Runs the app whose launcher sits in `binDir` (the app's bin/) and is named `name`. */
module.exports = function launch(binDir, name) {
  const dist = `${binDir}/../dist`;
  const bundle = loadBundle(dist, name);
  if (bundle) return start(bundle);
  import(`${dist}/src/main.js`).then(start, (err) => {
    process.stderr.write(`${name}: cannot load it (is it built? npx tsc -b ${binDir}/..): ${err.message}\n`);
    process.exit(1);
  });
};
