import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, spawnDriverHost } from './index.js';

const fixture = new URL('../test/fixtures/tiny-descriptor.js', import.meta.url).href;

test('a descriptor served from its own process: connect() reaches it; stop() ends it and removes the socket', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-host-${process.pid}-`));
  const sock = path.join(dir, 'tiny.sock');
  const host = await spawnDriverHost({ module: fixture, export: 'tinyIpam', socketPath: sock, deps: { stateDir: '/var/lib/x', options: { k: 'v' } } });
  const c = connect(sock, 'IpamDriver');
  try {
    assert.deepEqual(host.implements, ['IpamDriver']);
    assert.notEqual(host.pid, process.pid);
    assert.deepEqual(await c.getDefaultAddressSpaces(), { LocalDefaultAddressSpace: `pid-${host.pid}`, GlobalDefaultAddressSpace: '/var/lib/x|v' });
    assert.equal((await c.requestPool({ AddressSpace: 'a', Pool: '', SubPool: '', Options: null, V6: false })).Pool, '10.1.0.0/16');
  } finally {
    c.close();
    await host.stop();
  }
  assert.throws(() => process.kill(host.pid, 0), /ESRCH/);
  assert.equal(await fs.stat(sock).then(() => true, () => false), false);
  await fs.rm(dir, { recursive: true, force: true });
});

test('a driver that fails to start is an error carrying its message', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-host-${process.pid}-`));
  try {
    await assert.rejects(spawnDriverHost({ module: fixture, export: 'brokenIpam', socketPath: path.join(dir, 'b.sock'), deps: {} }), /exited \(1\) before serving: .*cannot start: no such thing/s);
    await assert.rejects(spawnDriverHost({ module: fixture, export: 'nothing', socketPath: path.join(dir, 'b.sock'), deps: {} }), /has no descriptor nothing/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
