#!/usr/bin/env node
// What of the workspace build is missing or out of date. Plain Node, no dependencies: it runs
// before `npm ci`. Used by tools/test/run-all.sh (to decide whether to call tools/setup.sh)
// and by tools/setup.sh (to make each step idempotent).
//
//   node tools/test/build-state.mjs needs-setup   reasons, one a line; exit 0 nothing to do, 10 setup needed
//   node tools/test/build-state.mjs node-modules  exit 0 up to date, 1 missing or stale (reason on stdout)
//   node tools/test/build-state.mjs native        one line: "ok", "missing", "stale: FILE", or "unbuildable: FILE..."
//   node tools/test/build-state.mjs ts            "ok" or "missing: DIR..."
//   node tools/test/build-state.mjs lock-drift    package.json fields package-lock.json does not match, one a line

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const sameSet = (a, b) => JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b ?? {}).sort());
const DEP_FIELDS = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies'];

/**
 * Whether node_modules matches package-lock.json: what `npm ci` would change. npm keeps a copy
 * of what it installed in node_modules/.package-lock.json; entries only differ for optional
 * packages of other platforms, which are not installed.
 */
export function nodeModulesState(root) {
  const lockFile = path.join(root, 'package-lock.json');
  const hiddenFile = path.join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(path.join(root, 'node_modules'))) return { ok: false, reason: 'node_modules is missing' };
  if (!existsSync(lockFile)) return { ok: false, reason: 'package-lock.json is missing' };
  if (!existsSync(hiddenFile)) return { ok: false, reason: 'node_modules/.package-lock.json is missing (node_modules was not installed by npm)' };
  const lock = readJson(lockFile);
  const hidden = readJson(hiddenFile);
  for (const [key, entry] of Object.entries(lock.packages ?? {})) {
    if (key === '') continue;
    const got = hidden.packages?.[key];
    if (!got) {
      if (entry.optional) continue;
      return { ok: false, reason: `${key} is in package-lock.json but not installed` };
    }
    if (got.version !== entry.version || got.resolved !== entry.resolved || Boolean(got.link) !== Boolean(entry.link)) {
      return { ok: false, reason: `${key} is installed at another version than package-lock.json says` };
    }
    if (key.startsWith('node_modules/') && !existsSync(path.join(root, key))) {
      return { ok: false, reason: `${key} is missing` };
    }
  }
  for (const key of Object.keys(hidden.packages ?? {})) {
    if (!(key in (lock.packages ?? {}))) return { ok: false, reason: `${key} is installed but not in package-lock.json` };
  }
  return { ok: true };
}

/**
 * Where a package.json says something package-lock.json does not (someone edited it without
 * running npm install). `npm ci` installs from the lock, so it cannot fix this; it is only
 * worth a warning, or npm ci's own error when a dependency is missing from the lock.
 */
export function lockDrift(root) {
  const lockFile = path.join(root, 'package-lock.json');
  if (!existsSync(lockFile)) return [];
  const lock = readJson(lockFile);
  const rootPkg = readJson(path.join(root, 'package.json'));
  const drift = [];
  if (JSON.stringify(lock.packages?.['']?.workspaces ?? []) !== JSON.stringify(rootPkg.workspaces ?? [])) {
    drift.push('package.json workspaces');
  }
  const workspaceDirs = Object.keys(lock.packages ?? {}).filter((k) => k !== '' && !k.includes('node_modules/'));
  for (const dir of ['', ...workspaceDirs]) {
    const pjFile = path.join(root, dir, 'package.json');
    if (!existsSync(pjFile)) {
      drift.push(`${path.join(dir, 'package.json')} (missing)`);
      continue;
    }
    const pj = readJson(pjFile);
    for (const field of DEP_FIELDS) {
      if (!sameSet(pj[field], lock.packages[dir]?.[field])) drift.push(`${path.join(dir, 'package.json')} ${field}`);
    }
  }
  return drift;
}

/** Parse a gyp file: JSON, or a Python literal (comments, single quotes, trailing commas). */
export function parseGyp(file) {
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch {
    const py = spawnSync('python3', ['-c', 'import ast,json,sys; print(json.dumps(ast.literal_eval(open(sys.argv[1]).read())))', file], { encoding: 'utf8' });
    if (py.status !== 0) throw new Error(`cannot parse ${file}: ${py.stderr || py.error?.message}`);
    return JSON.parse(py.stdout);
  }
}

function newestFile(dir, skip) {
  let newest = { mtime: 0, file: '' };
  if (!existsSync(dir)) return newest;
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) {
      const n = newestFile(p, skip);
      if (n.mtime > newest.mtime) newest = n;
    } else if (!skip(p)) {
      const m = statSync(p).mtimeMs;
      if (m > newest.mtime) newest = { mtime: m, file: p };
    }
  }
  return newest;
}

/**
 * The native build of libs/native (node-gyp): "unbuildable" while a source named in
 * binding.gyp does not exist yet, "missing" when a target's output is absent, "stale" when a
 * C/C++ source or binding.gyp is newer than an output.
 */
export function nativeState(root) {
  const dir = path.join(root, 'libs', 'native');
  const gyp = path.join(dir, 'binding.gyp');
  if (!existsSync(gyp)) return { state: 'unbuildable', missing: ['libs/native/binding.gyp'] };
  const targets = parseGyp(gyp).targets ?? [];
  const missing = [];
  const outputs = [];
  for (const t of targets) {
    for (const s of t.sources ?? []) if (!existsSync(path.join(dir, s))) missing.push(`libs/native/${s}`);
    const type = t.type ?? 'loadable_module';
    if (type === 'executable') outputs.push(path.join(dir, 'build', 'Release', t.target_name));
    else if (type === 'loadable_module' || type === 'shared_library') outputs.push(path.join(dir, 'build', 'Release', `${t.target_name}.node`));
  }
  if (missing.length) return { state: 'unbuildable', missing };
  const absent = outputs.filter((o) => !existsSync(o));
  if (absent.length) return { state: 'missing', outputs: absent.map((o) => path.relative(root, o)) };
  const oldest = Math.min(...outputs.map((o) => statSync(o).mtimeMs));
  const newest = newestFile(path.join(dir, 'src'), (p) => !/\.(c|cc|cpp|h|hh|hpp)$/.test(p));
  const gypTime = statSync(gyp).mtimeMs;
  if (gypTime > oldest) return { state: 'stale', file: 'libs/native/binding.gyp' };
  if (newest.mtime > oldest) return { state: 'stale', file: path.relative(root, newest.file) };
  return { state: 'ok' };
}

/** Packages named in the root tsconfig.json references that have no build output yet. */
export function tsState(root) {
  const tsconfig = readJson(path.join(root, 'tsconfig.json'));
  const missing = [];
  for (const ref of tsconfig.references ?? []) {
    const dir = path.join(root, ref.path);
    if (!existsSync(path.join(dir, 'dist'))) missing.push(ref.path);
  }
  return missing.length ? { state: 'missing', missing } : { state: 'ok' };
}

/** Why tools/setup.sh has to run before the tests; empty when the build is in place. */
export function setupReasons(root) {
  const reasons = [];
  const nm = nodeModulesState(root);
  if (!nm.ok) reasons.push(nm.reason);
  const native = nativeState(root);
  if (native.state === 'missing') reasons.push(`native build missing: ${native.outputs.join(', ')}`);
  const ts = tsState(root);
  if (ts.state === 'missing') reasons.push(`TypeScript build missing: ${ts.missing.join(', ')}`);
  return reasons;
}

function main(argv) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  switch (argv[0]) {
    case 'needs-setup': {
      const reasons = setupReasons(root);
      for (const r of reasons) process.stdout.write(`${r}\n`);
      return reasons.length ? 10 : 0;
    }
    case 'node-modules': {
      const s = nodeModulesState(root);
      if (!s.ok) process.stdout.write(`${s.reason}\n`);
      return s.ok ? 0 : 1;
    }
    case 'native': {
      const s = nativeState(root);
      const detail = s.missing ?? s.outputs ?? (s.file ? [s.file] : []);
      process.stdout.write(`${s.state}${detail.length ? `: ${detail.join(' ')}` : ''}\n`);
      return 0;
    }
    case 'ts': {
      const s = tsState(root);
      process.stdout.write(`${s.state}${s.missing ? `: ${s.missing.join(' ')}` : ''}\n`);
      return 0;
    }
    case 'lock-drift':
      for (const d of lockDrift(root)) process.stdout.write(`${d}\n`);
      return 0;
    default:
      process.stderr.write('usage: node tools/test/build-state.mjs needs-setup|node-modules|native|ts|lock-drift\n');
      return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
