import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShimClient } from './shim-client.js';

const dir = mkdtempSync(join(tmpdir(), 'shim-client-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A fake shim: answers each request line with reply(line), then closes (unless it returns null). */
async function fakeShim(name: string, reply: (line: string, s: Socket) => string | null): Promise<{ path: string; server: Server; lines: string[] }> {
  const path = join(dir, name);
  const lines: string[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0 || lines.length > 100) return;
      const line = buf.slice(0, nl);
      lines.push(line);
      const answer = reply(line, s);
      if (answer !== null) s.end(answer);
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, server, lines };
}

test('requests are single lines; answers are parsed', async () => {
  const shim = await fakeShim('a.sock', (line) => {
    if (line === 'status') return 'running 42\n';
    if (line.startsWith('resize')) return 'ok\n';
    if (line === 'close-stdin') return 'error 9 bad fd\n';
    if (line === 'wait') return 'exit 137\n';
    return 'error 22 unknown request\n';
  });
  assert.deepEqual(await ShimClient.status(shim.path), { status: 'running', pid: 42 });
  await new ShimClient().resize(shim.path, 24, 80);
  await assert.rejects(ShimClient.closeStdin(shim.path), { code: 'BERTH_SHIM_FAILED', message: /close-stdin: bad fd/ });
  assert.equal(await ShimClient.wait(shim.path, join(dir, 'none')), 137);
  await assert.rejects(ShimClient.resize(shim.path, -1, 80), { code: 'BERTH_INVALID_ARGUMENT' });
  assert.deepEqual(shim.lines, ['status', 'resize 24 80', 'close-stdin', 'wait']);
  shim.server.close();
});

test('attach sends its flags, resolves after ok and keeps bytes that came with it', async () => {
  const shim = await fakeShim('b.sock', (line, s) => {
    s.write('ok\nfirst');
    setTimeout(() => s.end('-second'), 20);
    return null;
  });
  const s = await ShimClient.attach(shim.path, { stdin: true, stdout: true, stderr: false });
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((r) => s.on('close', r));
  assert.equal(Buffer.concat(chunks).toString(), 'first-second');
  assert.deepEqual(shim.lines, ['attach io']);
  shim.server.close();
});

test('wait without a shim reads the exit file; with neither it is NotFound', async () => {
  const exit = join(dir, 'exit');
  writeFileSync(exit, '3\n');
  assert.equal(await ShimClient.wait(join(dir, 'gone.sock'), exit), 3);
  await assert.rejects(ShimClient.wait(join(dir, 'gone.sock'), join(dir, 'no-exit')), (err: Error & { code?: string; kind?: string }) => {
    assert.equal(err.code, 'BERTH_SHIM_NOT_FOUND');
    assert.equal(err.kind, 'NotFound');
    return true;
  });
  await assert.rejects(ShimClient.status(join(dir, 'gone.sock')), { code: 'BERTH_SHIM_NOT_FOUND' });
});

test('an attach refused or answered out of protocol is an error', async () => {
  const shim = await fakeShim('c.sock', () => 'nope\n');
  await assert.rejects(ShimClient.attach(shim.path, { stdin: false, stdout: true, stderr: true }), { code: 'BERTH_SHIM_FAILED', message: /unexpected answer/ });
  await assert.rejects(ShimClient.status(shim.path), { code: 'BERTH_SHIM_FAILED' });
  shim.server.close();
});
