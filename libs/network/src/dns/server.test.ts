import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { silentLogger } from '@berth/log';
import { serveDns, type DnsServer } from './server.js';
import type { DnsRecords } from './message.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { listenLoopbackPair } from './loopback-pair.js';
import { encodeQuery, tcpExchange, udpExchange } from './query-client.js';
import { frame } from './framing.js';

const records: DnsRecords = {
  lookup: (n) => (n === 'web' ? { a: ['10.99.0.5'], aaaa: [] } : n === 'boom' ? (() => { throw new Error('records broke'); })() : undefined),
  reverse: (ip) => (ip === '10.99.0.5' ? 'web' : undefined),
};
const ips = (r: { answers?: unknown[] } | undefined): string[] => (r?.answers ?? []).map((a) => (a as { data: string }).data);

/** A resolver on 127.0.0.1:<port> (UDP and TCP) in this namespace, answering like the embedded one; the port is one traffic reaches. */
async function start(upstream: string[], opts: Parameters<typeof serveDns>[1] extends infer O ? Partial<O> : never = {}): Promise<{ port: number; server: DnsServer; tcp: Server }> {
  const { udp, tcp, port } = await listenLoopbackPair();
  const server = serveDns({ udp, tcp }, { records, upstream, logger: silentLogger(), timeoutMs: 300, ...opts });
  return { port, server, tcp };
}

test('UDP and TCP: local names answered, others forwarded, SERVFAIL when the upstream is silent', async (t) => {
  const up: FakeUpstream = await startFakeUpstream('192.0.2.9');
  const { port, server } = await start([up.address]);
  t.after(async () => { await server.close(); await up.close(); });

  const local = await udpExchange(port, encodeQuery('WEB', 'A', 11));
  assert.equal(local?.id, 11);
  assert.deepEqual(ips(local), ['10.99.0.5']);
  assert.deepEqual(ips(await udpExchange(port, encodeQuery('5.0.99.10.in-addr.arpa', 'PTR'))), ['web']);
  const fwd = await udpExchange(port, encodeQuery('example.test', 'A', 12));
  assert.equal(fwd?.id, 12);
  assert.deepEqual(ips(fwd), ['192.0.2.9']);
  assert.deepEqual(up.asked, [{ transport: 'udp', id: 12, name: 'example.test', type: 'A' }], 'only the unknown name went upstream');

  const viaTcp = await tcpExchange(port, [encodeQuery('web', 'A', 21), encodeQuery('db', 'A', 22), encodeQuery('web', 'AAAA', 23)]);
  assert.deepEqual(viaTcp.map((r) => r.id).sort(), [21, 22, 23]);
  assert.deepEqual(ips(viaTcp.find((r) => r.id === 21)), ['10.99.0.5']);
  assert.deepEqual(ips(viaTcp.find((r) => r.id === 22)), ['192.0.2.9']);
  assert.deepEqual(ips(viaTcp.find((r) => r.id === 23)), []);
  assert.equal(up.asked.at(-1)?.transport, 'tcp', 'a TCP query is forwarded over TCP');

  up.mode = 'silent';
  const started = Date.now();
  const fail = await udpExchange(port, encodeQuery('example.test', 'A', 13));
  assert.equal(fail?.rcode, 'SERVFAIL');
  assert.equal(fail?.id, 13);
  assert.ok(Date.now() - started >= 250, 'waited for the upstream');
  const failTcp = await tcpExchange(port, [encodeQuery('example.test', 'A', 14)]);
  assert.equal(failTcp[0]?.rcode, 'SERVFAIL');
});

test('garbage does not hurt: malformed UDP and TCP input is dropped, the server keeps answering', async (t) => {
  const { port, server } = await start([]);
  t.after(() => server.close());
  const s = createSocket('udp4');
  for (const junk of [Buffer.alloc(0), Buffer.alloc(3), Buffer.from('c0c0c0c0c0c0c0c0c0c0c0c0c0c0', 'hex'), Buffer.alloc(600, 0xff)]) {
    await new Promise<void>((r) => s.send(junk, port, '127.0.0.1', () => r()));
  }
  s.close();
  // Fragmented TCP: a query cut in two, then junk frames, then a good one.
  const q = encodeQuery('web', 'A', 31);
  const c = connect(port, '127.0.0.1');
  const got: Buffer[] = [];
  c.on('data', (d: Buffer) => got.push(d));
  await new Promise((r) => c.once('connect', r));
  const framed = frame(q);
  c.write(framed.subarray(0, 5));
  await new Promise((r) => setTimeout(r, 50));
  c.write(Buffer.concat([framed.subarray(5), frame(Buffer.from('junk')), frame(encodeQuery('web', 'A', 32))]));
  await new Promise((r) => setTimeout(r, 200));
  c.destroy();
  const all = Buffer.concat(got);
  assert.equal(all.readUInt16BE(0) + 2 < all.length, true, 'two answers');
  assert.deepEqual(ips(await udpExchange(port, encodeQuery('web', 'A'))), ['10.99.0.5']);
  const none = await udpExchange(port, encodeQuery('example.test', 'A', 33));
  assert.equal(none?.rcode, 'SERVFAIL', 'no upstream at all: SERVFAIL at once');
});

test('a records callback that throws gives SERVFAIL, not a crash', async (t) => {
  const { port, server } = await start([]);
  t.after(() => server.close());
  const r = await udpExchange(port, encodeQuery('boom', 'A', 41));
  assert.equal(r?.rcode, 'SERVFAIL');
  assert.equal(r?.id, 41);
});

test('bounded: forwards beyond the in-flight limit get SERVFAIL at once; TCP connections beyond the limit are closed', async (t) => {
  const up = await startFakeUpstream();
  up.mode = 'silent';
  const { port, server, tcp } = await start([up.address], { timeoutMs: 2000, limits: { maxInflight: 2, maxTcpConnections: 1 } });
  t.after(async () => { await server.close(); await up.close(); });
  const slow = [udpExchange(port, encodeQuery('a.test', 'A', 1), '127.0.0.1', 500), udpExchange(port, encodeQuery('b.test', 'A', 2), '127.0.0.1', 500)];
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  const third = await udpExchange(port, encodeQuery('c.test', 'A', 3));
  assert.equal(third?.rcode, 'SERVFAIL');
  assert.ok(Date.now() - started < 400);
  assert.deepEqual(await Promise.all(slow), [undefined, undefined]);

  const first = connect(port, '127.0.0.1');
  await new Promise((r) => first.once('connect', r));
  await new Promise((r) => setTimeout(r, 50));
  const second = await tcpExchange(port, [encodeQuery('web', 'A')], '127.0.0.1', 1000).catch(() => []);
  assert.deepEqual(second, [], 'the second connection got nothing');
  assert.equal(tcp.maxConnections, 1);
  first.destroy();
});

test('close() frees both sockets, closes connections and aborts forwards in flight', async () => {
  const up = await startFakeUpstream();
  up.mode = 'silent';
  const { port, server } = await start([up.address], { timeoutMs: 10_000 });
  const c = connect(port, '127.0.0.1');
  await new Promise((r) => c.once('connect', r));
  const closedConn = new Promise((r) => c.once('close', r));
  c.write(frame(encodeQuery('slow.test', 'A')));
  const pending = udpExchange(port, encodeQuery('slow.test', 'A'), '127.0.0.1', 1000);
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  await server.close();
  await server.close(); // idempotent
  assert.ok(Date.now() - started < 500, 'did not wait for the 10 s forward');
  await closedConn;
  assert.equal(await pending, undefined, 'no answer after close');
  // Both ports can be bound again.
  const udp = createSocket('udp4');
  await new Promise<void>((r, j) => { udp.once('error', j); udp.bind(port, '127.0.0.1', () => r()); });
  udp.close();
  const tcp = createServer();
  await new Promise<void>((r, j) => { tcp.once('error', j); tcp.listen(port, '127.0.0.1', () => r()); });
  assert.equal((tcp.address() as AddressInfo).port, port);
  await new Promise((r) => tcp.close(r));
  await up.close();
});
