import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '@berth/errors';
import { silentLogger } from '@berth/log';
import { createServer } from '../../server.js';
import { TestEngine } from '../../test-engine.js';

function setup() {
  const engine = new TestEngine();
  const app = createServer({ engine, logger: silentLogger() });
  return { engine, app };
}
const json = { 'content-type': 'application/json' };

test('volume create answers 201 with the volume; no body is an anonymous local volume', async () => {
  const { app, engine } = setup();
  const r = await app.inject({ method: 'POST', url: '/v1.41/volumes/create', headers: json, payload: '{"Name":"data1","Driver":"local","DriverOpts":{"type":"tmpfs"},"Labels":{"a":"b"}}' });
  assert.equal(r.statusCode, 201);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.json().Name, 'data1');
  assert.deepEqual(engine.calls.at(-1), { method: 'createVolume', args: [{ Name: 'data1', Driver: 'local', DriverOpts: { type: 'tmpfs' }, Labels: { a: 'b' } }] });
  const anon = await app.inject({ method: 'POST', url: '/volumes/create' });
  assert.equal(anon.statusCode, 201);
  assert.deepEqual(engine.calls.at(-1), { method: 'createVolume', args: [{}] });
});

test('volume create with a bad body field is a 400 naming the field', async () => {
  const { app } = setup();
  for (const [payload, word] of [['{"Name":5}', 'Name'], ['{"Labels":{"a":1}}', 'Labels.a'], ['{"DriverOpts":[1]}', 'DriverOpts'], ['[1]', 'body']] as const) {
    const r = await app.inject({ method: 'POST', url: '/volumes/create', headers: json, payload });
    assert.equal(r.statusCode, 400, payload);
    assert.match(r.json().message, new RegExp(word.replace('.', '\\.')), payload);
  }
});

test('volume errors map to Docker statuses: 400 invalid, 404 missing, 409 in use', async () => {
  const { app, engine } = setup();
  engine.failNext.set('createVolume', new BerthError('BERTH_INVALID_ARGUMENT', 'create a!: "a!" includes invalid characters'));
  assert.equal((await app.inject({ method: 'POST', url: '/volumes/create', headers: json, payload: '{"Name":"a!"}' })).statusCode, 400);
  const missing = await app.inject({ method: 'GET', url: '/v1.41/volumes/nope' });
  assert.equal(missing.statusCode, 404);
  assert.deepEqual(missing.json(), { message: 'get nope: no such volume' });
  engine.failNext.set('removeVolume', new BerthError('BERTH_VOLUME_IN_USE', 'remove v1: volume is in use - [abc]'));
  const inUse = await app.inject({ method: 'DELETE', url: '/volumes/v1?force=1' });
  assert.equal(inUse.statusCode, 409);
  assert.deepEqual(inUse.json(), { message: 'remove v1: volume is in use - [abc]' });
});

test('volume ls passes filters, inspect and rm answer, force on a missing volume is 204', async () => {
  const { app, engine } = setup();
  await app.inject({ method: 'POST', url: '/volumes/create', headers: json, payload: '{"Name":"v2"}' });
  const ls = await app.inject({ method: 'GET', url: `/v1.41/volumes?filters=${encodeURIComponent('{"dangling":["true"],"name":["v"]}')}` });
  assert.equal(ls.statusCode, 200);
  assert.deepEqual(Object.keys(ls.json()), ['Volumes', 'Warnings']);
  assert.equal(ls.json().Volumes[0].Name, 'v2');
  assert.deepEqual(engine.calls.at(-1), { method: 'listVolumes', args: [{ dangling: ['true'], name: ['v'] }] });
  assert.equal((await app.inject({ method: 'GET', url: '/volumes/v2' })).json().Mountpoint, '/var/lib/berth/volumes/v2/_data');
  assert.equal((await app.inject({ method: 'DELETE', url: '/volumes/v2' })).statusCode, 204);
  assert.equal((await app.inject({ method: 'DELETE', url: '/volumes/v2' })).statusCode, 404);
  assert.equal((await app.inject({ method: 'DELETE', url: '/volumes/v2?force=true' })).statusCode, 204);
});

test('volume prune passes the filters and the API version of the request', async () => {
  const { app, engine } = setup();
  const r = await app.inject({ method: 'POST', url: `/v1.43/volumes/prune?filters=${encodeURIComponent('{"all":["true"]}')}` });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), { VolumesDeleted: [], SpaceReclaimed: 0 });
  assert.deepEqual(engine.calls.at(-1), { method: 'pruneVolumes', args: [{ all: ['true'] }, '1.43'] });
  await app.inject({ method: 'POST', url: '/v1.41/volumes/prune' });
  assert.deepEqual(engine.calls.at(-1)!.args[1], '1.41');
});
