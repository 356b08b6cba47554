import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginRegistry, pluginCommandLine } from './index.js';

const example = fileURLToPath(new URL('../../../../tools/examples/hello-network-plugin.mjs', import.meta.url));

test('the example plugin (tools/examples) runs as its own process and is found and used by name', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-plugin-example-${process.pid}-`));
  const child = spawn(process.execPath, [example, 'hello', '--dir', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // Lookup retries while the plugin starts (Docker's schedule, shortened).
  const reg = new PluginRegistry({ socketDirs: [dir], specDirs: [], retry: { timeoutMs: 10_000, baseMs: 50, capMs: 500 } });
  try {
    const d = await reg.network('hello');
    assert.deepEqual(await d.getCapabilities(), { Scope: 'local', ConnectivityScope: 'local' });
    await d.createNetwork({ NetworkID: 'n1', Options: {}, IPv4Data: [], IPv6Data: [] });
    assert.deepEqual(await d.createEndpoint({ NetworkID: 'n1', EndpointID: 'e1', Interface: { Address: '10.9.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: {} }), {});
    assert.deepEqual(await d.join({ NetworkID: 'n1', EndpointID: 'e1', SandboxKey: '/x', Options: {} }), {});
    await assert.rejects(d.join({ NetworkID: 'n1', EndpointID: 'e2', SandboxKey: '/x', Options: {} }), { message: 'NetworkDriver.Join: endpoint e2 not found' });
    await d.deleteEndpoint({ NetworkID: 'n1', EndpointID: 'e1' });
    await d.deleteNetwork({ NetworkID: 'n1' });
    assert.match(stderr, /hello: CreateNetwork \{"NetworkID":"n1"/);
  } finally {
    reg.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('pluginCommandLine: the name (else the default), --dir as the one socket directory, --docker, the program\'s own flags', () => {
  assert.deepEqual(pluginCommandLine(['--root', '/r', 'mine', '--dir', '/d', '--docker'], 'hello', ['--root']), { options: { name: 'mine', docker: true, dirs: ['/d'] }, values: { '--root': '/r' } });
  assert.deepEqual(pluginCommandLine([], 'hello', ['--root']), { options: { name: 'hello', docker: false }, values: { '--root': undefined } });
});
