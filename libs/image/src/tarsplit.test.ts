import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { BerthError } from '@berth/errors';
import { assembleTar, isCleanName } from './tarsplit.js';

test('isCleanName says yes exactly for names path.normalize leaves as they are (all names of a, . and / up to 7 characters)', () => {
  const alphabet = ['a', '.', '/'];
  let names = [''];
  const all: string[] = [''];
  for (let len = 1; len <= 7; len++) {
    names = names.flatMap((n) => alphabet.map((c) => n + c));
    all.push(...names);
  }
  for (const n of all) {
    const normal = n !== '' && !n.endsWith('/') && path.posix.normalize(`/${n}`).slice(1) === n;
    assert.equal(isCleanName(n), normal, JSON.stringify(n));
  }
});

test('isCleanName: layer names with dots that are not components are clean; . and .. components are not', () => {
  for (const n of ['bin/sh', '.profile', 'a/..b', '...', 'etc/.wh.x', 'a/b.']) assert.ok(isCleanName(n), n);
  for (const n of ['../x', 'a/../b', './a', 'a/./b', 'a//b', '/etc/passwd', 'a/', '', '.', '..', 'a/..']) assert.ok(!isCleanName(n), n);
});

test('assembleTar reads only inside the layer: .., absolute and symlinked-directory names of a record are refused', async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `berth-tarsplit-${process.pid}-`));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const layer = path.join(work, 'layer');
  fs.mkdirSync(path.join(layer, 'd'), { recursive: true });
  fs.writeFileSync(path.join(layer, 'd', 'f'), 'inside');
  fs.writeFileSync(path.join(work, 'secret'), 'outside');
  fs.mkdirSync(path.join(work, 'elsewhere'));
  fs.writeFileSync(path.join(work, 'elsewhere', 'f'), 'outside');
  fs.symlinkSync(path.join(work, 'elsewhere'), path.join(layer, 'link'));
  const record = (name: string, size: number): string => {
    const file = path.join(work, `rec-${Math.random().toString(16).slice(2)}.gz`);
    fs.writeFileSync(file, gzipSync(`${JSON.stringify({ type: 1, name, size, position: 0 })}\n`));
    return file;
  };
  const drain = async (it: AsyncGenerator<Buffer>): Promise<string> => {
    const parts: Buffer[] = [];
    for await (const b of it) parts.push(b);
    return Buffer.concat(parts).toString();
  };
  const digestOf = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;
  // The clean name reads the layer's file (and the digest check passes).
  assert.equal(await drain(assembleTar(record('d/f', 6), layer, digestOf('inside'))), 'inside');
  assert.equal(await drain(assembleTar(record('./d//f', 6), layer, digestOf('inside'))), 'inside');
  await assert.rejects(drain(assembleTar(record('..', 7), layer, digestOf('outside'))), (err: unknown) => {
    assert.equal((err as BerthError).code, 'BERTH_STORAGE');
    assert.match((err as Error).message, /has no place in the layer/);
    return true;
  });
  // .. stops at the layer root and an absolute name is layer-relative: all of these are
  // <layer>/secret, which is not there (the file beside the layer is never read).
  for (const name of ['../secret', 'd/../../secret', '/secret', '/../secret'])
    await assert.rejects(drain(assembleTar(record(name, 7), layer, digestOf('outside'))), { code: 'ENOENT', path: path.join(layer, 'secret') });
  await assert.rejects(drain(assembleTar(record('link/f', 7), layer, digestOf('outside'))), (err: unknown) => {
    assert.equal((err as BerthError).code, 'BERTH_STORAGE');
    assert.match((err as Error).message, /is not inside the layer/);
    return true;
  });
});
