import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@berth/log';
import { BerthError, type ErrorCode } from '@berth/errors';
import { Demuxer, MULTIPLEXED_STREAM, RAW_STREAM } from '@berth/api/wire';
import { createServer } from './server.js';
import { TestEngine } from './test-engine.js';

function setup() {
  const engine = new TestEngine();
  const app = createServer({ engine, logger: silentLogger() });
  return { engine, app };
}

test('common headers on every response, versioned and unversioned paths', async () => {
  const { app } = setup();
  for (const url of ['/version', '/v1.47/version', '/v1.24/version', '/v1.41/version']) {
    const res = await app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 200, url);
    assert.equal(res.headers['api-version'], '1.47');
    assert.equal(res.headers['ostype'], 'linux');
    assert.equal(res.headers['docker-experimental'], 'false');
    assert.equal(res.headers['server'], 'Berth/0.1.0-test (linux)');
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.json().ApiVersion, '1.47');
    assert.ok(res.body.endsWith('\n'));
  }
  const nf = await app.inject({ method: 'GET', url: '/nothing' });
  assert.equal(nf.headers['api-version'], '1.47');
});

test('API versions outside [1.24, 1.47] are refused with Docker texts', async () => {
  const { app } = setup();
  const old = await app.inject({ method: 'GET', url: '/v1.23/version' });
  assert.equal(old.statusCode, 400);
  assert.equal(old.headers['content-type'], 'application/json');
  assert.equal(
    old.json().message,
    'client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version',
  );
  const neu = await app.inject({ method: 'GET', url: '/v1.48/containers/json' });
  assert.equal(neu.statusCode, 400);
  assert.equal(neu.json().message, 'client version 1.48 is too new. Maximum supported API version is 1.47');
  // 1.100 > 1.47 numerically, not as strings
  assert.equal((await app.inject({ method: 'GET', url: '/v1.100/version' })).statusCode, 400);
});

test('unknown route and wrong method are 404 page not found', async () => {
  const { app } = setup();
  for (const [method, url] of [
    ['GET', '/nope'],
    ['GET', '/v1.47/nope'],
    ['DELETE', '/version'],
    ['POST', '/containers/json'],
    ['HEAD', '/version'],
    ['GET', '/vfoo/version'],
  ] as const) {
    const res = await app.inject({ method, url });
    assert.equal(res.statusCode, 404, `${method} ${url}`);
    assert.equal(res.headers['content-type'], 'application/json');
    if (method !== 'HEAD') assert.equal(res.body, '{"message":"page not found"}\n');
  }
});

test('/_ping GET and HEAD', async () => {
  const { app } = setup();
  const get = await app.inject({ method: 'GET', url: '/_ping' });
  assert.equal(get.statusCode, 200);
  assert.equal(get.body, 'OK');
  assert.equal(get.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(get.headers['swarm'], 'inactive');
  assert.equal(get.headers['cache-control'], 'no-cache, no-store, must-revalidate');
  assert.equal(get.headers['pragma'], 'no-cache');
  assert.equal(get.headers['api-version'], '1.47');
  assert.equal(get.headers['builder-version'], undefined);
  const head = await app.inject({ method: 'HEAD', url: '/_ping' });
  assert.equal(head.statusCode, 200);
  assert.equal(head.body, '');
  assert.equal(head.headers['content-length'], '0');
  assert.equal(head.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(head.headers['ostype'], 'linux');
  assert.equal((await app.inject({ method: 'GET', url: '/v1.44/_ping' })).statusCode, 200);
});

test('each error kind maps to its status with a {"message"} body typed application/json', async () => {
  const { app, engine } = setup();
  const cases: [ErrorCode, number][] = [
    ['BERTH_INVALID_ARGUMENT', 400],
    ['BERTH_CONTAINER_NOT_FOUND', 404],
    ['BERTH_CONTAINER_EXISTS', 409],
    ['BERTH_CONTAINER_STATE', 409],
    ['BERTH_FIXTURE_UNAVAILABLE', 412],
    ['BERTH_NATIVE_UNAVAILABLE', 503],
    ['BERTH_NOT_IMPLEMENTED', 501],
    ['BERTH_INTERNAL', 500],
  ];
  for (const [code, status] of cases) {
    engine.failNext.set('info', new BerthError(code, `boom ${code} <&>`));
    const res = await app.inject({ method: 'GET', url: '/v1.47/info' });
    assert.equal(res.statusCode, status, code);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.body, JSON.stringify({ message: `boom ${code} <&>` }) + '\n');
  }
  // The kind is found through `cause`; plain errors are 500.
  engine.failNext.set('info', new Error('wrapped', { cause: new BerthError('BERTH_CONTAINER_NOT_FOUND', 'x') }));
  assert.equal((await app.inject({ method: 'GET', url: '/info' })).statusCode, 404);
  engine.failNext.set('info', new Error('plain'));
  assert.equal((await app.inject({ method: 'GET', url: '/info' })).statusCode, 500);
});

test('container create: 201, name validation, body validation naming the field', async () => {
  const { app, engine } = setup();
  const ok = await app.inject({
    method: 'POST',
    url: '/v1.47/containers/create?name=web',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ Image: 'busybox', Env: null, Cmd: ['sh'], Volumes: {}, Labels: {}, HostConfig: { Binds: null, Dns: [], Memory: 1024 }, NetworkingConfig: { EndpointsConfig: { default: { IPAMConfig: null } } } }),
  });
  assert.equal(ok.statusCode, 201, ok.body);
  assert.equal(ok.headers['content-type'], 'application/json');
  assert.match(ok.json().Id, /^[0-9a-f]{64}$/);
  assert.deepEqual(ok.json().Warnings, []);
  assert.equal(engine.calls.at(-1)?.args[0], 'web');

  const bad = (payload: string, query = '', ct = 'application/json') =>
    app.inject({ method: 'POST', url: `/v1.47/containers/create${query}`, headers: { 'content-type': ct }, payload });
  let res = await bad('{"Image":"busybox"}', '?name=-bad');
  assert.equal(res.statusCode, 400);
  assert.equal(res.json().message, 'Invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed');
  res = await bad('{"Image":"busybox","HostConfig":{"Memory":"lots"}}');
  assert.equal(res.statusCode, 400);
  assert.match(res.json().message, /HostConfig\.Memory/);
  res = await bad('{"Image":"busybox","Env":"A=b"}');
  assert.equal(res.statusCode, 400);
  assert.match(res.json().message, /field Env/);
  res = await bad('{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"n":{"Aliases":[1]}}}}');
  assert.equal(res.statusCode, 400);
  assert.match(res.json().message, /NetworkingConfig\.EndpointsConfig\.n\.Aliases\.0/);
  res = await bad('{"Image":"busybox"');
  assert.equal(res.statusCode, 400);
  assert.match(res.json().message, /^invalid JSON body/);
  res = await bad('{"Image":"busybox"} {}');
  assert.equal(res.statusCode, 400, 'trailing data');
  res = await bad('{"Image":"busybox"}', '', 'text/plain');
  assert.equal(res.statusCode, 400);
  assert.equal(res.json().message, "unsupported Content-Type header (text/plain): must be 'application/json'");
  res = await bad('');
  assert.equal(res.statusCode, 400);
  assert.equal(res.json().message, 'config cannot be empty in order to create a container');
  res = await bad('null');
  assert.equal(res.statusCode, 400);
  res = await bad('[1]');
  assert.equal(res.statusCode, 400);
  res = await bad(JSON.stringify({ Image: 'busybox', Env: ['x'.repeat(5 * 1024 * 1024)] }));
  assert.equal(res.statusCode, 400, 'oversized body');
  assert.equal(res.headers['content-type'], 'application/json');
  // the engine's 404 reaches the client as is: the CLI pulls on it
  res = await bad('{"Image":"nosuch"}');
  assert.equal(res.statusCode, 404);
  assert.equal(res.json().message, 'No such image: nosuch');
});

test('container lifecycle routes: statuses and query parsing', async () => {
  const { app, engine } = setup();
  const c = engine.add('web');
  const post = (url: string, extra: Record<string, unknown> = {}) => app.inject({ method: 'POST', url: `/v1.47${url}`, ...extra });

  assert.equal((await post(`/containers/web/start`)).statusCode, 204);
  assert.equal((await post(`/containers/web/start`)).statusCode, 304);
  const withBody = await post(`/containers/web/start`, { headers: { 'content-type': 'application/json' }, payload: '{"Binds":["/a:/b"]}' });
  assert.equal(withBody.statusCode, 400);
  assert.match(withBody.json().message, /non-empty request body/);
  assert.equal((await post(`/containers/web/start`, { headers: { 'content-type': 'application/json' }, payload: 'null' })).statusCode, 304);

  assert.equal((await post(`/containers/web/stop?t=3&signal=SIGINT`)).statusCode, 204);
  assert.deepEqual(engine.calls.at(-1), { method: 'stopContainer', args: ['web', { timeout: 3, signal: 'SIGINT' }] });
  assert.equal((await post(`/containers/web/stop`)).statusCode, 304);
  const badT = await post(`/containers/web/stop?t=soon`);
  assert.equal(badT.statusCode, 400);
  assert.match(badT.json().message, /\bt\b/);

  const kill = await post(`/containers/web/kill?signal=KILL`);
  assert.equal(kill.statusCode, 409);
  assert.equal(kill.json().message, `cannot kill container: web: container ${c.id} is not running`);
  assert.equal((await post(`/containers/web/restart?t=1`)).statusCode, 204);
  assert.equal((await post(`/containers/web/kill?signal=KILL`)).statusCode, 204);
  assert.equal(engine.calls.at(-1)?.args[1], 'KILL');

  assert.equal((await post(`/containers/web/pause`)).statusCode, 204);
  assert.equal((await post(`/containers/web/unpause`)).statusCode, 204);
  assert.equal((await post(`/containers/web/resize?h=24&w=80`)).statusCode, 200);
  const badResize = await post(`/containers/web/resize?h=x&w=80`);
  assert.equal(badResize.statusCode, 400);
  assert.match(badResize.json().message, /\bh\b/);
  assert.equal((await post(`/containers/web/resize?h=24`)).statusCode, 400);

  assert.equal((await post(`/containers/web/rename?name=web2`)).statusCode, 204);
  assert.equal((await post(`/containers/web2/rename?name=`)).statusCode, 400);
  // The name's rules are the engine's, checked after the container is found (dockerd's order).
  await post(`/containers/web2/rename?name=%2Fbad%20name`);
  assert.deepEqual(engine.calls.at(-1), { method: 'renameContainer', args: ['web2', '/bad name'] });
  await post(`/containers/bad%20name/rename?name=web2`);
  const top = await app.inject({ method: 'GET', url: '/v1.47/containers/web2/top' });
  assert.deepEqual(top.json().Titles, ['PID', 'CMD']);
  assert.equal(engine.calls.at(-1)?.args[1], '-ef');
  const kernel = await app.inject({ method: 'GET', url: '/containers/web2/kernel' });
  assert.equal(kernel.statusCode, 200);
  assert.equal(kernel.json().Pid, 4242);
  assert.deepEqual(engine.calls.at(-1), { method: 'containerKernel', args: ['web2'] });
  assert.equal((await app.inject({ method: 'GET', url: '/v1.47/containers/nosuch/kernel' })).statusCode, 404);

  const inspect = await app.inject({ method: 'GET', url: '/v1.47/containers/web2/json?size=1' });
  assert.equal(inspect.statusCode, 200);
  assert.deepEqual(engine.calls.at(-1), { method: 'inspectContainer', args: ['web2', { size: true }] });
  const missing = await app.inject({ method: 'GET', url: '/v1.47/containers/nosuch/json' });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.body, '{"message":"No such container: nosuch"}\n');

  const list = await app.inject({ method: 'GET', url: '/v1.47/containers/json?all=1&limit=2&size=0&filters=' + encodeURIComponent('{"status":{"running":true}}') });
  assert.equal(list.statusCode, 200);
  assert.equal(list.headers['content-type'], 'application/json');
  const args = engine.calls.at(-1)?.args[0] as { all: boolean; limit: number; size: boolean; filters: Map<string, Set<string>> };
  assert.equal(args.all, true);
  assert.equal(args.limit, 2);
  assert.deepEqual([...args.filters.get('status')!], ['running']);
  assert.equal((await app.inject({ method: 'GET', url: '/containers/json?filters=notjson' })).statusCode, 400);

  assert.equal((await post(`/containers/web2/start`)).statusCode, 204);
  const rm = await app.inject({ method: 'DELETE', url: '/v1.47/containers/web2' });
  assert.equal(rm.statusCode, 409);
  assert.equal((await app.inject({ method: 'DELETE', url: '/v1.47/containers/web2?force=1&v=1' })).statusCode, 204);
  assert.deepEqual(engine.calls.at(-1)?.args[1], { force: true, volumes: true });
});

test('wait: condition validated before headers, result as JSON', async () => {
  const { app, engine } = setup();
  engine.add('w');
  const bad = await app.inject({ method: 'POST', url: '/v1.47/containers/w/wait?condition=later' });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().message, 'invalid condition: "later"');
  const missing = await app.inject({ method: 'POST', url: '/v1.47/containers/nosuch/wait' });
  assert.equal(missing.statusCode, 404);
  const pending = app.inject({ method: 'POST', url: '/v1.47/containers/w/wait?condition=next-exit' });
  while (engine.waits.length === 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(engine.waits[0]!.condition, 'next-exit');
  engine.waits[0]!.resolve({ StatusCode: 3 });
  const res = await pending;
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'application/json');
  assert.equal(res.headers['api-version'], '1.47');
  assert.equal(res.body, '{"StatusCode":3}\n');
});

test('logs: stream choice, content types by version and tty, 400 without a stream', async () => {
  const { app, engine } = setup();
  engine.add('plain');
  engine.add('tty', { tty: true });
  const none = await app.inject({ method: 'GET', url: '/v1.47/containers/plain/logs' });
  assert.equal(none.statusCode, 400);
  assert.equal(none.json().message, 'Bad parameters: you must choose at least one stream');
  const mux = await app.inject({ method: 'GET', url: '/v1.47/containers/plain/logs?stdout=1&stderr=1&tail=5&since=1700000000.5&timestamps=1' });
  assert.equal(mux.statusCode, 200);
  assert.equal(mux.headers['content-type'], MULTIPLEXED_STREAM);
  const frames: [number, string][] = [];
  new Demuxer((t, p) => frames.push([t, p.toString()])).push(mux.rawPayload);
  assert.deepEqual(frames, [
    [1, 'line1\n'],
    [2, 'line2\n'],
  ]);
  assert.deepEqual(engine.calls.at(-1)?.args[1], { follow: false, stdout: true, stderr: true, since: 1700000000.5, until: 0, timestamps: true, details: false, tail: 5 });
  await app.inject({ method: 'GET', url: '/v1.47/containers/plain/logs?stdout=1&details=1' });
  assert.equal((engine.calls.at(-1)?.args[1] as { details: boolean }).details, true);
  const old = await app.inject({ method: 'GET', url: '/v1.41/containers/plain/logs?stdout=1' });
  assert.equal(old.headers['content-type'], RAW_STREAM);
  const tty = await app.inject({ method: 'GET', url: '/v1.47/containers/tty/logs?stdout=1&tail=all' });
  assert.equal(tty.headers['content-type'], RAW_STREAM);
  assert.equal(tty.body, 'line1\nline2\n');
  assert.equal((await app.inject({ method: 'GET', url: '/v1.47/containers/tty/logs?stdout=1&tail=x' })).statusCode, 400);
});

test('export streams the tar', async () => {
  const { app, engine } = setup();
  engine.add('c');
  const res = await app.inject({ method: 'GET', url: '/v1.47/containers/c/export' });
  assert.equal(res.statusCode, 200);
  assert.equal(res.body, 'tar-bytes');
  assert.equal((await app.inject({ method: 'GET', url: '/v1.47/containers/x/export' })).statusCode, 404);
});

test('exec create, detached start, resize, inspect', async () => {
  const { app, engine } = setup();
  engine.add('c', { running: true });
  const noCmd = await app.inject({ method: 'POST', url: '/v1.47/containers/c/exec', headers: { 'content-type': 'application/json' }, payload: '{"Cmd":[]}' });
  assert.equal(noCmd.statusCode, 400);
  assert.equal(noCmd.json().message, 'No exec command specified');
  const wrong = await app.inject({ method: 'POST', url: '/v1.47/containers/c/exec', headers: { 'content-type': 'application/json' }, payload: '{"Cmd":["sh"],"Tty":"yes"}' });
  assert.equal(wrong.statusCode, 400);
  assert.match(wrong.json().message, /field Tty/);
  const created = await app.inject({ method: 'POST', url: '/v1.47/containers/c/exec', headers: { 'content-type': 'application/json' }, payload: '{"Cmd":["sh"],"AttachStdout":true,"Env":null}' });
  assert.equal(created.statusCode, 201);
  const id = created.json().Id as string;
  const start = await app.inject({ method: 'POST', url: `/v1.47/exec/${id}/start`, headers: { 'content-type': 'application/json' }, payload: '{"Detach":true,"Tty":false}' });
  assert.equal(start.statusCode, 200);
  assert.equal(start.body, '');
  assert.equal((await app.inject({ method: 'POST', url: `/v1.47/exec/${id}/resize?h=10&w=20` })).statusCode, 200);
  assert.equal((await app.inject({ method: 'POST', url: `/v1.47/exec/${id}/resize?h=10&w=z` })).statusCode, 400);
  const inspect = await app.inject({ method: 'GET', url: `/v1.47/exec/${id}/json` });
  assert.equal(inspect.json().ID, id);
  const missing = await app.inject({ method: 'GET', url: `/v1.47/exec/nosuch/json` });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().message, 'No such exec instance: nosuch');
});

test('images: list, inspect and tag with slashes in names, delete, pull and push streams, load answers', async () => {
  const { app, engine } = setup();
  engine.images.set('library/busybox:latest', 'sha256:' + 'd'.repeat(64));
  const list = await app.inject({ method: 'GET', url: '/v1.47/images/json?all=1' });
  assert.equal(list.statusCode, 200);
  assert.equal(list.headers['content-type'], 'application/json');
  const inspect = await app.inject({ method: 'GET', url: '/v1.47/images/library/busybox:latest/json' });
  assert.equal(inspect.statusCode, 200, inspect.body);
  assert.equal(inspect.json().Id, 'sha256:' + 'd'.repeat(64));
  const missing = await app.inject({ method: 'GET', url: '/v1.47/images/no/such/json' });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().message, 'No such image: no/such');
  const tag = await app.inject({ method: 'POST', url: '/v1.47/images/library/busybox:latest/tag?repo=reg.local:5000/me/bb&tag=v1' });
  assert.equal(tag.statusCode, 201);
  assert.deepEqual(engine.calls.find((c) => c.method === 'tagImage')?.args, ['library/busybox:latest', 'reg.local:5000/me/bb', 'v1']);
  const rm = await app.inject({ method: 'DELETE', url: '/v1.47/images/reg.local:5000/me/bb:v1?force=1' });
  assert.equal(rm.statusCode, 200);
  assert.deepEqual(rm.json(), [{ Untagged: 'reg.local:5000/me/bb:v1' }, { Deleted: 'sha256:' + 'd'.repeat(64) }]);
  assert.equal((await app.inject({ method: 'GET', url: '/v1.47/images/busybox/nothing' })).statusCode, 404);
  const auth = Buffer.from(JSON.stringify({ username: 'u', password: 'p' })).toString('base64url');
  const pull = await app.inject({ method: 'POST', url: '/v1.47/images/create?fromImage=busybox&tag=latest', headers: { 'x-registry-auth': auth } });
  assert.equal(pull.statusCode, 200);
  assert.equal(pull.headers['content-type'], 'application/json');
  assert.deepEqual(pull.body.split('\r\n').filter(Boolean).map((l) => JSON.parse(l).status), ['Pulling from library/busybox', 'Pulling fs layer', 'Pull complete']);
  assert.deepEqual(engine.calls.find((c) => c.method === 'pullImage')?.args, ['busybox:latest', { username: 'u', password: 'p' }]);
  const denied = await app.inject({ method: 'POST', url: '/v1.47/images/create?fromImage=nosuch&tag=latest' });
  assert.equal(denied.statusCode, 404, 'an error before any output keeps its status');
  assert.match(denied.json().message, /^pull access denied for nosuch, repository does not exist or may require 'docker login'/);
  const late = await app.inject({ method: 'POST', url: '/v1.47/images/create?fromImage=late-fail' });
  assert.equal(late.statusCode, 200);
  assert.match(late.body.split('\r\n').filter(Boolean).at(-1)!, /"error":"filesystem layer verification failed for digest sha256:a+"/);
  const badAuth = await app.inject({ method: 'POST', url: '/v1.47/images/create?fromImage=busybox', headers: { 'x-registry-auth': '%%%' } });
  assert.equal(badAuth.statusCode, 400);
  const push = await app.inject({ method: 'POST', url: '/v1.47/images/reg.local:5000/me/bb/push?tag=v1', headers: { 'x-registry-auth': auth } });
  assert.equal(push.statusCode, 404, push.body);
  engine.images.set('reg.local:5000/me/bb:v1', 'sha256:' + 'd'.repeat(64));
  const push2 = await app.inject({ method: 'POST', url: '/v1.47/images/reg.local:5000/me/bb/push?tag=v1', headers: { 'x-registry-auth': auth } });
  assert.equal(push2.statusCode, 200, push2.body);
  assert.match(push2.body, /The push refers to repository \[reg.local:5000\/me\/bb\]/);
  assert.deepEqual(engine.calls.findLast((c) => c.method === 'pushImage')?.args, ['reg.local:5000/me/bb', 'v1', { username: 'u', password: 'p' }]);
  const load = await app.inject({ method: 'POST', url: '/v1.47/images/load?quiet=1', headers: { 'content-type': 'application/x-tar' }, payload: 'tar' });
  assert.equal(load.statusCode, 200); // save and load: routes/images/archive.test.ts
});

test('import: raw text/plain body, \\r\\n separated JSON stream, errors before and after output', async () => {
  const { app, engine } = setup();
  const imp = (payload: string) =>
    app.inject({ method: 'POST', url: '/v1.47/images/create?fromSrc=-&repo=me/img&tag=v1&message=hi&changes=CMD%20sh&changes=ENV%20A%3Db', headers: { 'content-type': 'text/plain' }, payload });
  const ok = await imp('x'.repeat(10 * 1024 * 1024)); // no JSON body limit on tar uploads
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.headers['content-type'], 'application/json');
  assert.equal(ok.body, `{"status":"Importing","progressDetail":{"current":${10 * 1024 * 1024}}}\r\n{"status":"sha256:${'c'.repeat(64)}"}\r\n`);
  assert.deepEqual(engine.calls.at(-1)?.args[0], { repo: 'me/img', tag: 'v1', message: 'hi', changes: ['CMD sh', 'ENV A=b'] });
  const early = await imp('bad-early');
  assert.equal(early.statusCode, 400);
  assert.equal(early.json().message, 'archive/tar: invalid tar header');
  const late = await imp('bad-late');
  assert.equal(late.statusCode, 200);
  const lines = late.body.split('\r\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(lines.at(-1), { errorDetail: { message: 'unexpected EOF' }, error: 'unexpected EOF' });
});

test('events: streamed one JSON object per line until `until`', async () => {
  const { app, engine } = setup();
  const ev = (n: number) => ({ Type: 'container', Action: 'start', Actor: { ID: String(n), Attributes: {} }, scope: 'local' as const, time: 1700000000 + n, timeNano: (1700000000 + n) * 1e9 });
  engine.pastEvents.push(ev(1), ev(2));
  const until = Date.now() / 1000 + 0.3;
  const pending = app.inject({ method: 'GET', url: `/v1.47/events?since=1700000002&until=${until.toFixed(3)}&filters=${encodeURIComponent('{"type":{"container":true}}')}` });
  while (engine.listeners === 0) await new Promise((r) => setTimeout(r, 5));
  engine.emit(ev(3));
  const res = await pending;
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'application/json');
  const lines = res.body.split('\n');
  assert.equal(lines.at(-1), '');
  assert.deepEqual(lines.slice(0, -1).map((l) => JSON.parse(l).Actor.ID), ['2', '3']);
  const opts = engine.calls.find((c) => c.method === 'events')?.args[0] as { filters: Map<string, Set<string>> };
  assert.deepEqual([...opts.filters.get('type')!], ['container']);
  assert.equal(engine.listeners, 0);
  assert.equal((await app.inject({ method: 'GET', url: '/v1.47/events?since=yesterday' })).statusCode, 400);
});

test('a null or empty body is the same as {} where a body is optional', async () => {
  const { app, engine } = setup();
  engine.add('c', { running: true });
  const created = await app.inject({ method: 'POST', url: '/v1.47/containers/c/exec', headers: { 'content-type': 'application/json' }, payload: '{"Cmd":["sh"]}' });
  const id = created.json().Id as string;
  for (const payload of ['{"Detach":true,"ConsoleSize":null,"Tty":null}', '{"Detach":true,"Unknown":[1]}']) {
    const res = await app.inject({ method: 'POST', url: `/v1.47/exec/${id}/start`, headers: { 'content-type': 'application/json' }, payload });
    assert.equal(res.statusCode, 200, payload);
  }
  // start takes `null` (4 bytes) or nothing
  engine.add('d');
  for (const payload of ['null', '']) {
    const res = await app.inject({ method: 'POST', url: '/v1.47/containers/d/start', headers: payload ? { 'content-type': 'application/json' } : {}, payload });
    assert.ok(res.statusCode === 204 || res.statusCode === 304, payload);
  }
});
