import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { login, loginDomain } from './index.js';

async function serve(handler: (req: IncomingMessage, res: ServerResponse, domain: string) => void): Promise<{ domain: string; close(): Promise<void> }> {
  let domain = '';
  const server = createServer((req, res) => handler(req, res, domain));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  domain = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    domain,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

test('loginDomain: scheme and path dropped, Docker Hub names are docker.io', () => {
  assert.equal(loginDomain('https://index.docker.io/v1/'), 'docker.io');
  assert.equal(loginDomain(undefined), 'docker.io');
  assert.equal(loginDomain('http://127.0.0.1:5000/v2/'), '127.0.0.1:5000');
  assert.equal(loginDomain('registry.example:443'), 'registry.example:443');
});

test('Bearer registry: a token for the account, then /v2/ with it; a refused password is the token service error', async () => {
  const seen: string[] = [];
  const srv = await serve((req, res, domain) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push(`${url.pathname} ${req.headers.authorization ?? '-'}`);
    if (url.pathname === '/token') {
      assert.equal(url.searchParams.get('account'), 'bob');
      assert.equal(url.searchParams.get('service'), 'test-registry');
      if (req.headers.authorization !== basic('bob', 'right')) {
        res.writeHead(401, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] }));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ token: 'tok-1', refresh_token: 'refresh-1' }));
    }
    if (req.headers.authorization === 'Bearer tok-1') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end('{}');
    }
    res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${domain}/token",service="test-registry"` });
    res.end();
  });
  try {
    const ok = await login({ username: 'bob', password: 'right', serveraddress: `http://${srv.domain}` });
    assert.deepEqual(ok, { Status: 'Login Succeeded', IdentityToken: '' });
    assert.ok(seen.includes('/v2/ Bearer tok-1'), 'the token is tried on /v2/');
    await assert.rejects(login({ username: 'bob', password: 'wrong', serveraddress: srv.domain }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'BERTH_REGISTRY_UNAUTHORIZED');
      assert.match(err.message, /^Get "http:\/\/127\.0\.0\.1:\d+\/token": unauthorized: incorrect username or password$/);
      return true;
    });
  } finally {
    await srv.close();
  }
});

test('Basic registry: 401 with the credentials is refused in docker words; no challenge at all is a success', async () => {
  const srv = await serve((req, res) => {
    if (req.headers.authorization === basic('amy', 'pw')) {
      res.writeHead(200);
      return res.end('{}');
    }
    res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
    res.end();
  });
  const open = await serve((_req, res) => {
    res.writeHead(200);
    res.end('{}');
  });
  try {
    assert.equal((await login({ username: 'amy', password: 'pw', serveraddress: srv.domain })).Status, 'Login Succeeded');
    await assert.rejects(login({ username: 'amy', password: 'nope', serveraddress: srv.domain }), {
      code: 'BERTH_REGISTRY_UNAUTHORIZED',
      message: `login attempt to http://${srv.domain}/v2/ failed with status: 401 Unauthorized`,
    });
    assert.equal((await login({ username: 'x', password: 'y', serveraddress: open.domain })).Status, 'Login Succeeded');
  } finally {
    await srv.close();
    await open.close();
  }
});
