// Bundles a compiled CLI app (its dist/src/main.js and what that imports, @berth/* included) into
// one CommonJS function, dist/<bin>.cjs, plus a V8 code cache for it, dist/<bin>.cjs.cache, where
// <bin> is the app directory's name, also its launcher's. The app's launcher (bin/<bin>, through
// tools/bundle/launch.cjs) compiles the bundle with that cache (vm.Script cachedData): one file,
// mostly precompiled, instead of dozens of ES modules to resolve, read and compile.
//
// dist/<bin>.cjs is `(function (exports, require, module, __filename, __dirname) {...})`, the
// exact text the cache was made from (V8 checks only the length of the source against a cache).
// Dynamically imported modules stay lazy (esbuild wraps them in init functions); the cache is
// made with eager compilation so it holds every function, whatever the command.
//
// `import.meta.url` has no CommonJS equivalent: each module's use of it becomes the file URL of
// that module's compiled file, computed at run time from the bundle's directory (so a moved tree
// still finds libs/native/build/...). Any other `import.meta` use fails the bundle.
//
// dist/<bin>.inputs.json records every input file's mtime, the bundle's mtime and the node version
// that made the cache. The launcher runs the bundle only while every input still has its recorded
// mtime, so a `tsc -b` without a re-bundle never runs stale code (it falls back to
// dist/src/main.js); the cache is used only under the same node version.
//
// An app's package.json may tune its bundle with a "bundle" object (berthd does; a long-running
// daemon trades start time for memory):
//   "codeCache": false       no dist/<bin>.cjs.cache: functions compile lazily, on first call,
//                            instead of all of them being deserialised at start.
//   "minify": true           whitespace and syntax minified, comments dropped (names kept): the
//                            source V8 keeps for lazy compilation is about half the size.
//   "external": ["light-my-request", ...]
//                            packages left out of the bundle, required from node_modules when
//                            (if ever) used: code reachable only on paths the app never takes
//                            (fastify's inject and schema compilers for berthd) would otherwise
//                            sit in the source V8 keeps. Requires then resolve from dist/src/.
//   "lazyBuiltins": ["node:http2", ...]
//                            node built-ins required or imported at start only to be used on
//                            rare paths (fastify requires http2 and https for servers berthd
//                            never makes): the module gets an object that loads the built-in on
//                            first property access.
//
//   node tools/bundle/bundle.mjs apps/berth apps/berth-runtime
import { build } from 'esbuild';
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';

/** The helper every rewritten `import.meta.url` calls: a path relative to the bundle's directory. */
const urlHelper = '__bundleFileUrl';

/**
 * A require or import of one of the built-ins `names`: an object that loads the built-in on first
 * use. Its key list is the built-in's, taken here (same node major as the launcher's), so that
 * esbuild's namespace copy (`import * as https`) makes getters instead of loading it.
 */
function lazyBuiltinsPlugin(names) {
  const wanted = new Set(names.flatMap((n) => [n, n.replace(/^node:/, '')]));
  const req = createRequire(import.meta.url);
  return {
    name: 'lazy-builtins',
    setup(b) {
      b.onResolve({ filter: /^(node:)?[a-z_/0-9]+$/ }, (args) => {
        if ((args.kind !== 'require-call' && args.kind !== 'import-statement') || !wanted.has(args.path)) return undefined;
        return { path: args.path.startsWith('node:') ? args.path : `node:${args.path}`, namespace: 'lazy-builtin' };
      });
      b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
        loader: 'js',
        contents:
          `let m; const load = () => (m ??= __nodeRequire(${JSON.stringify(args.path)}));\n` +
          `const keys = ${JSON.stringify(Object.getOwnPropertyNames(req(args.path)))};\n` +
          'module.exports = new Proxy({}, {\n' +
          '  get: (_, k) => load()[k],\n' +
          '  has: (_, k) => k in load(),\n' +
          '  ownKeys: () => (m ? Reflect.ownKeys(m) : keys),\n' +
          '  getOwnPropertyDescriptor: (_, k) => {\n' +
          '    if (!m && typeof k === "string" && keys.includes(k)) return { get: () => load()[k], enumerable: true, configurable: true };\n' +
          '    const d = Reflect.getOwnPropertyDescriptor(load(), k);\n' +
          '    if (d) d.configurable = true;\n' +
          '    return d;\n' +
          '  },\n' +
          '});\n',
      }));
    },
  };
}

/**
 * `import('node:x')` of a built-in as a require inside the bundle: the launcher runs the bundle as
 * a vm.Script, which has no dynamic-import callback ("A dynamic import callback was not
 * specified"), so an import() left in it fails at run time (the aufs driver loads
 * node:fs/promises that way).
 */
const dynamicBuiltins = {
  name: 'dynamic-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_/0-9]+$/ }, (args) => {
      if (args.kind !== 'dynamic-import' || !isBuiltin(args.path)) return undefined;
      return { path: args.path.startsWith('node:') ? args.path : `node:${args.path}`, namespace: 'dynamic-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'dynamic-builtin' }, (args) => ({ loader: 'js', contents: `module.exports = require(${JSON.stringify(args.path)});\n` }));
  },
};

/** The app's "bundle" options (package.json), defaults for an app without them. */
function bundleOptions(pkgDir) {
  const o = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).bundle ?? {};
  return { codeCache: o.codeCache !== false, lazyBuiltins: o.lazyBuiltins ?? [], minify: o.minify === true, external: o.external ?? [] };
}

/** Bundles one app directory's dist/src/main.js into dist/<name>.cjs; returns that path. */
export async function bundleApp(appDir, name = basename(resolve(appDir))) {
  const pkg = resolve(appDir);
  const opts = bundleOptions(pkg);
  const dist = join(pkg, 'dist');
  const out = join(dist, `${name}.cjs`);
  const cacheOut = `${out}.cache`;
  const man = join(dist, `${name}.inputs.json`);
  const tmp = `${out}.${process.pid}.tmp`;

  const importMetaUrl = {
    name: 'import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta')) return undefined;
        const rel = JSON.stringify(relative(dist, args.path));
        return { contents: text.replaceAll('import.meta.url', `${urlHelper}(${rel})`), loader: 'js' };
      });
    },
  };
  const result = await build({
    entryPoints: [join(dist, 'src', 'main.js')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: tmp,
    metafile: true,
    logLevel: 'silent',
    legalComments: 'none',
    // identifiers stay (stack traces keep function names)
    ...(opts.minify ? { minifyWhitespace: true, minifySyntax: true } : {}),
    external: opts.external,
    plugins: [importMetaUrl, dynamicBuiltins, ...(opts.lazyBuiltins.length > 0 ? [lazyBuiltinsPlugin(opts.lazyBuiltins)] : [])],
    banner: {
      js:
        '(function (exports, require, module, __filename, __dirname) {\n' +
        `const ${urlHelper} = (rel) => require('node:url').pathToFileURL(require('node:path').join(__dirname, rel)).href;` +
        (opts.lazyBuiltins.length > 0 ? '\nconst __nodeRequire = require;' : '') +
        // the launcher's require resolves from tools/bundle/; externals are the app's
        (opts.external.length > 0 ? "\nrequire = require('node:module').createRequire(require('node:path').join(__dirname, 'src', 'main.js'));" : ''),
    },
    footer: { js: '})' },
  });
  for (const w of result.warnings) {
    const where = w.location ? `${w.location.file}:${w.location.line}: ` : '';
    // an import.meta left over would be `{}` at run time: refuse rather than run it
    if (w.text.includes('import.meta')) {
      rmSync(tmp, { force: true });
      throw new Error(`${where}${w.text}`);
    }
    process.stderr.write(`bundle ${name}: warning: ${where}${w.text}\n`);
  }

  // every function compiled now (--no-lazy), the flag restored before the cache is serialised
  // (V8 rejects a cache made under other flags)
  if (opts.codeCache) {
    const source = readFileSync(tmp, 'utf8');
    setFlagsFromString('--no-lazy');
    let script;
    try {
      script = new Script(source, { filename: out });
    } finally {
      setFlagsFromString('--lazy');
    }
    writeFileSync(`${cacheOut}.${process.pid}.tmp`, script.createCachedData());
  }

  const cwd = process.cwd();
  // (lazy-builtin:node:http2 and the like are made here, not read)
  const inputs = Object.keys(result.metafile.inputs)
    .filter((p) => !p.startsWith('lazy-builtin:') && !p.startsWith('dynamic-builtin:'))
    .map((p) => resolve(cwd, p));
  // no manifest while the files are replaced (the launcher then runs dist/src), the new one after
  rmSync(man, { force: true });
  renameSync(tmp, out);
  if (opts.codeCache) renameSync(`${cacheOut}.${process.pid}.tmp`, cacheOut);
  else rmSync(cacheOut, { force: true });
  const manifest = {
    node: process.version,
    bundle: statSync(out).mtimeMs,
    inputs: inputs.map((abs) => [relative(dist, abs), statSync(abs).mtimeMs]),
  };
  writeFileSync(`${man}.${process.pid}.tmp`, JSON.stringify(manifest));
  renameSync(`${man}.${process.pid}.tmp`, man);
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const apps = process.argv.slice(2);
  if (apps.length === 0) {
    process.stderr.write(`usage: node ${relative(process.cwd(), fileURLToPath(import.meta.url))} APP_DIR...\n`);
    process.exit(2);
  }
  for (const app of apps) await bundleApp(app);
}
