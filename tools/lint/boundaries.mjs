#!/usr/bin/env node
// Module-boundary check for the Berth workspace. Plain Node, no dependencies.
//
// For every workspace package (root package.json "workspaces") it reads src/**/*.ts and
// test/**/*.ts and reports, one line each as `file:line: message`:
//   - a deep import into another package (a subpath its package.json "exports" does not list),
//   - a relative import that leaves the importing package's root,
//   - an import of a @berth/* package the importer's package.json does not depend on,
//   - an arrow that points the wrong way by the packages' Nx "type:" tags,
//   - an import cycle between packages.
// Test code (files under <pkg>/test/ and *.test.ts / *.spec.ts) may in addition import
// type:testkit packages, so a driver's contract test can run its kind's suite, and an
// adapter's tests other adapters.
//
// Usage: node tools/lint/boundaries.mjs [--root DIR]   exit 0 clean, 1 violations, 2 usage.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Which package types a package of each type may import (its own type included only if listed). */
export const allowedImports = Object.freeze({
  // An app's builtins.ts is the explicit list of the built-in plugins it binds.
  app: ['core', 'domain', 'adapter', 'plugin', 'contract', 'errors', 'log'],
  core: ['domain', 'adapter', 'contract', 'errors', 'log'],
  domain: ['domain', 'adapter', 'contract', 'errors', 'log'],
  adapter: ['contract', 'errors', 'log'],
  plugin: ['contract', 'adapter', 'errors', 'log'],
  contract: ['errors'],
  errors: [],
  log: [],
  testkit: ['core', 'domain', 'adapter', 'plugin', 'contract', 'errors', 'log', 'testkit', 'test', 'tool'],
  // Tests drive apps through their binaries, not imports.
  test: ['core', 'domain', 'adapter', 'plugin', 'contract', 'errors', 'log', 'testkit', 'test', 'tool'],
  tool: ['errors', 'log', 'contract'],
});

const SOURCE_EXT = /\.(ts|mts|cts|tsx)$/;
const SCANNED_DIRS = ['src', 'test'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'build']);

/**
 * Blank out comments (in `noComments`) and comments plus the contents of string, template and
 * regex literals (in `code`), keeping every offset and newline, so import patterns can be
 * matched on `noComments` and confirmed to start in real code via `code`.
 */
export function maskSource(src) {
  const noComments = src.split('');
  const code = src.split('');
  const blank = (arr, from, to) => {
    for (let k = from; k < to; k++) if (arr[k] !== '\n') arr[k] = ' ';
  };
  const templateDepth = []; // one entry per open `${`: the brace depth inside it
  let lastSignificant = ''; // last non-space code token char, to tell a regex from a division
  let lastWord = '';
  const regexAfterWord = new Set(['return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'new', 'delete', 'void', 'throw', 'yield', 'await', 'instanceof']);
  let i = 0;
  const n = src.length;

  const scanTemplate = (start) => {
    // start is just after a backtick or a closing `}` of a substitution
    let j = start;
    while (j < n) {
      const c = src[j];
      if (c === '\\') { j += 2; continue; }
      if (c === '`') { blank(code, start, j); return { end: j + 1, open: false }; }
      if (c === '$' && src[j + 1] === '{') { blank(code, start, j); return { end: j + 2, open: true }; }
      j++;
    }
    blank(code, start, n);
    return { end: n, open: false };
  };

  while (i < n) {
    const c = src[i];
    const d = src[i + 1];
    if (c === '/' && d === '/') {
      let j = src.indexOf('\n', i);
      if (j === -1) j = n;
      blank(noComments, i, j); blank(code, i, j);
      i = j;
      continue;
    }
    if (c === '/' && d === '*') {
      let j = src.indexOf('*/', i + 2);
      j = j === -1 ? n : j + 2;
      blank(noComments, i, j); blank(code, i, j);
      i = j;
      continue;
    }
    if (c === '\'' || c === '"') {
      let j = i + 1;
      while (j < n && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      blank(code, i + 1, Math.min(j, n));
      i = j + 1;
      lastSignificant = c; lastWord = '';
      continue;
    }
    if (c === '`') {
      const r = scanTemplate(i + 1);
      if (r.open) templateDepth.push(0);
      i = r.end;
      lastSignificant = r.open ? '{' : '`'; lastWord = '';
      continue;
    }
    if (c === '{' && templateDepth.length) templateDepth[templateDepth.length - 1]++;
    if (c === '}' && templateDepth.length) {
      if (templateDepth[templateDepth.length - 1] === 0) {
        templateDepth.pop();
        const r = scanTemplate(i + 1);
        if (r.open) templateDepth.push(0);
        i = r.end;
        lastSignificant = r.open ? '{' : '`'; lastWord = '';
        continue;
      }
      templateDepth[templateDepth.length - 1]--;
    }
    if (c === '/') {
      const regexAllowed = lastSignificant === '' || '(,=:[!&|?{};+-*%<>~^'.includes(lastSignificant) || regexAfterWord.has(lastWord);
      if (regexAllowed) {
        let j = i + 1;
        let inClass = false;
        while (j < n && src[j] !== '\n') {
          const e = src[j];
          if (e === '\\') { j += 2; continue; }
          if (e === '[') inClass = true;
          else if (e === ']') inClass = false;
          else if (e === '/' && !inClass) break;
          j++;
        }
        blank(code, i + 1, Math.min(j, n));
        i = j + 1;
        while (i < n && /[a-z]/i.test(src[i])) i++;
        // a regex literal ends an expression, so a following `/` is a division
        lastSignificant = ')'; lastWord = '';
        continue;
      }
    }
    if (/[A-Za-z_$]/.test(c)) {
      let j = i;
      while (j < n && /[\w$]/.test(src[j])) j++;
      lastWord = src.slice(i, j);
      lastSignificant = 'a';
      i = j;
      continue;
    }
    if (!/\s/.test(c)) { lastSignificant = c; lastWord = ''; }
    i++;
  }
  return { noComments: noComments.join(''), code: code.join('') };
}

const IMPORT_PATTERNS = [
  // import x from '…', import { a } from '…', import type …, export { a } from '…', export * from '…'
  /(?<![\w$.])(?:import|export)\b[^;'"`]*?\bfrom\s*(['"])([^'"\n]*)\1/g,
  // import '…'
  /(?<![\w$.])import\s*(['"])([^'"\n]*)\1/g,
  // import('…'), also in type positions: import('…').T
  /(?<![\w$.])import\s*\(\s*(['"])([^'"\n]*)\1/g,
  // require('…'), import x = require('…')
  /(?<![\w$.])require\s*\(\s*(['"])([^'"\n]*)\1/g,
];

/** Every module specifier a TypeScript source imports, with its 1-based line. */
export function findImports(src) {
  const { noComments, code } = maskSource(src);
  const lineStarts = [0];
  for (let k = 0; k < src.length; k++) if (src[k] === '\n') lineStarts.push(k + 1);
  const lineOf = (offset) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid; else hi = mid - 1;
    }
    return lo + 1;
  };
  const seen = new Map();
  for (const pattern of IMPORT_PATTERNS) {
    pattern.lastIndex = 0;
    let m;
    while ((m = pattern.exec(noComments)) !== null) {
      // the keyword must be real code, not text inside a string or template
      if (code[m.index] === ' ') continue;
      const specOffset = m.index + m[0].lastIndexOf(m[1] + m[2] + m[1]) + 1;
      if (!seen.has(specOffset)) seen.set(specOffset, { specifier: m[2], line: lineOf(specOffset) });
    }
  }
  return [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

function expandWorkspace(root, pattern) {
  const parts = pattern.replace(/\/+$/, '').split('/');
  let dirs = [''];
  for (const part of parts) {
    const next = [];
    for (const base of dirs) {
      if (!part.includes('*')) {
        next.push(base ? `${base}/${part}` : part);
        continue;
      }
      const re = new RegExp(`^${part.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
      const abs = path.join(root, base);
      if (!existsSync(abs)) continue;
      for (const ent of readdirSync(abs, { withFileTypes: true })) {
        if (ent.isDirectory() && re.test(ent.name)) next.push(base ? `${base}/${ent.name}` : ent.name);
      }
    }
    dirs = next;
  }
  return dirs.sort();
}

function listSources(dir, out) {
  if (!existsSync(dir)) return out;
  for (const ent of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (ent.name.startsWith('.')) continue;
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) {
      if (!SKIPPED_DIRS.has(ent.name)) listSources(p, out);
    } else if (SOURCE_EXT.test(ent.name) && statSync(p).isFile()) {
      out.push(p);
    }
  }
  return out;
}

/** The subpaths ('.', './testing', './x/*') a package.json "exports" field offers. */
export function exportedSubpaths(exportsField) {
  if (exportsField === undefined || exportsField === null) return [];
  if (typeof exportsField === 'string' || Array.isArray(exportsField)) return ['.'];
  const keys = Object.keys(exportsField);
  // an object of conditions ({ "types": …, "default": … }) is the "." entry
  if (keys.length && keys.every((k) => !k.startsWith('.'))) return ['.'];
  return keys.filter((k) => k.startsWith('.'));
}

function subpathAllowed(subpath, exported) {
  for (const key of exported) {
    if (key === subpath) return true;
    const star = key.indexOf('*');
    if (star !== -1) {
      const prefix = key.slice(0, star);
      const suffix = key.slice(star + 1);
      if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= prefix.length + suffix.length) return true;
    }
  }
  return false;
}

function isTestFile(pkgDir, file) {
  const rel = path.relative(pkgDir, file).split(path.sep);
  return rel[0] === 'test' || /\.(test|spec)\.(ts|mts|cts|tsx)$/.test(file);
}

/**
 * Check the workspace at `root`. Returns the violations ({ file, line, message }, file relative
 * to root, sorted) and what was scanned.
 */
export function checkBoundaries(root) {
  root = path.resolve(root);
  const violations = [];
  const rel = (p) => path.relative(root, p).split(path.sep).join('/');
  const add = (file, line, message) => violations.push({ file: rel(file), line, message });

  const rootPkgFile = path.join(root, 'package.json');
  const rootPkg = readJson(rootPkgFile);
  const patterns = Array.isArray(rootPkg.workspaces) ? rootPkg.workspaces : rootPkg.workspaces?.packages ?? [];

  const packages = [];
  const byName = new Map();
  for (const pattern of patterns) {
    for (const dirRel of expandWorkspace(root, pattern)) {
      const dir = path.join(root, dirRel);
      const pjFile = path.join(dir, 'package.json');
      if (!existsSync(pjFile)) {
        add(rootPkgFile, 1, `workspace "${dirRel}" has no package.json`);
        continue;
      }
      let pj;
      try {
        pj = readJson(pjFile);
      } catch (err) {
        add(pjFile, 1, `cannot parse package.json: ${err.message}`);
        continue;
      }
      const pkg = {
        name: pj.name,
        dir,
        pjFile,
        exported: exportedSubpaths(pj.exports),
        hasExports: pj.exports !== undefined,
        deps: new Set(Object.keys({ ...pj.dependencies, ...pj.devDependencies, ...pj.peerDependencies, ...pj.optionalDependencies })),
        type: undefined,
      };
      const types = (pj.nx?.tags ?? []).filter((t) => typeof t === 'string' && t.startsWith('type:')).map((t) => t.slice(5));
      if (types.length === 0) {
        add(pjFile, 1, `${pj.name} has no "type:" tag in "nx": { "tags": [...] } (one of ${Object.keys(allowedImports).join(', ')})`);
      } else if (types.length > 1) {
        add(pjFile, 1, `${pj.name} has more than one "type:" tag (${types.join(', ')})`);
      } else if (!(types[0] in allowedImports)) {
        add(pjFile, 1, `${pj.name} has the unknown tag "type:${types[0]}" (one of ${Object.keys(allowedImports).join(', ')})`);
      } else {
        pkg.type = types[0];
      }
      if (typeof pj.name !== 'string') {
        add(pjFile, 1, 'package.json has no "name"');
        continue;
      }
      packages.push(pkg);
      byName.set(pj.name, pkg);
    }
  }

  // importer name -> target name -> first { file, line } of such an import
  const edges = new Map();
  let fileCount = 0;

  for (const pkg of packages) {
    const files = [];
    for (const sub of SCANNED_DIRS) listSources(path.join(pkg.dir, sub), files);
    fileCount += files.length;
    for (const file of files) {
      const src = readFileSync(file, 'utf8');
      const testFile = isTestFile(pkg.dir, file);
      for (const { specifier, line } of findImports(src)) {
        if (specifier.startsWith('.') || specifier.startsWith('/')) {
          const target = path.resolve(path.dirname(file), specifier);
          const up = path.relative(pkg.dir, target);
          if (up.startsWith('..') || path.isAbsolute(up)) {
            const other = packages.find((p) => target === p.dir || target.startsWith(p.dir + path.sep));
            const hint = other ? `; import '${other.name}' instead` : '';
            add(file, line, `relative import '${specifier}' leaves package ${pkg.name} (resolves to ${rel(target) || '.'})${hint}`);
          }
          continue;
        }
        const m = /^(@berth\/[^/]+)(?:\/(.*))?$/.exec(specifier);
        if (!m) continue;
        const [, targetName, sub] = m;
        const target = byName.get(targetName);
        if (!target) {
          add(file, line, `imports ${targetName}, which is not a workspace package`);
          continue;
        }
        const subpath = sub === undefined ? '.' : `./${sub}`;
        if (target.hasExports && !subpathAllowed(subpath, target.exported)) {
          const allowed = target.exported.map((k) => (k === '.' ? targetName : `${targetName}/${k.slice(2)}`));
          add(file, line, subpath === '.'
            ? `imports ${targetName}, whose package.json "exports" has no "." entry`
            : `deep import '${specifier}': ${targetName} exports only ${allowed.map((a) => `'${a}'`).join(', ') || 'nothing'}`);
        } else if (!target.hasExports && subpath !== '.') {
          add(file, line, `deep import '${specifier}': ${targetName} has no "exports" in its package.json, so only '${targetName}' may be imported`);
        }
        if (target === pkg) continue;
        if (!pkg.deps.has(targetName)) {
          add(file, line, `imports ${targetName}, which ${pkg.name}'s package.json does not list in dependencies or devDependencies`);
        }
        if (pkg.type && target.type) {
          // Test code may also use the testkits, and an adapter's tests the other adapters (a netlink
          // test makes its namespaces with the native layer's helpers).
          const ok =
            allowedImports[pkg.type].includes(target.type) ||
            (testFile && (target.type === 'testkit' || (pkg.type === 'adapter' && target.type === 'adapter')));
          if (!ok) {
            const may = allowedImports[pkg.type];
            add(file, line, `${pkg.name} (type:${pkg.type}) must not import ${targetName} (type:${target.type}); type:${pkg.type} may import ${may.length ? may.map((t) => `type:${t}`).join(', ') : 'no other package'}${pkg.type !== 'testkit' && pkg.type !== 'test' ? (pkg.type === 'adapter' ? ' (test code also type:testkit and type:adapter)' : ' (test code also type:testkit)') : ''}`);
          }
        }
        if (!edges.has(pkg.name)) edges.set(pkg.name, new Map());
        const out = edges.get(pkg.name);
        if (!out.has(targetName)) out.set(targetName, { file, line });
      }
    }
  }

  for (const cycle of findCycles(edges)) {
    const at = edges.get(cycle[0]).get(cycle[1]);
    add(at.file, at.line, `import cycle between packages: ${cycle.join(' -> ')}`);
  }

  violations.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || (a.message < b.message ? -1 : 1)));
  return { violations, packages: packages.length, files: fileCount };
}

/**
 * One cycle per strongly connected component with more than one package, as a closed path
 * [a, b, ..., a] starting at the component's alphabetically first package.
 */
export function findCycles(edges) {
  const nodes = new Set(edges.keys());
  for (const out of edges.values()) for (const t of out.keys()) nodes.add(t);
  const succ = (v) => [...(edges.get(v)?.keys() ?? [])].sort();
  // Tarjan's algorithm (recursive: a workspace has tens of packages)
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const strong = (v) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); onStack.add(v);
    for (const w of succ(v)) {
      if (!idx.has(w)) { strong(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do { w = stack.pop(); onStack.delete(w); comp.push(w); } while (w !== v);
      components.push(comp);
    }
  };
  for (const v of [...nodes].sort()) if (!idx.has(v)) strong(v);

  const cycles = [];
  for (const comp of components) {
    if (comp.length < 2) continue;
    const inComp = new Set(comp);
    const start = [...comp].sort()[0];
    // shortest path back to start inside the component (BFS)
    const prev = new Map([[start, null]]);
    const queue = [start];
    let closing = null;
    while (queue.length && !closing) {
      const v = queue.shift();
      for (const w of succ(v)) {
        if (!inComp.has(w)) continue;
        if (w === start) { closing = v; break; }
        if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
      }
    }
    const pathBack = [];
    for (let v = closing; v !== null; v = prev.get(v)) pathBack.push(v);
    cycles.push([...pathBack.reverse(), start]);
  }
  return cycles.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

function main(argv) {
  let root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  for (let k = 0; k < argv.length; k++) {
    if (argv[k] === '--root' && argv[k + 1]) root = path.resolve(argv[++k]);
    else {
      process.stderr.write(`usage: node tools/lint/boundaries.mjs [--root DIR]\n`);
      return 2;
    }
  }
  const { violations, packages, files } = checkBoundaries(root);
  for (const v of violations) process.stdout.write(`${v.file}:${v.line}: ${v.message}\n`);
  if (violations.length) {
    process.stderr.write(`boundaries: ${violations.length} violation${violations.length === 1 ? '' : 's'} in ${packages} packages (${files} files)\n`);
    return 1;
  }
  process.stdout.write(`boundaries: ${packages} packages, ${files} files, no violations\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
