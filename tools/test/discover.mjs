#!/usr/bin/env node
// Lists the test files of the workspace, one a line, for `node --test` (Node 20 takes no
// globs): every dist/**/*.test.js of each workspace package whose TypeScript source still
// exists (tsc -b never deletes the output of a removed source), then tools/**/*.test.mjs.
//
//   node tools/test/discover.mjs [FILTER...]   keep files whose repo-relative path contains a FILTER

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SKIPPED_DIRS = new Set(['node_modules', '.git', '.nx']);

function walk(dir, keep, out) {
  if (!existsSync(dir)) return out;
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    if (SKIPPED_DIRS.has(ent.name)) continue;
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) walk(p, keep, out);
    else if (ent.isFile() && keep(p)) out.push(p);
  }
  return out;
}

function workspaceDirs(root) {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const patterns = Array.isArray(pkg.workspaces) ? pkg.workspaces : pkg.workspaces?.packages ?? [];
  const dirs = [];
  for (const pattern of patterns) {
    if (!pattern.includes('*')) {
      dirs.push(path.join(root, pattern));
      continue;
    }
    // "plugins/*": one level of expansion is all the workspace uses
    const base = path.join(root, pattern.slice(0, pattern.indexOf('*')).replace(/\/$/, ''));
    if (!existsSync(base)) continue;
    for (const ent of readdirSync(base, { withFileTypes: true })) if (ent.isDirectory()) dirs.push(path.join(base, ent.name));
  }
  return dirs;
}

/** The TypeScript source a compiled test was emitted from (outDir dist, rootDir the package). */
function sourceOf(pkgDir, compiled) {
  const rel = path.relative(path.join(pkgDir, 'dist'), compiled);
  const stem = rel.replace(/\.(m|c)?js$/, '');
  const ext = { '.js': ['.ts', '.tsx'], '.mjs': ['.mts'], '.cjs': ['.cts'] }[path.extname(rel)] ?? [];
  return ext.map((e) => path.join(pkgDir, stem + e)).find((p) => existsSync(p));
}

/** { files, orphans }: absolute paths, sorted; orphans are compiled tests without a source. */
export function discover(root, filters = []) {
  const files = [];
  const orphans = [];
  for (const dir of workspaceDirs(root)) {
    for (const f of walk(path.join(dir, 'dist'), (p) => /\.test\.(m|c)?js$/.test(p), [])) {
      if (sourceOf(dir, f)) files.push(f);
      else orphans.push(f);
    }
  }
  const inWorkspaceDist = (p) => workspaceDirs(root).some((d) => p.startsWith(path.join(d, 'dist') + path.sep));
  for (const f of walk(path.join(root, 'tools'), (p) => p.endsWith('.test.mjs'), [])) {
    if (!inWorkspaceDist(f)) files.push(f);
  }
  const keep = (f) => filters.length === 0 || filters.some((s) => path.relative(root, f).includes(s));
  const sort = (a) => [...new Set(a)].sort();
  return { files: sort(files.filter(keep)), orphans: sort(orphans.filter(keep)) };
}

function main(argv) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const { files, orphans } = discover(root, argv);
  for (const o of orphans) process.stderr.write(`not running ${path.relative(root, o)}: its source was removed (stale build output)\n`);
  for (const f of files) process.stdout.write(`${path.relative(root, f)}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
