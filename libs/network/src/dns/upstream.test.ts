import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as packet from 'dns-packet';
import { forward, parseUpstreams } from './upstream.js';
import { startFakeUpstream } from './fake-upstream.js';
import { encodeQuery } from './query-client.js';

test('parseUpstreams: bare addresses get port 53, ip:port and [ip6]:port parse, junk is refused', () => {
  assert.deepEqual(parseUpstreams(['1.2.3.4', '::1', '127.0.0.1:5353', '[fd00::1]:53', ' 10.0.0.1 ']), [
    { address: '1.2.3.4', port: 53, family: 4 },
    { address: '::1', port: 53, family: 6 },
    { address: '127.0.0.1', port: 5353, family: 4 },
    { address: 'fd00::1', port: 53, family: 6 },
    { address: '10.0.0.1', port: 53, family: 4 },
  ]);
  for (const bad of ['dns.google', '1.2.3.4:0', '1.2.3.4:70000', '[1.2.3.4]:53', '1.2.3.4:', '']) {
    assert.throws(() => parseUpstreams([bad]), { code: 'BERTH_INVALID_ARGUMENT' }, bad);
  }
});

test('forward over UDP and TCP returns the upstream reply with the client id', async (t) => {
  const up = await startFakeUpstream('192.0.2.7');
  t.after(() => up.close());
  const [u] = parseUpstreams([up.address]);
  for (const tcp of [false, true]) {
    const q = encodeQuery('example.test', 'A', 777);
    const res = await forward([u!], q, { tcp, timeoutMs: 1000, signal: new AbortController().signal });
    assert.deepEqual(res.errors, []);
    const r = packet.decode(res.reply!);
    assert.equal(r.id, 777);
    assert.deepEqual(r.answers!.map((a) => (a as { data: string }).data), ['192.0.2.7']);
  }
  assert.deepEqual(up.asked.map((a) => a.transport), ['udp', 'tcp']);
});

test('forward moves on after a timeout, a refused port or a SERVFAIL; nothing answering gives no reply', async (t) => {
  const silent = await startFakeUpstream();
  const failing = await startFakeUpstream();
  const good = await startFakeUpstream('192.0.2.8');
  const dead = await startFakeUpstream();
  await dead.close(); // its port now refuses (ICMP port unreachable / RST)
  t.after(() => Promise.all([silent.close(), failing.close(), good.close()]));
  silent.mode = 'silent';
  failing.mode = 'servfail';
  const signal = new AbortController().signal;
  for (const tcp of [false, true]) {
    const list = parseUpstreams([dead.address, silent.address, failing.address, good.address]);
    const started = Date.now();
    const res = await forward(list, encodeQuery('x.test', 'A', 5), { tcp, timeoutMs: 300, signal });
    assert.equal(packet.decode(res.reply!).id, 5);
    assert.deepEqual(packet.decode(res.reply!).answers!.map((a) => (a as { data: string }).data), ['192.0.2.8']);
    assert.equal(res.errors.length, 3, res.errors.join('; '));
    assert.match(res.errors[1]!, /no answer in 300 ms/);
    assert.match(res.errors[2]!, /rcode 2/);
    assert.ok(Date.now() - started < 1500);

    const onlyFail = await forward(parseUpstreams([failing.address]), encodeQuery('x.test', 'A', 6), { tcp, timeoutMs: 300, signal });
    assert.equal((packet.decode(onlyFail.reply!) as { rcode?: string }).rcode, 'SERVFAIL', 'the upstream SERVFAIL is passed on');
    const none = await forward(parseUpstreams([silent.address]), encodeQuery('x.test', 'A', 7), { tcp, timeoutMs: 200, signal });
    assert.equal(none.reply, undefined);
  }
});

test('forward stops at once when aborted', async (t) => {
  const silent = await startFakeUpstream();
  silent.mode = 'silent';
  t.after(() => silent.close());
  const ac = new AbortController();
  const started = Date.now();
  const p = forward(parseUpstreams([silent.address, silent.address]), encodeQuery('x.test', 'A'), { tcp: false, timeoutMs: 5000, signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  const res = await p;
  assert.equal(res.reply, undefined);
  assert.ok(Date.now() - started < 1000);
});
