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

test('changes, commit, history, prune and df answer Docker shapes', async () => {
  const { app, engine } = setup();
  const ch = await app.inject({ method: 'GET', url: '/v1.41/containers/c1/changes' });
  assert.equal(ch.statusCode, 200);
  assert.deepEqual(ch.json(), [{ Path: '/tmp', Kind: 0 }, { Path: '/tmp/x', Kind: 1 }]);

  const cm = await app.inject({
    method: 'POST',
    url: '/v1.41/commit?container=c1&repo=me%2Fimg&tag=v1&comment=hi&author=a&pause=0&changes=CMD%20%5B%22sh%22%5D',
    headers: { 'content-type': 'application/json' },
    payload: '{"Env":["A=b"]}',
  });
  assert.equal(cm.statusCode, 201);
  assert.deepEqual(cm.json(), { Id: 'sha256:' + 'd'.repeat(64) });
  const call = engine.calls.find((c) => c.method === 'commitContainer')!;
  assert.deepEqual(call.args, ['c1', { repo: 'me/img', tag: 'v1', comment: 'hi', author: 'a', pause: false, changes: ['CMD ["sh"]'], config: { Env: ['A=b'] } }]);
  const cm2 = await app.inject({ method: 'POST', url: '/commit?container=c1' });
  assert.equal(cm2.statusCode, 201);
  assert.equal((engine.calls.filter((c) => c.method === 'commitContainer')[1]!.args[1] as { pause: boolean }).pause, true);

  const h = await app.inject({ method: 'GET', url: '/images/library/busybox:latest/history' });
  assert.equal(h.statusCode, 200);
  assert.equal(h.json()[0].Tags[0], 'library/busybox:latest');

  const pr = await app.inject({ method: 'POST', url: '/images/prune?filters=%7B%22dangling%22%3A%7B%22false%22%3Atrue%7D%7D' });
  assert.deepEqual(pr.json(), { ImagesDeleted: null, SpaceReclaimed: 0 });
  assert.deepEqual(engine.calls.find((c) => c.method === 'pruneImages')!.args[0], { dangling: ['false'] });

  const df = await app.inject({ method: 'GET', url: '/system/df' });
  assert.deepEqual(Object.keys(df.json()), ['LayersSize', 'Images', 'Containers', 'Volumes', 'BuildCache']);
});

test('archive: HEAD and GET carry the base64 path stat; PUT streams the body', async () => {
  const { app, engine } = setup();
  const head = await app.inject({ method: 'HEAD', url: '/v1.41/containers/c1/archive?path=/etc/hostname' });
  assert.equal(head.statusCode, 200);
  const stat = JSON.parse(Buffer.from(String(head.headers['x-docker-container-path-stat']), 'base64').toString('utf8'));
  assert.deepEqual(stat, { name: 'hostname', size: 5, mode: 0o644, mtime: '2026-01-01T00:00:00Z', linkTarget: '' });
  const get = await app.inject({ method: 'GET', url: '/containers/c1/archive?path=/etc/hostname' });
  assert.equal(get.statusCode, 200);
  assert.equal(get.headers['content-type'], 'application/x-tar');
  assert.ok(get.headers['x-docker-container-path-stat']);
  assert.equal(get.rawPayload.length, 1024);
  const put = await app.inject({
    method: 'PUT',
    url: '/containers/c1/archive?path=/tmp&noOverwriteDirNonDir=true',
    headers: { 'content-type': 'application/x-tar' },
    payload: Buffer.alloc(5 * 1024 * 1024),
  });
  assert.equal(put.statusCode, 200);
  assert.deepEqual(engine.calls.find((c) => c.method === 'putContainerArchive')!.args, ['c1', '/tmp', 5 * 1024 * 1024, { noOverwriteDirNonDir: true }]);
  const noPath = await app.inject({ method: 'GET', url: '/containers/c1/archive' });
  assert.equal(noPath.statusCode, 400);
});

test('POST /build/prune: no build cache to delete; its filters are checked', async () => {
  const engine = new TestEngine();
  const app = createServer({ engine, logger: silentLogger() });
  const r = await app.inject({ method: 'POST', url: '/v1.47/build/prune?filters=%7B%22until%22%3A%7B%2224h%22%3Atrue%7D%7D' });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), { CachesDeleted: null, SpaceReclaimed: 0 });
  const bad = await app.inject({ method: 'POST', url: '/v1.47/build/prune?filters=%7B%22color%22%3A%7B%22red%22%3Atrue%7D%7D' });
  assert.equal(bad.statusCode, 400);
});
