import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@berth/log';
import { createServer } from '../../server.js';
import { TestEngine } from '../../test-engine.js';

/** An engine that answers ps and inspect as JSON bytes, as BerthEngine does. */
class BytesEngine extends TestEngine {
  async listContainersJson(opts: { all: boolean; limit: number; size: boolean; portRuns?: boolean }): Promise<Buffer> {
    this.calls.push({ method: 'listContainersJson', args: [opts] });
    return Buffer.from('[{"Id":"x","Ports":[{"PrivatePort":80,"Type":"tcp"}]}]\n');
  }
  async inspectContainerJson(ref: string, opts?: { size: boolean }): Promise<Buffer> {
    this.calls.push({ method: 'inspectContainerJson', args: [ref, opts] });
    return Buffer.from('{"Id":"x","NetworkSettings":{"Ports":{}}}\n');
  }
}

test('GET /containers/json and /containers/{id}/json send the engine JSON bytes as they are, application/json exactly', async () => {
  const engine = new BytesEngine();
  const app = createServer({ engine, logger: silentLogger() });
  const ls = await app.inject({ method: 'GET', url: '/v1.41/containers/json?all=1' });
  assert.equal(ls.statusCode, 200);
  assert.equal(ls.headers['content-type'], 'application/json');
  assert.equal(ls.body, '[{"Id":"x","Ports":[{"PrivatePort":80,"Type":"tcp"}]}]\n');
  const one = await app.inject({ method: 'GET', url: '/v1.41/containers/x/json?size=1' });
  assert.equal(one.headers['content-type'], 'application/json');
  assert.equal(one.body, '{"Id":"x","NetworkSettings":{"Ports":{}}}\n');
  assert.deepEqual(engine.calls.find((c) => c.method === 'inspectContainerJson')!.args, ['x', { size: true }]);
});

test('berthPortRuns=1 asks the engine for port runs; Docker clients (without it) get one Port per port', async () => {
  const engine = new BytesEngine();
  const app = createServer({ engine, logger: silentLogger() });
  await app.inject({ method: 'GET', url: '/v1.41/containers/json' });
  await app.inject({ method: 'GET', url: '/v1.41/containers/json?berthPortRuns=1' });
  const calls = engine.calls.filter((c) => c.method === 'listContainersJson').map((c) => (c.args[0] as { portRuns?: boolean }).portRuns);
  assert.deepEqual(calls, [false, true]);
});

test('an engine without the JSON answers is serialised from its objects', async () => {
  const engine = new TestEngine();
  engine.add('c1', { running: true });
  const app = createServer({ engine, logger: silentLogger() });
  const ls = await app.inject({ method: 'GET', url: '/v1.41/containers/json' });
  assert.equal(ls.headers['content-type'], 'application/json');
  assert.equal(ls.json()[0].Names[0], '/c1');
  const one = await app.inject({ method: 'GET', url: '/v1.41/containers/c1/json' });
  assert.equal(one.json().Name, '/c1');
});
