import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Client, ConnectError, DaemonError, readAll } from './client.js';
import { httpRequest } from './http1.js';

const dir = mkdtempSync(join(tmpdir(), `berth-http1-${process.pid}-`));
const sock = join(dir, 'd.sock');
const rawSock = join(dir, 'raw.sock');
let server: ReturnType<typeof createServer>;
let raw: Server;
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];
/** What the test daemon says on /_ping, whether it refuses newer versions (as docker does), whether HEAD /_ping works. */
const daemon = { version: '1.41', checks: true, headPing: true };

function handler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
    const url = req.url!.split('?')[0]!;
    const v = /^\/v(\d+\.\d+)\//.exec(url)?.[1];
    if (url === '/_ping') {
      if (req.method === 'HEAD' && !daemon.headPing) {
        res.writeHead(405);
        res.end();
        return;
      }
      res.writeHead(200, { 'Api-Version': daemon.version, 'Content-Type': 'text/plain' });
      res.end(req.method === 'HEAD' ? undefined : 'OK');
    } else if (daemon.checks && v && Number(v.split('.')[1]) > Number(daemon.version.split('.')[1])) {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message: `client version ${v} is too new. Maximum supported API version is ${daemon.version}` }));
    } else if (url.endsWith('/json-length')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ a: 1, echo: body }));
    } else if (url.endsWith('/chunked')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"parts":');
      setTimeout(() => res.end('["x","y"]}'), 20);
    } else if (url.endsWith('/err-json')) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"message":"No such container: x"}');
    } else if (url.endsWith('/err-json-charset')) {
      res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end('{"message":"m"}');
    } else if (url.endsWith('/err-empty')) {
      res.writeHead(404);
      res.end();
    } else if (url.endsWith('/no-content')) {
      res.writeHead(204);
      res.end();
    } else if (url.endsWith('/big')) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      const block = Buffer.alloc(64 * 1024, 0x61);
      let n = 0;
      const more = (): void => {
        while (n < 64) {
          n++;
          if (!res.write(block)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    } else {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(body);
    }
  });
}

before(async () => {
  server = createServer(handler);
  server.on('upgrade', (req, socket, head) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: '' });
    if (req.url!.includes('err-json')) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{"message":"no such"}');
      return;
    }
    socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello');
    if (head.length) socket.write(head);
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('end', () => socket.end());
  });
  await new Promise<void>((r) => server.listen(sock, r));
  // a server that speaks only the given raw bytes, then closes
  raw = createNetServer((s) => {
    s.once('data', (d: Buffer) => {
      const path = d.toString('latin1').split(' ')[1]!;
      if (path.endsWith('/eof-body')) s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-the-end');
      else if (path.endsWith('/cut')) s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
      else if (path.endsWith('/hangup')) s.end();
      else if (path.endsWith('/continue')) s.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n');
      else s.end('HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nboom\n');
    });
  });
  await new Promise<void>((r) => raw.listen(rawSock, r));
});

after(() => {
  server.close();
  raw.close();
  rmSync(dir, { recursive: true, force: true });
});

test('negotiates down to the server version and sends JSON bodies with a length', async () => {
  const c = new Client(`unix://${sock}`);
  const r = await c.post<{ a: number; echo: string }>('/json-length', { q: 'a b', flag: true, list: ['x', 'y'] }, { Image: 'busybox' });
  assert.deepEqual(r, { a: 1, echo: '{"Image":"busybox"}' });
  const ping = seen.find((s) => s.url === '/_ping')!;
  assert.equal(ping.method, 'HEAD');
  const last = seen[seen.length - 1]!;
  assert.equal(last.url, '/v1.41/json-length?q=a%20b&flag=1&list=x&list=y');
  assert.equal(last.headers['content-type'], 'application/json');
  assert.equal(last.headers['content-length'], '19');
  assert.equal(last.headers.host, 'api.moby.localhost');
  assert.match(last.headers['user-agent']!, /^Berth-Client\//);
});

test('the ping comes first, once; later requests use the negotiated version', async () => {
  const since = (n: number) => seen.slice(n).map((r) => `${r.method} ${r.url}`);
  try {
    daemon.version = '1.47';
    let n = seen.length;
    assert.deepEqual(await new Client(`unix://${sock}`).post('/json-length', undefined, { x: 1 }), { a: 1, echo: '{"x":1}' });
    assert.deepEqual(since(n), ['HEAD /_ping', 'POST /v1.47/json-length']);
    daemon.version = '1.50';
    n = seen.length;
    const c = new Client(`unix://${sock}`);
    await Promise.all([c.get('/json-length'), c.get('/json-length')]);
    assert.deepEqual(since(n), ['HEAD /_ping', 'GET /v1.47/json-length', 'GET /v1.47/json-length'], 'a newer daemon: the client max');
  } finally {
    daemon.version = '1.41';
  }
});

test('ping: GET when HEAD is refused; a daemon without Api-Version is taken as 1.24', async () => {
  try {
    daemon.headPing = false;
    const n = seen.length;
    const c = new Client(`unix://${sock}`);
    await c.get('/json-length');
    assert.deepEqual(
      seen.slice(n).filter((r) => r.url === '/_ping').map((r) => r.method),
      ['HEAD', 'GET'],
    );
    assert.equal(c.apiVersion, '1.41');
    assert.equal(c.serverApiVersion, '1.41');
  } finally {
    daemon.headPing = true;
  }
  const r = new Client(`unix://${rawSock}`);
  await r.negotiate();
  assert.equal(r.apiVersion, '1.24');
});

test('chunked responses are de-chunked; 204 has no body; POST without body sends Content-Length: 0', async () => {
  const c = new Client(`unix://${sock}`, '1.41');
  assert.deepEqual(await c.get('/chunked'), { parts: ['x', 'y'] });
  assert.equal(await c.post('/no-content'), undefined);
  assert.equal(seen[seen.length - 1]!.headers['content-length'], '0');
});

test('errors: JSON message only for exactly application/json', async () => {
  const c = new Client(`unix://${sock}`, '1.41');
  await assert.rejects(c.get('/err-json'), (e: unknown) => e instanceof DaemonError && e.message === 'Error response from daemon: No such container: x' && e.status === 404);
  await assert.rejects(c.get('/err-json-charset'), (e: unknown) => e instanceof DaemonError && e.daemonMessage === '{"message":"m"}');
  await assert.rejects(c.get('/err-empty'), /request returned Not Found for API route and version \/v1\.41\/err-empty/);
  const r = new Client(`unix://${rawSock}`, '1.41');
  await assert.rejects(r.get('/other'), (e: unknown) => e instanceof DaemonError && e.daemonMessage === 'boom' && e.status === 500);
});

test('a body until the end of the connection; a cut body is an error; a hang-up is a connect error', async () => {
  const r = new Client(`unix://${rawSock}`, '1.41');
  assert.equal(await r.get('/eof-body'), 'until-the-end');
  await assert.rejects(r.get('/cut'), /aborted/);
  await assert.rejects(r.get('/hangup'), (e: unknown) => e instanceof ConnectError);
  const res = await httpRequest({ method: 'GET', path: '/continue', headers: {}, socketPath: rawSock });
  assert.equal(res.kind, 'response');
  assert.equal((await readAll(res.res)).toString(), 'abc');
});

test('a missing socket is a ConnectError with docker\'s wording', async () => {
  const c = new Client(`unix://${join(dir, 'nope.sock')}`);
  await assert.rejects(c.get('/x'), (e: unknown) => e instanceof ConnectError && /^Cannot connect to the Berth daemon at unix:\/\//.test(e.message));
});

test('stream bodies go chunked; large responses stream with backpressure', async () => {
  const c = new Client(`unix://${sock}`, '1.41');
  const body = Readable.from([Buffer.from('part1-'), Buffer.from('part2')]);
  const res = await c.stream('POST', '/echo', { body, headers: { 'Content-Type': 'text/plain' } });
  assert.equal((await readAll(res)).toString(), 'part1-part2');
  assert.equal(seen[seen.length - 1]!.headers['transfer-encoding'], 'chunked');
  const big = await c.stream('GET', '/big');
  let n = 0;
  for await (const chunk of big) {
    n += (chunk as Buffer).length;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(n, 64 * 64 * 1024);
});

test('hijack: 101 gives the raw socket and the bytes past the headers', async () => {
  const c = new Client(`unix://${sock}`, '1.41');
  const h = await c.hijack('/containers/x/attach', { query: { stream: '1' } });
  const req = seen[seen.length - 1]!;
  assert.equal(req.headers.upgrade, 'tcp');
  assert.equal(req.headers.connection, 'Upgrade');
  let got = h.head.toString();
  h.socket.end('echo-me');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.socket.isPaused(), true, 'handed over paused');
  h.socket.on('data', (d: Buffer) => (got += d.toString()));
  h.socket.resume();
  await new Promise((r) => h.socket.on('close', r));
  assert.equal(got, 'helloecho-me');
  await assert.rejects(c.hijack('/err-json'), (e: unknown) => e instanceof DaemonError && e.status === 404);
});
