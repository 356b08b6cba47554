import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@berth/log';
import { createServer } from '../../server.js';
import { TestEngine } from '../../test-engine.js';

function setup() {
  const engine = new TestEngine();
  const app = createServer({ engine, logger: silentLogger() });
  return { engine, app };
}

test('save: names from the query or the path, a tar body, 404 before any byte for a missing image', async () => {
  const { app, engine } = setup();
  engine.images.set('busybox:latest', 'sha256:' + 'a'.repeat(64));
  engine.images.set('reg.local:5000/me/bb:v1', 'sha256:' + 'b'.repeat(64));
  const res = await app.inject({ method: 'GET', url: '/v1.47/images/get?names=busybox&names=reg.local:5000/me/bb:v1' });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'application/x-tar');
  assert.equal(res.body, 'tar of busybox,reg.local:5000/me/bb:v1');
  const one = await app.inject({ method: 'GET', url: '/v1.41/images/reg.local:5000/me/bb:v1/get' });
  assert.equal(one.statusCode, 200);
  assert.deepEqual(engine.calls.findLast((c) => c.method === 'saveImages')?.args, [['reg.local:5000/me/bb:v1']]);
  const missing = await app.inject({ method: 'GET', url: '/v1.47/images/get?names=busybox&names=nosuch' });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.headers['content-type'], 'application/json');
  assert.equal(missing.json().message, 'No such image: nosuch');
  assert.equal((await app.inject({ method: 'GET', url: '/v1.47/images/get' })).statusCode, 400);
});

test('load: quiet by default, JSON stream with Content-Type application/json exactly, errors before and after output', async () => {
  const { app, engine } = setup();
  const load = (payload: string, query = '') => app.inject({ method: 'POST', url: `/v1.47/images/load${query}`, headers: { 'content-type': 'application/x-tar' }, payload });
  const ok = await load('tar');
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.headers['content-type'], 'application/json');
  assert.equal(ok.body, '{"stream":"Loaded image: loaded:latest\\n"}\r\n');
  assert.deepEqual(engine.calls.findLast((c) => c.method === 'loadImages')?.args, [{ quiet: true }]);
  const loud = await load('tar', '?quiet=0');
  assert.deepEqual(
    loud.body.split('\r\n').filter(Boolean).map((l) => JSON.parse(l)),
    [{ status: 'Loading layer', progressDetail: {}, id: 'aaaaaaaaaaaa' }, { stream: 'Loaded image: loaded:latest\n' }],
  );
  const early = await load('bad-early', '?quiet=1');
  assert.equal(early.statusCode, 400);
  assert.match(early.json().message, /no manifest.json/);
  const late = await load('bad-late', '?quiet=0');
  assert.equal(late.statusCode, 200);
  const lines = late.body.split('\r\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(lines.at(-1).errorDetail.message, 'layer 1 (sha256:aa): content digest sha256:bb does not match');
  assert.equal(lines.at(-1).error, lines.at(-1).errorDetail.message);
});
