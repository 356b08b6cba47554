import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanName, resolveMember, type Extracted } from './load.js';

const archive = (files: string[], links: [string, string, boolean][]): Extracted => ({
  dir: '/nonexistent',
  files: new Set(files),
  links: new Map(links.map(([n, target, hard]) => [n, { target, hard }])),
});

test('member names are made relative; names leaving the archive are dropped', () => {
  assert.equal(cleanName('./a/b/../c'), 'a/c');
  assert.equal(cleanName('/abs/x'), 'abs/x');
  assert.equal(cleanName('dir/'), 'dir');
  assert.equal(cleanName('../../etc/passwd'), 'etc/passwd');
  assert.equal(cleanName('.'), null);
  assert.equal(cleanName(''), null);
});

test('members resolve through symlinks and hard links inside the archive only', () => {
  const x = archive(
    ['l1/layer.tar', 'real/blobs/sha256/aa'],
    [
      ['blobs/sha256/bb', '../../l1/layer.tar', false],
      ['hard', 'l1/layer.tar', true],
      ['abs', '/l1/layer.tar', false],
      ['loop1', 'loop2', false],
      ['loop2', 'loop1', false],
      ['up', '../../../../etc/passwd', false],
      ['blobs2', 'real/blobs', false],
    ],
  );
  assert.equal(resolveMember(x, 'l1/layer.tar'), 'l1/layer.tar');
  assert.equal(resolveMember(x, 'blobs/sha256/bb'), 'l1/layer.tar');
  assert.equal(resolveMember(x, 'hard'), 'l1/layer.tar');
  assert.equal(resolveMember(x, 'abs'), 'l1/layer.tar', 'absolute targets are taken inside the archive');
  assert.equal(resolveMember(x, 'blobs2/sha256/aa'), 'real/blobs/sha256/aa', 'a link on a directory of the path');
  assert.equal(resolveMember(x, 'loop1'), null);
  assert.equal(resolveMember(x, 'up'), null, 'clamped to the archive root, where etc/passwd is not a member');
  assert.equal(resolveMember(x, 'missing'), null);
});
