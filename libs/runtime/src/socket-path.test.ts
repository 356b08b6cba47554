import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_SOCKET_PATH, socketPath } from './socket-path.js';

test('a console socket under a long state root gets a short stable path that fits sun_path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sockpath-'));
  try {
    const short = '/run/berth/runtime/abc/console.sock';
    assert.equal(socketPath(short, dir), short);
    const long = `/run/berth-test-29718-29718-kicybq/runtime/${'a'.repeat(64)}/console.sock`;
    assert.ok(Buffer.byteLength(long) > MAX_SOCKET_PATH);
    const got = socketPath(long, dir);
    assert.ok(Buffer.byteLength(got) <= MAX_SOCKET_PATH, got);
    assert.ok(got.startsWith(`${dir}/`));
    assert.equal(socketPath(long, dir), got, 'the same path maps to the same socket');
    assert.notEqual(socketPath(`${long}x`, dir), got);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
