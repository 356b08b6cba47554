import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, PluginRegistry } from './index.js';

const example = fileURLToPath(new URL('../../../../tools/examples/hello-volume-plugin.mjs', import.meta.url));

test('the example volume plugin (tools/examples) runs as its own process, is found by name and answers every VolumeDriver call', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-volume-plugin-${process.pid}-`));
  const root = path.join(dir, 'data');
  const child = spawn(process.execPath, [example, 'hv', '--dir', dir, '--root', root], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const reg = new PluginRegistry({ socketDirs: [dir], specDirs: [], retry: { timeoutMs: 10_000, baseMs: 50, capMs: 500 } });
  try {
    const d = await reg.volume('hv');
    assert.equal(d.name, 'hv');
    assert.deepEqual(await d.activate(), ['VolumeDriver']);
    assert.deepEqual(await d.capabilities(), { Capabilities: { Scope: 'local' } });
    await d.create({ Name: 'v1', Opts: { color: 'blue' } });
    await assert.rejects(d.create({ Name: 'v2', Opts: { size: '1' } }), { code: 'BERTH_PLUGIN', message: 'VolumeDriver.Create: unknown option (only color is known)' });
    const id = 'a'.repeat(64);
    assert.deepEqual(await d.mount({ Name: 'v1', ID: id }), { Mountpoint: path.join(root, 'v1') });
    assert.ok((await fs.stat(path.join(root, 'v1'))).isDirectory());
    assert.deepEqual(await d.path({ Name: 'v1' }), { Mountpoint: path.join(root, 'v1') });
    const got = await d.get({ Name: 'v1' });
    assert.deepEqual({ ...got.Volume, CreatedAt: 'x' }, { Name: 'v1', Mountpoint: path.join(root, 'v1'), CreatedAt: 'x', Status: { color: 'blue', mounts: 1 } });
    assert.deepEqual(await d.get({ Name: 'nope' }), { Volume: null });
    assert.deepEqual(await d.list(), { Volumes: [{ Name: 'v1', Mountpoint: path.join(root, 'v1') }] });
    await assert.rejects(d.remove({ Name: 'v1' }), { message: 'VolumeDriver.Remove: volume v1 is mounted' });
    await d.unmount({ Name: 'v1', ID: id });
    await d.remove({ Name: 'v1' });
    await assert.rejects(fs.stat(path.join(root, 'v1')));
    assert.match(stderr, /hv: Mount \{"Name":"v1","ID":"a{64}"\}/);
    assert.match(stderr, /hv: List \{\}/, 'List is sent {}');
  } finally {
    reg.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a volume plugin without Capabilities (404) or with an odd scope is scope local, as Docker takes it', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-volume-caps-${process.pid}-`));
  const sock = path.join(dir, 'p.sock');
  let scope: string | null = null;
  const srv = http.createServer((req, res) => {
    if (req.url === '/VolumeDriver.Capabilities' && scope !== null) {
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.plugins.v1.1+json' });
      res.end(JSON.stringify({ Capabilities: { Scope: scope } }));
      return;
    }
    res.writeHead(404);
    res.end('404 page not found');
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  try {
    const d = connect(`unix://${sock}`, 'VolumeDriver');
    assert.deepEqual(await d.capabilities(), { Capabilities: { Scope: 'local' } });
    scope = 'GLOBAL';
    assert.deepEqual(await d.capabilities(), { Capabilities: { Scope: 'global' } });
    scope = 'cluster';
    assert.deepEqual(await d.capabilities(), { Capabilities: { Scope: 'local' } });
    await assert.rejects(d.create({ Name: 'x', Opts: null }), /VolumeDriver\.Create/);
    d.close();
  } finally {
    srv.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
