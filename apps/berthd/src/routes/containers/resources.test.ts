import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@berth/log';
import { createServer } from '../../server.js';
import { TestEngine } from '../../test-engine.js';

function setup() {
  const engine = new TestEngine();
  engine.add('c1', { running: true });
  const app = createServer({ engine, logger: silentLogger() });
  return { engine, app };
}

test('POST /containers/{id}/update passes Docker body through and answers {"Warnings":[]}', async () => {
  const { app, engine } = setup();
  const r = await app.inject({ method: 'POST', url: '/v1.43/containers/c1/update', headers: { 'content-type': 'application/json' }, payload: '{"Memory":67108864,"RestartPolicy":{"Name":"always"}}' });
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.deepEqual(r.json(), { Warnings: [] });
  assert.deepEqual(engine.calls.find((c) => c.method === 'updateContainer')!.args, ['c1', { Memory: 67108864, RestartPolicy: { Name: 'always' } }]);
  const missing = await app.inject({ method: 'POST', url: '/containers/nope/update', headers: { 'content-type': 'application/json' }, payload: '{}' });
  assert.equal(missing.statusCode, 404);
  const notObject = await app.inject({ method: 'POST', url: '/containers/c1/update', headers: { 'content-type': 'application/json' }, payload: '[1]' });
  assert.equal(notObject.statusCode, 400);
});

test('GET /containers/{id}/stats: stream=0 one object, default a stream of lines, one-shot with stream refused', async () => {
  const { app, engine } = setup();
  const one = await app.inject({ method: 'GET', url: '/containers/c1/stats?stream=0' });
  assert.equal(one.statusCode, 200);
  assert.equal(one.headers['content-type'], 'application/json');
  const lines = one.body.trim().split('\n');
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]!).name, '/c1');
  assert.deepEqual(engine.calls.find((c) => c.method === 'containerStats')!.args[1], { stream: false, oneShot: false });
  const stream = await app.inject({ method: 'GET', url: '/containers/c1/stats' });
  assert.equal(stream.body.trim().split('\n').length, 3);
  assert.deepEqual(engine.calls.filter((c) => c.method === 'containerStats')[1]!.args[1], { stream: true, oneShot: false });
  const both = await app.inject({ method: 'GET', url: '/containers/c1/stats?one-shot=1' });
  assert.equal(both.statusCode, 400);
  const shot = await app.inject({ method: 'GET', url: '/containers/c1/stats?stream=false&one-shot=true' });
  assert.equal(shot.statusCode, 200);
  const missing = await app.inject({ method: 'GET', url: '/containers/nope/stats?stream=0' });
  assert.equal(missing.statusCode, 404);
  assert.match(missing.json().message, /No such container: nope/);
});

test('POST /containers/prune passes its filters and answers Docker shape', async () => {
  const { app, engine } = setup();
  engine.add('c2', { running: false });
  const r = await app.inject({ method: 'POST', url: `/v1.47/containers/prune?filters=${encodeURIComponent('{"label!":{"keep":true}}')}` });
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  const body = r.json() as { ContainersDeleted: string[]; SpaceReclaimed: number };
  assert.equal(body.ContainersDeleted.length, 1);
  assert.equal(body.SpaceReclaimed, 0);
  assert.deepEqual(engine.calls.find((c) => c.method === 'pruneContainers')!.args[0], { 'label!': ['keep'] });
});
