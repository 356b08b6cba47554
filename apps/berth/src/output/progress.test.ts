import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProgressPrinter, printProgress } from './progress.js';
import { normalizeName, registryAuthHeader, splitRef } from '../commands/registry.js';

const stream = [
  { status: 'Pulling from library/busybox', id: 'latest' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'aaa' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'bbb' },
  { status: 'Downloading', progressDetail: { current: 1, total: 2 }, progress: '[=>  ] 1B/2B', id: 'aaa' },
  { status: 'Download complete', progressDetail: {}, id: 'aaa' },
  { status: 'Pull complete', progressDetail: {}, id: 'bbb' },
  { status: 'Digest: sha256:abc' },
]
  .map((m) => JSON.stringify(m))
  .join('\r\n');

test('not a terminal: status lines, progress bars left out (docker CLI)', async () => {
  let out = '';
  const err = await printProgress([Buffer.from(stream.slice(0, 50)), Buffer.from(stream.slice(50))], new ProgressPrinter((s) => (out += s), false));
  assert.equal(err, undefined);
  assert.equal(
    out,
    'latest: Pulling from library/busybox\naaa: Pulling fs layer\nbbb: Pulling fs layer\naaa: Download complete\nbbb: Pull complete\nDigest: sha256:abc\n',
  );
});

test('terminal: one line per layer, rewritten in place', async () => {
  let out = '';
  await printProgress([stream], new ProgressPrinter((s) => (out += s), true));
  assert.ok(out.includes('\x1b[2A\r\x1b[2Kaaa: Downloading [=>  ] 1B/2B\r\x1b[2B'), JSON.stringify(out));
  assert.ok(out.includes('\x1b[1A\r\x1b[2Kbbb: Pull complete\r\x1b[1B'));
  assert.ok(out.endsWith('Digest: sha256:abc\n'));
});

test('an in-band error is answered, not printed', async () => {
  let out = '';
  const err = await printProgress([`${JSON.stringify({ status: 'x' })}\r\n${JSON.stringify({ errorDetail: { message: 'boom' }, error: 'boom' })}\r\n`], new ProgressPrinter((s) => (out += s), false));
  assert.equal(err, 'boom');
  assert.equal(out, 'x\n');
});

test('references and credentials from config.json', () => {
  assert.deepEqual(normalizeName('busybox'), { domain: 'docker.io', path: 'library/busybox' });
  assert.deepEqual(normalizeName('me/app'), { domain: 'docker.io', path: 'me/app' });
  assert.deepEqual(normalizeName('127.0.0.1:5000/x/busybox'), { domain: '127.0.0.1:5000', path: 'x/busybox' });
  assert.deepEqual(splitRef('127.0.0.1:5000/x/busybox'), { name: '127.0.0.1:5000/x/busybox' });
  assert.deepEqual(splitRef('127.0.0.1:5000/x/busybox:1'), { name: '127.0.0.1:5000/x/busybox', tag: '1' });
  const dir = mkdtempSync(join(tmpdir(), 'berth-cli-auth-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { '127.0.0.1:5000': { auth: Buffer.from('u:p:w').toString('base64') } } }));
    const h = registryAuthHeader('127.0.0.1:5000', { DOCKER_CONFIG: dir });
    assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), { username: 'u', password: 'p:w', serveraddress: '127.0.0.1:5000' });
    assert.equal(Buffer.from(registryAuthHeader('other:1', { DOCKER_CONFIG: dir }), 'base64url').toString(), '{}');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
