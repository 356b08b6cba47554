import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { silentLogger } from '@berth/log';
import { PluginRegistry, serveAuthzPlugin, type PluginServer } from '@berth/plugin';
import type { AuthzRequest, AuthzResponse } from '@berth/plugin-api';
import { createServer } from '../server.js';
import { TestEngine } from '../test-engine.js';
import { bodyShown, createAuthzChain, requestHeaders } from './authz.js';
import { listen } from './listen.js';

interface Seen {
  plugin: string;
  kind: 'req' | 'res';
  r: AuthzRequest;
}

type Verdict = (r: AuthzRequest) => AuthzResponse | Promise<AuthzResponse>;

/** Real plugins served by the SDK in a temp dir, a real berthd server on a unix socket. */
async function setup(t: { after(fn: () => Promise<void> | void): void }, plugins: Record<string, { req?: Verdict; res?: Verdict }>, chain: string[]) {
  const dir = mkdtempSync(join(tmpdir(), `berthd-authz-${process.pid}-`));
  const seen: Seen[] = [];
  const servers = new Map<string, PluginServer>();
  const start = async (name: string): Promise<void> => {
    const p = plugins[name]!;
    servers.set(
      name,
      await serveAuthzPlugin(
        {
          async authZReq(r) {
            seen.push({ plugin: name, kind: 'req', r });
            return p.req ? p.req(r) : { Allow: true };
          },
          async authZRes(r) {
            seen.push({ plugin: name, kind: 'res', r });
            return p.res ? p.res(r) : { Allow: true };
          },
        },
        { name, dirs: [dir] },
      ),
    );
  };
  for (const name of Object.keys(plugins)) await start(name);
  const registry = new PluginRegistry({ socketDirs: [dir], specDirs: [], retry: { timeoutMs: 300, baseMs: 50, capMs: 100 } });
  const authz = createAuthzChain(chain, { logger: silentLogger(), lookup: (n) => registry.authz(n) });
  const engine = new TestEngine();
  const app = createServer({ engine, logger: silentLogger(), authz });
  const sock = join(dir, 'berth.sock');
  const listener = await listen(app, [`unix://${sock}`]);
  t.after(async () => {
    await listener.close();
    await app.close();
    registry.close();
    for (const s of servers.values()) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const stop = async (name: string): Promise<void> => {
    await servers.get(name)!.close();
    servers.delete(name);
  };
  return { engine, sock, seen, stop, start };
}

/** One request written as raw bytes (chunked bodies), the whole answer as text. */
function rawCall(sock: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(sock);
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    // Not half-closed: the server answers, then closes (Connection: close).
    s.write(bytes);
  });
}

function call(sock: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request({ socketPath: sock, method, path, headers: { ...headers, ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (s += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: s }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

test('headers as Go flattens them: canonical names, last value wins, no Host/Transfer-Encoding, no credentials', () => {
  assert.deepEqual(
    requestHeaders([
      'host', 'x',
      'content-type', 'application/json',
      'x-custom-THING', 'a',
      'X-Custom-Thing', 'b',
      'user-agent', 'Docker-Client/20.10.24 (linux)',
      'Authorization', 'Basic eA==',
      'x-registry-auth', 'secret',
      'X-REGISTRY-CONFIG', 'secret',
      'Transfer-Encoding', 'chunked',
    ]),
    { 'Content-Type': 'application/json', 'X-Custom-Thing': 'b', 'User-Agent': 'Docker-Client/20.10.24 (linux)' },
  );
});

test('body rules: any application/json media type, whatever the length; never for /auth', () => {
  assert.equal(bodyShown('/v1.41/containers/create', 'application/json'), true);
  assert.equal(bodyShown('/v1.41/containers/create', 'Application/JSON; charset=utf-8'), true, 'the JSON parser takes it: the plugin must see it');
  assert.equal(bodyShown('/containers/create', 'application/json'), true);
  assert.equal(bodyShown('/v1.41/containers/create', 'text/plain'), false);
  assert.equal(bodyShown('/v1.41/containers/create', undefined), false);
  assert.equal(bodyShown('/v1.41/auth', 'application/json'), false);
  assert.equal(bodyShown('/auth?x=1', 'application/json'), false);
});

test('a JSON body the plugin is not shown never reaches the handler: chunked bodies are read, oversized ones refused (CVE-2024-41110, CVE-2026-34040)', async (t) => {
  const deny: Verdict = (r) => {
    const body = r.RequestBody === undefined ? '' : Buffer.from(r.RequestBody, 'base64').toString();
    return /"Privileged":true/.test(body) ? { Allow: false, Msg: 'no privileged' } : { Allow: true };
  };
  const { sock, engine } = await setup(t, { guard: { req: deny } }, ['guard']);
  const privileged = JSON.stringify({ Image: 'busybox', HostConfig: { Privileged: true } });
  const created = (): number => engine.calls.filter((c) => c.method === 'createContainer').length;
  // Chunked (no Content-Length), with a charset parameter: the plugin sees the body and says no.
  const chunked = await rawCall(sock, 'POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' + `${Buffer.byteLength(privileged).toString(16)}\r\n${privileged}\r\n0\r\n\r\n`);
  assert.match(chunked, /^HTTP\/1\.1 403 /);
  assert.match(chunked, /authorization denied by plugin guard: no privileged/);
  // Padded past the plugin's limit: refused, not passed on without its body.
  const padded = JSON.stringify({ Image: 'busybox', HostConfig: { Privileged: true }, Labels: { pad: 'x'.repeat(1 << 20) } });
  const big = await call(sock, 'POST', '/v1.41/containers/create', { 'Content-Type': 'application/json' }, padded);
  assert.equal(big.status, 400);
  assert.equal(JSON.parse(big.body).message, `request body too large for authorization plugin: size exceeds ${1 << 20} bytes`);
  assert.equal(created(), 0, 'no create reached the engine');
  // A harmless chunked body still reaches the handler whole.
  const ok = JSON.stringify({ Image: 'busybox', Cmd: ['true'] });
  const fine = await rawCall(sock, 'POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' + `${Buffer.byteLength(ok).toString(16)}\r\n${ok}\r\n0\r\n\r\n`);
  assert.match(fine, /^HTTP\/1\.1 201 /);
  assert.deepEqual(engine.calls.find((c) => c.method === 'createContainer')?.args, [undefined, { Image: 'busybox', Cmd: ['true'] }]);
});

test('AuthZReq then AuthZRes through the chain in order; the body reaches the plugin and, unconsumed, the handler', async (t) => {
  const { sock, seen, engine } = await setup(t, { first: {}, second: {} }, ['first', 'second', 'first']);
  const body = JSON.stringify({ Image: 'busybox', Cmd: ['true'] });
  const res = await call(sock, 'POST', '/v1.41/containers/create?name=web', { 'Content-Type': 'application/json', 'User-Agent': 'test/1', 'X-Registry-Auth': 'x' }, body);
  assert.equal(res.status, 201, res.body);
  const created = JSON.parse(res.body) as { Id: string };
  assert.deepEqual(engine.calls.find((c) => c.method === 'createContainer')?.args, ['web', { Image: 'busybox', Cmd: ['true'] }]);
  // duplicates dropped: first, second; requests then responses
  assert.deepEqual(seen.map((s) => `${s.plugin}:${s.kind}`), ['first:req', 'second:req', 'first:res', 'second:res']);
  const rq = seen[0]!.r;
  assert.deepEqual(rq, {
    RequestMethod: 'POST',
    RequestUri: '/v1.41/containers/create?name=web',
    RequestBody: b64(body),
    RequestHeaders: { 'Content-Type': 'application/json', 'User-Agent': 'test/1', 'Content-Length': String(body.length), Connection: 'keep-alive' },
  });
  const rs = seen[2]!.r;
  assert.equal(rs.ResponseStatusCode, 201);
  assert.equal(rs.RequestBody, b64(body));
  assert.deepEqual(JSON.parse(Buffer.from(rs.ResponseBody!, 'base64').toString()), created);
  assert.equal(rs.ResponseHeaders?.['Content-Type'], 'application/json');
  assert.equal(rs.ResponseHeaders?.['Api-Version'], '1.47');
  assert.equal(rs.ResponseHeaders?.['Ostype'], 'linux');

  // JSON with a charset parameter is JSON to the route's parser, so the plugin is shown it too.
  seen.length = 0;
  const r2 = await call(sock, 'POST', '/containers/create', { 'Content-Type': 'application/json; charset=utf-8' }, body);
  assert.equal(r2.status, 201, r2.body);
  assert.equal(seen[0]!.r.RequestBody, b64(body));
  assert.equal(seen[2]!.r.ResponseBody, b64(r2.body), 'the answer is exactly application/json');

  // /_ping and a GET: no body, every request asked.
  seen.length = 0;
  assert.equal((await call(sock, 'GET', '/_ping')).body, 'OK');
  assert.deepEqual(seen.map((s) => [s.kind, s.r.RequestUri, s.r.ResponseStatusCode, s.r.ResponseBody]), [
    ['req', '/_ping', undefined, undefined],
    ['req', '/_ping', undefined, undefined],
    ['res', '/_ping', 200, undefined],
    ['res', '/_ping', 200, undefined],
  ]);
});

test('a route that reads the raw body (cp upload) still gets every byte of a JSON-typed body the plugin was shown', async (t) => {
  const { sock, seen, engine } = await setup(t, { p: {} }, ['p']);
  const c = engine.add('a');
  const body = '{"not":"a tar"}';
  const res = await call(sock, 'PUT', `/v1.41/containers/${c.id}/archive?path=/tmp`, { 'Content-Type': 'application/json' }, body);
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(engine.calls.find((x) => x.method === 'putContainerArchive')?.args.slice(1, 3), ['/tmp', body.length]);
  assert.equal(Buffer.from(seen[0]!.r.RequestBody!, 'base64').toString(), body);
});

test('a denial in AuthZReq is a 403 in Docker words, the handler does not run, later plugins are not asked, no AuthZRes', async (t) => {
  const deny: Verdict = (r) => (r.RequestMethod === 'DELETE' ? { Allow: false, Msg: 'volumes stay' } : { Allow: true });
  const { sock, seen, engine } = await setup(t, { a: {}, b: { req: deny }, c: {} }, ['a', 'b', 'c']);
  const res = await call(sock, 'DELETE', '/v1.41/volumes/data');
  assert.equal(res.status, 403);
  assert.equal(res.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(res.body), { message: 'authorization denied by plugin b: volumes stay' });
  assert.equal(engine.calls.filter((c) => c.method === 'removeVolume').length, 0);
  assert.deepEqual(seen.map((s) => `${s.plugin}:${s.kind}`), ['a:req', 'b:req']);
  // A denied JSON body is read (not left on the connection): the next request on it works.
  const body = JSON.stringify({ Image: 'busybox', HostConfig: { Privileged: true } });
  const deny2 = await call(sock, 'DELETE', '/containers/x', { 'Content-Type': 'application/json' }, body);
  assert.equal(deny2.status, 403);
  assert.equal(Buffer.from(seen.at(-1)!.r.RequestBody!, 'base64').toString(), body);
});

test('AuthZRes can refuse an answer (error answers included): 403 replaces it; a failing plugin: 500', async (t) => {
  const { sock, seen } = await setup(t, { r: { res: (x) => (x.ResponseStatusCode === 404 ? { Allow: false, Msg: 'hide 404s' } : x.RequestUri === '/info' ? { Allow: false } : x.RequestUri === '/version' ? Promise.reject(new Error('audit log full')) : { Allow: true }) } }, ['r']);
  const nf = await call(sock, 'GET', '/v1.41/containers/nope/json');
  assert.equal(nf.status, 403);
  assert.deepEqual(JSON.parse(nf.body), { message: 'authorization denied by plugin r: hide 404s' });
  const seenRes = seen.find((s) => s.kind === 'res')!.r;
  assert.equal(seenRes.ResponseStatusCode, 404);
  assert.match(Buffer.from(seenRes.ResponseBody!, 'base64').toString(), /No such container: nope/);
  const info = await call(sock, 'GET', '/info');
  assert.equal(info.status, 403);
  assert.deepEqual(JSON.parse(info.body), { message: 'authorization denied by plugin r: ' });
  const v = await call(sock, 'GET', '/version');
  assert.equal(v.status, 500);
  assert.deepEqual(JSON.parse(v.body), { message: 'plugin r failed with error: AuthZPlugin.AuthZRes: audit log full' });
  assert.equal((await call(sock, 'GET', '/_ping')).body, 'OK');
});

test('a plugin that throws, stops or is missing: 500 "plugin <name> failed with error: ..."; when it comes back, requests work', async (t) => {
  let broken = true;
  const { sock, stop, start, engine } = await setup(
    t,
    {
      ok: {},
      bad: {
        req: () => {
          if (broken) throw new Error('policy store offline');
          return { Allow: true };
        },
      },
    },
    ['ok', 'bad'],
  );
  const r1 = await call(sock, 'GET', '/v1.41/containers/json');
  assert.equal(r1.status, 500);
  assert.deepEqual(JSON.parse(r1.body), { message: 'plugin bad failed with error: AuthZPlugin.AuthZReq: policy store offline' });
  assert.equal(engine.calls.filter((c) => c.method === 'listContainers').length, 0);
  await stop('bad');
  const r2 = await call(sock, 'GET', '/v1.41/containers/json');
  assert.equal(r2.status, 500);
  assert.match(JSON.parse(r2.body).message, /^plugin bad failed with error: AuthZPlugin\.AuthZReq: unix:\/\/.*\/bad\.sock\/AuthZPlugin\.AuthZReq: connect (ENOENT|ECONNREFUSED)/);
  broken = false;
  await start('bad');
  const r3 = await call(sock, 'GET', '/v1.41/containers/json');
  assert.equal(r3.status, 200, r3.body);
  assert.equal(engine.calls.filter((c) => c.method === 'listContainers').length, 1);
});

test('a plugin that was never there fails every request (after the lookup retry), /_ping included', async (t) => {
  const { sock } = await setup(t, { ok: {} }, ['ok', 'ghost']);
  const t0 = Date.now();
  const r = await call(sock, 'GET', '/_ping');
  assert.equal(r.status, 500);
  assert.deepEqual(JSON.parse(r.body), { message: 'plugin ghost failed with error: plugin "ghost" not found' });
  assert.ok(Date.now() - t0 >= 150, 'looked up again for a while');
});

test('hijacked requests (Connection: Upgrade) go through AuthZReq with exec start\'s JSON body; a denial is a JSON 403 before any hijack', async (t) => {
  const { sock, seen, engine } = await setup(t, { h: { req: (r) => ({ Allow: !(r.RequestUri ?? '').includes('/attach'), Msg: 'no attach' }) } }, ['h']);
  const c = engine.add('a', { running: true });
  const ex = await call(sock, 'POST', `/v1.41/containers/${c.id}/exec`, { 'Content-Type': 'application/json' }, JSON.stringify({ Cmd: ['sh'], AttachStdout: true }));
  assert.equal(ex.status, 201, ex.body);
  const execId = (JSON.parse(ex.body) as { Id: string }).Id;
  const upgrade = (path: string, body?: string) =>
    new Promise<{ status: number; socket?: Socket; body?: string }>((resolve, reject) => {
      const r = request({
        socketPath: sock,
        method: 'POST',
        path,
        headers: { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Type': 'application/json', ...(body ? { 'Content-Length': String(body.length) } : {}) },
      });
      r.on('upgrade', (res, socket) => resolve({ status: res.statusCode ?? 0, socket: socket as Socket }));
      r.on('response', (res) => {
        let s = '';
        res.on('data', (d: Buffer) => (s += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: s }));
      });
      r.on('error', reject);
      r.end(body);
    });
  const startBody = JSON.stringify({ Detach: false, Tty: false });
  seen.length = 0;
  const up = await upgrade(`/v1.41/exec/${execId}/start`, startBody);
  assert.equal(up.status, 101);
  up.socket!.destroy();
  assert.equal(seen.length, 1, 'AuthZReq only');
  assert.equal(seen[0]!.r.RequestUri, `/v1.41/exec/${execId}/start`);
  assert.equal(Buffer.from(seen[0]!.r.RequestBody!, 'base64').toString(), startBody);
  assert.equal(seen[0]!.r.RequestHeaders?.['Upgrade'], 'tcp');
  assert.deepEqual(engine.calls.find((x) => x.method === 'startExec')?.args[1], { Detach: false, Tty: false });

  const denied = await upgrade(`/v1.41/containers/${c.id}/attach?stream=1&stdout=1`);
  assert.equal(denied.status, 403);
  assert.deepEqual(JSON.parse(denied.body!), { message: 'authorization denied by plugin h: no attach' });
  assert.equal(engine.calls.filter((x) => x.method === 'attachContainer').length, 0);
});

test('without plugins the server has no authz hooks (nothing on the request path)', async () => {
  const app = createServer({ engine: new TestEngine(), logger: silentLogger() });
  await app.ready();
  const hooks = (a: typeof app): string => a.printRoutes({ includeHooks: true });
  const withAuthz = createServer({ engine: new TestEngine(), logger: silentLogger(), authz: createAuthzChain(['x'], { logger: silentLogger() }) });
  await withAuthz.ready();
  assert.match(hooks(app), /onSend/);
  assert.doesNotMatch(hooks(app), /authzResponse/);
  assert.match(hooks(withAuthz), /authzResponse/);
  await app.close();
  await withAuthz.close();
});
