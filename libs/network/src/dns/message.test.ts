import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as packet from 'dns-packet';
import type { Answer, DecodedPacket, RecordType } from 'dns-packet';
import { normalizeName, reverseNameToIp, routeQuery, servfail, type DnsRecords } from './message.js';

const records: DnsRecords = {
  lookup: (name) =>
    name === 'web' ? { a: ['10.99.0.5'], aaaa: ['fd00:99::5'] }
    : name === 'v4only' ? { a: ['10.99.0.6'], aaaa: [] }
    : name === 'many' ? { a: Array.from({ length: 60 }, (_, i) => `10.99.1.${i + 1}`), aaaa: [] }
    : undefined,
  reverse: (ip) => (ip === '10.99.0.5' ? 'web.mynet' : ip === 'fd00:99::5' ? 'web.mynet' : undefined),
};
const keep = <T>(xs: T[]): T[] => xs;

function query(name: string, type: RecordType, extra: Partial<packet.Packet> = {}): Buffer {
  return packet.encode({ type: 'query', id: 4242, flags: packet.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }], ...extra });
}
function answered(raw: Buffer, udp = true): DecodedPacket & { rcode: string } {
  const r = routeQuery(raw, records, { udp, shuffle: keep });
  assert.equal(r.kind, 'answer', JSON.stringify(r.kind === 'answer' ? r.local : r));
  return packet.decode((r as { response: Buffer }).response) as DecodedPacket & { rcode: string };
}
const data = (answers: Answer[] | undefined): string[] => (answers ?? []).map((a) => String((a as { data: unknown }).data));

test('A and AAAA of a known name: local answer, TTL 600, AA and RA, id and question (with its case) kept', () => {
  const a = answered(query('Web', 'A'));
  assert.equal(a.id, 4242);
  assert.equal(a.type, 'response');
  assert.equal(a.rcode, 'NOERROR');
  assert.equal(a.flag_aa, true);
  assert.equal(a.flag_rd, true);
  assert.equal(a.flag_ra, true);
  assert.deepEqual(a.questions, [{ name: 'Web', type: 'A', class: 'IN' }]);
  assert.deepEqual(data(a.answers), ['10.99.0.5']);
  assert.equal(a.answers![0]!.name, 'Web');
  assert.equal((a.answers![0] as { ttl: number }).ttl, 600);
  assert.deepEqual(data(answered(query('web.', 'AAAA')).answers), ['fd00:99::5']);
});

test('a known name without an address of that family: NOERROR with no answer (NODATA)', () => {
  const a = answered(query('v4only', 'AAAA'));
  assert.equal(a.rcode, 'NOERROR');
  assert.deepEqual(a.answers, []);
});

test('unknown names, single-label or under a domain, other types and classes are forwarded', () => {
  for (const [name, type] of [['db', 'A'], ['web.mynet', 'A'], ['example.com', 'AAAA'], ['web', 'MX'], ['web', 'TXT'], ['.', 'NS']] as const) {
    const r = routeQuery(query(name, type), records, { udp: true });
    assert.equal(r.kind, 'forward', `${type} ${name}`);
  }
  const chaos = packet.encode({ type: 'query', id: 1, questions: [{ type: 'TXT', name: 'version.bind', class: 'CH' }] });
  assert.equal(routeQuery(chaos, records, { udp: true }).kind, 'forward');
});

test('PTR of an address Berth assigned: local answer; of others: forwarded', () => {
  const a = answered(query('5.0.99.10.in-addr.arpa', 'PTR'));
  assert.deepEqual(data(a.answers), ['web.mynet']);
  const v6 = '5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.9.9.0.0.0.0.d.f.ip6.arpa';
  assert.deepEqual(data(answered(query(v6, 'PTR')).answers), ['web.mynet']);
  assert.equal(routeQuery(query('6.0.99.10.in-addr.arpa', 'PTR'), records, { udp: true }).kind, 'forward');
  assert.equal(routeQuery(query('0.99.10.in-addr.arpa', 'PTR'), records, { udp: true }).kind, 'forward');
});

test('reverse names: only full, canonical ones map to an address', () => {
  assert.equal(reverseNameToIp('5.0.99.10.in-addr.arpa.'), '10.99.0.5');
  assert.equal(reverseNameToIp('5.0.99.10.IN-ADDR.ARPA'), '10.99.0.5');
  assert.equal(reverseNameToIp('256.0.99.10.in-addr.arpa'), undefined);
  assert.equal(reverseNameToIp('05.0.99.10.in-addr.arpa'), undefined);
  assert.equal(reverseNameToIp('x.0.99.10.in-addr.arpa'), undefined);
  assert.equal(reverseNameToIp('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa'), '::1');
  assert.equal(reverseNameToIp('1.0.ip6.arpa'), undefined);
  assert.equal(reverseNameToIp('web'), undefined);
  assert.equal(normalizeName('WeB.Net..'), 'web.net');
});

test('a UDP answer larger than the client takes is cut and TC set; over TCP it is whole', () => {
  const udp = answered(query('many', 'A'));
  assert.equal(udp.flag_tc, true);
  assert.ok(udp.answers!.length > 0 && udp.answers!.length < 60, `${udp.answers!.length}`);
  const raw = routeQuery(query('many', 'A'), records, { udp: true, shuffle: keep }) as { response: Buffer };
  assert.ok(raw.response.length <= 512 && raw.response.length > 400, `${raw.response.length} bytes`);
  assert.equal(udp.answers!.length, Math.floor((512 - 12 - 10) / 16), 'compressed: 16 bytes per A record');
  const edns = answered(query('many', 'A', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as Answer] }));
  assert.equal(edns.flag_tc, false, 'fits in the 1232 bytes offered by EDNS');
  assert.equal(edns.answers!.length, 60);
  assert.equal(edns.additionals![0]!.type, 'OPT');
  const tcp = answered(query('many', 'A'), false);
  assert.equal(tcp.flag_tc, false);
  assert.equal(tcp.answers!.length, 60);
});

test('answers are shuffled by default (round robin between containers sharing a name)', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const r = routeQuery(query('many', 'A', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as Answer] }), records, { udp: true });
    seen.add(data(packet.decode((r as { response: Buffer }).response).answers)[0]!);
  }
  assert.ok(seen.size > 1);
});

test('not a query: responses, short and malformed packets are dropped; odd headers get FORMERR/NOTIMP', () => {
  assert.equal(routeQuery(Buffer.alloc(5), records, { udp: true }).kind, 'drop');
  assert.equal(routeQuery(Buffer.from('not a dns packet at all, really'), records, { udp: true }).kind, 'drop');
  const resp = packet.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'web' }] });
  assert.equal(routeQuery(resp, records, { udp: true }).kind, 'drop');
  const loop = Buffer.concat([Buffer.from('000101000001000000000000', 'hex'), Buffer.from('c00c00010001', 'hex')]);
  assert.equal(routeQuery(loop, records, { udp: true }).kind, 'drop');
  const truncated = query('web', 'A').subarray(0, 20);
  assert.equal(routeQuery(truncated, records, { udp: true }).kind, 'drop');

  const none = answered(packet.encode({ type: 'query', id: 9, questions: [] }));
  assert.equal(none.rcode, 'FORMERR');
  assert.equal(none.id, 9);
  const two = answered(packet.encode({ type: 'query', id: 9, questions: [{ type: 'A', name: 'web' }, { type: 'A', name: 'db' }] }));
  assert.equal(two.rcode, 'FORMERR');
  const update = query('web', 'A');
  update.writeUInt16BE(update.readUInt16BE(2) | (5 << 11), 2);
  const u = answered(update);
  assert.equal(u.rcode, 'NOTIMP');
  assert.equal((u as unknown as { opcode: string }).opcode, 'UPDATE');
});

test('random bytes never throw, and cost little', () => {
  const started = performance.now();
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.alloc(12 + Math.floor(Math.random() * 60));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(Math.random() * 256);
    if (i % 2 === 0) {
      // QUERY opcode, QR clear, plausible counts: reach the name and record parsers.
      b[2] = b[2]! & 0x07;
      b.writeUInt16BE(1, 4);
      b.writeUInt32BE(0, 6);
      b.writeUInt16BE(i % 4, 10);
    }
    routeQuery(b, records, { udp: true });
  }
  // A packet claiming 65535 entries per section must not make the decoder allocate for them.
  const liar = Buffer.from('a8a403db78d59ca4e79134c4764f6b3b50c3ea4aa31086364ab9016f898e4ba07436363962074ca2', 'hex');
  assert.equal(routeQuery(liar, records, { udp: true }).kind, 'drop');
  assert.ok(performance.now() - started < 1000, `${performance.now() - started} ms for 2000 random packets`);
});

test('SERVFAIL keeps id, question and RD', () => {
  const q = packet.decode(query('example.com', 'A'));
  const r = packet.decode(servfail(q, true)) as DecodedPacket & { rcode: string };
  assert.equal(r.rcode, 'SERVFAIL');
  assert.equal(r.id, 4242);
  assert.equal(r.flag_rd, true);
  assert.deepEqual(r.questions, [{ name: 'example.com', type: 'A', class: 'IN' }]);
});
