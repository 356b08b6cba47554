import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { silentLogger } from '@berth/log';
import { Demuxer, MULTIPLEXED_STREAM, RAW_STREAM } from '@berth/api/wire';
import { createServer } from './server.js';
import { checkExposure, listen, parseHost } from './http/listen.js';
import { parseConfigFile, parseFlags } from './config.js';
import { TestEngine } from './test-engine.js';

async function setup(t: { after(fn: () => Promise<void> | void): void }) {
  const dir = mkdtempSync(join(tmpdir(), `berthd-${process.pid}-`));
  const sock = join(dir, 'berth.sock');
  const engine = new TestEngine();
  const app = createServer({ engine, logger: silentLogger() });
  const listener = await listen(app, [`unix://${sock}`]);
  t.after(async () => {
    await listener.close();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { engine, app, sock, listener, dir };
}

function req(sock: string, method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const r = request({ socketPath: sock, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } });
  if (body !== undefined) r.write(body);
  r.end();
  return r;
}

const readAll = (res: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let s = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (s += d));
    res.on('end', () => resolve(s));
    res.on('error', reject);
  });

const upgrade = (sock: string, path: string, body?: string, headers: Record<string, string> = {}) =>
  new Promise<{ res: IncomingMessage; socket: Socket; head: Buffer } | { res: IncomingMessage; socket?: undefined; head?: undefined }>((resolve, reject) => {
    const r = req(sock, 'POST', path, { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Type': body ? 'application/json' : 'text/plain', ...headers }, body);
    r.on('upgrade', (res, socket, head) => resolve({ res, socket: socket as Socket, head }));
    r.on('response', (res) => resolve({ res }));
    r.on('error', reject);
  });

function collect(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

test('parseHost: unix and tcp forms', () => {
  assert.deepEqual(parseHost('unix:///run/berth/berth.sock'), { kind: 'unix', path: '/run/berth/berth.sock' });
  assert.deepEqual(parseHost('tcp://127.0.0.1:2375'), { kind: 'tcp', host: '127.0.0.1', port: 2375 });
  assert.deepEqual(parseHost('tcp://[::1]:2375'), { kind: 'tcp', host: '::1', port: 2375 });
  assert.throws(() => parseHost('unix://relative.sock'), /absolute/);
  assert.throws(() => parseHost('ftp://x'), /invalid host/);
});

test('unix socket is 0660; a live one is refused, a stale socket file is replaced; close removes it', async (t) => {
  const { sock, app } = await setup(t);
  assert.equal(statSync(sock).mode & 0o777, 0o660);
  const res = await new Promise<IncomingMessage>((resolve) => req(sock, 'GET', '/_ping').on('response', resolve));
  assert.equal(await readAll(res), 'OK');
  // A second daemon on the same path must not take the socket from the first.
  await assert.rejects(listen(app, [`unix://${sock}`]), (err: Error & { code?: string }) => err.code === 'BERTH_DAEMON_RUNNING');
  // A socket file nobody listens on (bound, never listening: what a killed daemon leaves) is replaced.
  const stale = `${sock}.stale`;
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stale]);
  const other = await listen(app, [`unix://${stale}`]);
  assert.equal(statSync(stale).mode & 0o777, 0o660);
  await other.close();
  assert.equal(existsSync(stale), false);
});

test('tcp listener on 127.0.0.1 with an ephemeral port', async (t) => {
  const engine = new TestEngine();
  const app = createServer({ engine, logger: silentLogger() });
  const l = await listen(app, ['tcp://127.0.0.1:0']);
  t.after(() => l.close());
  const [host, port] = l.addresses[0]!.split(':');
  const res = await fetch(`http://${host}:${port}/v1.47/version`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.equal(res.headers.get('server'), 'Berth/0.1.0-test (linux)');
});

test('wait sends 200 and application/json before the container exits', async (t) => {
  const { sock, engine } = await setup(t);
  engine.add('w');
  const r = req(sock, 'POST', '/v1.47/containers/w/wait?condition=next-exit');
  const res = await new Promise<IncomingMessage>((resolve) => r.on('response', resolve));
  // Headers arrived while the wait is still pending.
  assert.equal(engine.waits.length, 1);
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'application/json');
  assert.equal(res.headers['api-version'], '1.47');
  const body = readAll(res);
  engine.waits[0]!.resolve({ StatusCode: 7 });
  assert.equal(await body, '{"StatusCode":7}\n');
  assert.equal(engine.waits[0]!.cancelled, false);
});

test('wait: a client that disconnects early cancels the waiter', async (t) => {
  const { sock, engine } = await setup(t);
  engine.add('w');
  const r = req(sock, 'POST', '/v1.47/containers/w/wait');
  await new Promise<IncomingMessage>((resolve) => r.on('response', resolve));
  r.on('error', () => {});
  r.destroy();
  for (let i = 0; i < 100 && !engine.waits[0]!.cancelled; i++) await new Promise((res) => setTimeout(res, 10));
  assert.equal(engine.waits[0]!.cancelled, true);
});

test('attach with Upgrade: 101, multiplexed frames, stdin echoed, half-close ends the session', async (t) => {
  const { sock, engine } = await setup(t);
  engine.add('a');
  const up = await upgrade(sock, '/v1.47/containers/a/attach?stream=1&stdin=1&stdout=1&stderr=1');
  assert.ok(up.socket, `expected an upgrade, got ${up.res.statusCode}`);
  assert.equal(up.res.statusCode, 101);
  assert.equal(up.res.statusMessage, 'UPGRADED');
  assert.equal(up.res.headers['content-type'], MULTIPLEXED_STREAM);
  assert.equal(up.res.headers['connection'], 'Upgrade');
  assert.equal(up.res.headers['upgrade'], 'tcp');
  assert.equal(up.res.headers['api-version'], '1.47');
  const all = collect(up.socket);
  up.socket.write('abc');
  await new Promise((r) => setTimeout(r, 50));
  up.socket.end();
  const bytes = Buffer.concat([up.head, await all]);
  const frames: [number, string][] = [];
  new Demuxer((type, p) => frames.push([type, p.toString()])).push(bytes);
  assert.deepEqual(frames, [
    [1, 'hello\n'],
    [1, 'abc'],
    [2, 'bye\n'],
  ]);
  assert.deepEqual(engine.calls.find((c) => c.method === 'attachContainer')?.args[1], { stdin: true, stdout: true, stderr: true, stream: true, logs: false, detachKeys: undefined });
});

test('attach with Upgrade below API 1.42 and with a TTY says raw-stream', async (t) => {
  const { sock, engine } = await setup(t);
  engine.add('a');
  engine.add('t', { tty: true });
  for (const [path, type] of [
    ['/v1.41/containers/a/attach?stream=1&stdout=1', RAW_STREAM],
    ['/v1.47/containers/t/attach?stream=1&stdout=1', RAW_STREAM],
    ['/containers/a/attach?stream=1&stdout=1', MULTIPLEXED_STREAM],
  ] as const) {
    const up = await upgrade(sock, path);
    assert.equal(up.res.statusCode, 101, path);
    assert.equal(up.res.headers['content-type'], type, path);
    up.socket!.destroy();
  }
});

test('attach errors before the hijack are JSON error responses; unknown upgrade paths are 404', async (t) => {
  const { sock } = await setup(t);
  const missing = await upgrade(sock, '/v1.47/containers/nosuch/attach?stream=1');
  assert.equal(missing.socket, undefined);
  assert.equal(missing.res.statusCode, 404);
  assert.equal(missing.res.headers['content-type'], 'application/json');
  assert.equal(await readAll(missing.res), '{"message":"No such container: nosuch"}\n');
  const unknown = await upgrade(sock, '/v1.47/containers/x/frobnicate');
  assert.equal(unknown.res.statusCode, 404);
  assert.equal(await readAll(unknown.res), '{"message":"page not found"}\n');
  const old = await upgrade(sock, '/v1.12/containers/x/attach');
  assert.equal(old.res.statusCode, 400);
  assert.match(await readAll(old.res), /too old/);
});

test('exec start with Upgrade reads the JSON body; TTY exec is raw; Detach is a plain 200', async (t) => {
  const { sock, engine } = await setup(t);
  engine.add('c', { running: true });
  const mk = async (tty: boolean): Promise<string> => {
    const { Id } = await engine.createExec('c', { Cmd: ['sh'], Tty: tty });
    return Id;
  };
  const ttyId = await mk(true);
  const up = await upgrade(sock, `/v1.47/exec/${ttyId}/start`, '{"Detach":false,"Tty":true}');
  assert.equal(up.res.statusCode, 101);
  assert.equal(up.res.headers['content-type'], RAW_STREAM);
  const all = collect(up.socket!);
  up.socket!.write('xyz');
  await new Promise((r) => setTimeout(r, 50));
  up.socket!.end();
  assert.equal(Buffer.concat([up.head!, await all]).toString(), 'hello\nxyz');
  assert.deepEqual(engine.calls.find((c) => c.method === 'startExec')?.args[1], { Detach: false, Tty: true });

  const det = await upgrade(sock, `/v1.47/exec/${await mk(false)}/start`, '{"Detach":true}');
  assert.equal(det.socket, undefined);
  assert.equal(det.res.statusCode, 200);

  const bad = await upgrade(sock, `/v1.47/exec/${await mk(false)}/start`, '{"Detach":"no"}');
  assert.equal(bad.res.statusCode, 400);
  assert.match(await readAll(bad.res), /field Detach/);
  const missing = await upgrade(sock, `/v1.47/exec/nosuch/start`, '{}');
  assert.equal(missing.res.statusCode, 404);
  assert.equal(await readAll(missing.res), '{"message":"No such exec instance: nosuch"}\n');
});

test('attach without Upgrade: 200 and a raw stream on the taken-over connection', async (t) => {
  const { sock, engine } = await setup(t);
  engine.add('a');
  const r = req(sock, 'POST', '/v1.47/containers/a/attach?stream=1&stdout=1');
  const res = await new Promise<IncomingMessage>((resolve) => r.on('response', resolve));
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], RAW_STREAM);
  const first = await new Promise<Buffer>((resolve) => res.once('data', resolve));
  const frames: string[] = [];
  new Demuxer((_t, p) => frames.push(p.toString())).push(first);
  assert.deepEqual(frames, ['hello\n']);
  r.destroy();
});

test('close() ends hijacked sessions and removes the socket', async () => {
  const dir = mkdtempSync(join(tmpdir(), `berthd-${process.pid}-`));
  const sock = join(dir, 's.sock');
  const engine = new TestEngine();
  engine.add('a');
  const app = createServer({ engine, logger: silentLogger() });
  const l = await listen(app, [`unix://${sock}`]);
  const up = await upgrade(sock, '/containers/a/attach?stream=1&stdout=1');
  const closed = new Promise((r) => up.socket!.on('close', r));
  await l.close();
  await closed;
  await app.close();
  assert.equal(existsSync(sock), false);
  rmSync(dir, { recursive: true, force: true });
});

test('events: headers before any event, one line per event, client close ends the subscription', async (t) => {
  const { sock, engine } = await setup(t);
  const r = req(sock, 'GET', '/v1.47/events');
  const res = await new Promise<IncomingMessage>((resolve) => r.on('response', resolve));
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'application/json');
  assert.equal(engine.listeners, 1);
  const line = new Promise<string>((resolve) => res.once('data', (d: Buffer) => resolve(d.toString())));
  engine.emit({ Type: 'container', Action: 'die', Actor: { ID: 'x', Attributes: { exitCode: '0' } }, scope: 'local', time: 1, timeNano: 1e9 });
  assert.equal(await line, '{"Type":"container","Action":"die","Actor":{"ID":"x","Attributes":{"exitCode":"0"}},"scope":"local","time":1,"timeNano":1000000000}\n');
  r.on('error', () => {});
  r.destroy();
  for (let i = 0; i < 100 && engine.listeners > 0; i++) await new Promise((res2) => setTimeout(res2, 10));
  assert.equal(engine.listeners, 0);
});

test('events: a client that does not read is dropped once its backlog passes the limit', async (t) => {
  const { sock, engine } = await setup(t);
  const r = req(sock, 'GET', '/v1.47/events');
  r.on('error', () => {});
  const res = await new Promise<IncomingMessage>((resolve) => r.on('response', resolve));
  res.on('error', () => {});
  res.pause();
  assert.equal(engine.listeners, 1);
  const big = 'x'.repeat(64 * 1024);
  // Far more than the limit plus what the socket buffers hold: 16 MiB.
  for (let i = 0; i < 256 && engine.listeners > 0; i++) {
    engine.emit({ Type: 'container', Action: 'die', Actor: { ID: 'x', Attributes: { pad: big } }, scope: 'local', time: 1, timeNano: 1e9 });
    await new Promise((res2) => setImmediate(res2));
  }
  for (let i = 0; i < 100 && engine.listeners > 0; i++) await new Promise((res2) => setTimeout(res2, 10));
  assert.equal(engine.listeners, 0);
  r.destroy();
});

test('logs -f: headers at once, body streams, client close ends it', async (t) => {
  const { sock, engine } = await setup(t);
  engine.add('f');
  const r = req(sock, 'GET', '/v1.47/containers/f/logs?stdout=1&follow=1');
  const res = await new Promise<IncomingMessage>((resolve) => r.on('response', resolve));
  assert.equal(res.headers['content-type'], MULTIPLEXED_STREAM);
  const first = await new Promise<Buffer>((resolve) => res.once('data', resolve));
  const frames: string[] = [];
  new Demuxer((_t, p) => frames.push(p.toString())).push(first);
  assert.deepEqual(frames, ['line1\n']);
  r.on('error', () => {});
  r.destroy();
});

test('a tcp listener another host could reach is refused without --tls=false; loopback and unix are not', () => {
  assert.deepEqual(checkExposure(['unix:///run/x.sock', 'tcp://127.0.0.1:2375', 'tcp://[::1]:2375', 'tcp://localhost:1', 'tcp://:2375'], undefined), []);
  for (const spec of ['tcp://0.0.0.0:2375', 'tcp://10.1.2.3:2375', 'tcp://[::]:2375']) {
    assert.throws(() => checkExposure([spec], undefined), (err: Error & { code?: string }) => err.code === 'BERTH_INVALID_ARGUMENT' && err.message.includes(spec) && err.message.includes('--tls=false'));
    const warnings = checkExposure([spec], false);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /root on this machine/);
  }
  assert.throws(() => checkExposure(['unix:///run/x.sock'], true), /does not serve TLS/);
});

test('berthd --tls=false and daemon.json "tls"', () => {
  assert.equal(parseFlags(['--tls=false']).flags.tls, false);
  assert.equal(parseConfigFile('{"tls": false}', '/x.json').tls, false);
  assert.throws(() => parseConfigFile('{"tls": "no"}', '/x.json'), /tls must be a boolean/);
});

test('unix sockets belong to the group -G names (a name or a gid); an unknown one is an error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berthd-group-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const engine = new TestEngine();
  const app = createServer({ engine, logger: silentLogger() });
  const l = await listen(app, [`unix://${dir}/a.sock`], { socketGroup: 'daemon' });
  t.after(() => l.close());
  assert.equal(statSync(`${dir}/a.sock`).gid, 1, 'daemon is gid 1 on Debian');
  assert.equal(statSync(`${dir}/a.sock`).mode & 0o777, 0o660);
  const app2 = createServer({ engine, logger: silentLogger() });
  const l2 = await listen(app2, [`unix://${dir}/b.sock`], { socketGroup: '4242' });
  t.after(() => l2.close());
  assert.equal(statSync(`${dir}/b.sock`).gid, 4242);
  const app3 = createServer({ engine, logger: silentLogger() });
  await assert.rejects(listen(app3, [`unix://${dir}/c.sock`], { socketGroup: `no-such-group-${process.pid}` }), /not in \/etc\/group/);
  assert.equal(existsSync(`${dir}/c.sock`), false);
  assert.deepEqual(parseFlags(['-G', 'adm']).flags.group, 'adm');
  assert.equal(parseConfigFile('{"group": "adm"}', '/x.json').group, 'adm');
});

test('an error found before the body was read is answered once the body is in: a client still sending sees no failed write', async (t) => {
  const { sock } = await setup(t);
  const socket = connect(sock);
  socket.write('PUT /containers/c/archive?path=/read-only HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n');
  const chunk = `400\r\n${'x'.repeat(0x400)}\r\n`;
  socket.write(chunk);
  let answer = '';
  let ended = false;
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (answer += d));
  socket.on('end', () => (ended = true));
  const errors: Error[] = [];
  socket.on('error', (e) => errors.push(e));
  // The client is still sending: the daemon reads on rather than answering and closing under it.
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual([answer, ended], ['', false], 'the daemon answered and closed while the body was on its way');
  for (let i = 0; i < 64; i++) socket.write(chunk);
  socket.write('0\r\n\r\n');
  await new Promise((r) => socket.once('close', r));
  assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n[^]*\{"message":"container rootfs is marked read-only"\}\n$/);
  assert.deepEqual(errors, []);
});
