import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { IgnoreMatcher } from '@berth/archive';
import { applyDockerignore, extractContext, hashSource, resolveSources } from './context.js';

async function tree(files: Record<string, string>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'berth-build-ctx-'));
  for (const [name, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), content);
  }
  return dir;
}

async function list(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      out.push(e.isDirectory() ? `${r}/` : r);
      if (e.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out.sort();
}

test('.dockerignore: globs, ** across directories, exceptions, parent directories', () => {
  const m = new IgnoreMatcher('# comment\n*.log\nbuild/\n**/tmp\n!keep.log\n/abs/path\ndocs/*.md\n');
  assert.equal(m.excluded('a.log'), true);
  assert.equal(m.excluded('sub/a.log'), false, '* does not cross a /');
  assert.equal(m.excluded('keep.log'), false, 'the exception wins (it comes last)');
  assert.equal(m.excluded('build'), true);
  assert.equal(m.excluded('build/x/y.o'), true, 'a parent match covers its tree');
  assert.equal(m.excluded('a/b/tmp'), true);
  assert.equal(m.excluded('tmp'), true, '**/ matches zero directories');
  assert.equal(m.excluded('abs/path'), true, 'a leading / is dropped');
  assert.equal(m.excluded('docs/readme.md'), true);
  assert.equal(m.excluded('docs/sub/readme.md'), false);
  assert.equal(m.excluded('src/main.ts'), false);
  assert.equal(new IgnoreMatcher('\n# only comments\n').empty, true);
});

test('extractContext reads plain and gzip tars; applyDockerignore keeps the Dockerfile and re-included files', async () => {
  const src = await tree({ Dockerfile: 'FROM x\n', 'a.txt': 'a', 'logs/x.log': 'x', 'logs/keep.log': 'k', '.dockerignore': 'logs\n!logs/keep.log\nDockerfile\n' });
  const tar = execFileSync('tar', ['-c', '-C', src, '.']);
  for (const body of [tar, gzipSync(tar)]) {
    const dir = path.join(await fs.mkdtemp(path.join(tmpdir(), 'berth-build-x-')), 'ctx');
    await extractContext(Readable.from([body]), dir);
    await applyDockerignore(dir, ['Dockerfile', '.dockerignore']);
    assert.deepEqual(await list(dir), ['.dockerignore', 'Dockerfile', 'a.txt', 'logs/', 'logs/keep.log']);
    await fs.rm(path.dirname(dir), { recursive: true });
  }
  await fs.rm(src, { recursive: true });
  await assert.rejects(extractContext(Readable.from([Buffer.from('BZh91AY&SY')]), path.join(tmpdir(), `berth-build-bz-${process.pid}`)), /only plain and gzip/);
  await fs.rm(path.join(tmpdir(), `berth-build-bz-${process.pid}`), { recursive: true, force: true });
});

test("resolveSources: a path, a glob, Docker's error for nothing, never outside the context", async () => {
  const dir = await tree({ 'a.conf': '1', 'b.conf': '2', 'src/x.js': 'x', 'outside-link-target': '' });
  await fs.symlink('/etc/passwd', path.join(dir, 'escape'));
  assert.deepEqual((await resolveSources(dir, 'src', 'COPY')).map((s) => [s.rel, s.isDir]), [['src', true]]);
  assert.deepEqual((await resolveSources(dir, '*.conf', 'COPY')).map((s) => s.rel), ['a.conf', 'b.conf']);
  assert.deepEqual((await resolveSources(dir, './src/../a.conf', 'COPY')).map((s) => s.rel), ['a.conf']);
  await assert.rejects(resolveSources(dir, 'nope', 'COPY'), { message: 'COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist' });
  await assert.rejects(resolveSources(dir, '*.none', 'ADD'), { message: 'ADD failed: no source files were specified' });
  await assert.rejects(resolveSources(dir, 'escape', 'COPY'), /file not found in build context/);
  await assert.rejects(resolveSources(dir, '../../etc/passwd', 'COPY'), /file not found in build context/);
  // The cache key follows the content.
  const [a] = await resolveSources(dir, 'a.conf', 'COPY');
  const h1 = await hashSource(a!);
  await fs.writeFile(path.join(dir, 'a.conf'), 'changed');
  assert.notEqual(await hashSource(a!), h1);
  await fs.rm(dir, { recursive: true });
});
