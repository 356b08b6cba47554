import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { readTar } from '@berth/archive';
import { IgnoreMatcher } from '@berth/archive';
import { packContext } from './build.js';

test('the context tar: .dockerignore honoured (exceptions inside excluded dirs too), owners 0:0, the Dockerfile always sent, extras appended', async () => {
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'berth-cli-build-'));
  const files: Record<string, string> = {
    Dockerfile: 'FROM busybox\n',
    '.dockerignore': 'node_modules\n*.log\nlogs\n!logs/keep.txt\nDockerfile\n',
    'src/a.ts': 'a',
    'node_modules/x/index.js': 'x',
    'debug.log': 'd',
    'logs/drop.txt': 'drop',
    'logs/keep.txt': 'keep',
  };
  for (const [n, c] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, n)), { recursive: true });
    await fs.writeFile(path.join(dir, n), c);
  }
  await fs.chmod(path.join(dir, 'src/a.ts'), 0o755);
  const ignore = new IgnoreMatcher(files['.dockerignore']!);
  const entries: { name: string; uid: number; mode: number; body: string }[] = [];
  const tar = Readable.from(packContext(dir, ignore, new Set(['Dockerfile', '.dockerignore']), [{ name: '.dockerfile.x', data: Buffer.from('FROM y\n') }]));
  for await (const { header, body } of readTar(tar)) {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c as Buffer);
    entries.push({ name: header.name, uid: header.uid, mode: header.mode, body: Buffer.concat(parts).toString() });
  }
  assert.deepEqual(
    entries.map((e) => e.name),
    ['.dockerignore', 'Dockerfile', 'logs/keep.txt', 'src/', 'src/a.ts', '.dockerfile.x'],
  );
  assert.ok(entries.every((e) => e.uid === 0));
  assert.equal(entries.find((e) => e.name === 'src/a.ts')!.mode, 0o755);
  assert.equal(entries.find((e) => e.name === '.dockerfile.x')!.body, 'FROM y\n');
  await fs.rm(dir, { recursive: true });
});
