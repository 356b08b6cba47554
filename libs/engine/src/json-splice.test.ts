import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsonSplice } from './json-splice.js';

test('json splice: marks are replaced by their parts, the rest is JSON.stringify with a newline', () => {
  const s = new JsonSplice();
  const ports: Record<string, unknown> = {};
  for (let p = 41000; p < 41300; p++) ports[`${p}/udp`] = [{ HostIp: '0.0.0.0', HostPort: String(p) }];
  const list = [{ PrivatePort: 80, Type: 'tcp' }];
  const value = {
    Id: 'x',
    Labels: { a: 'quote " and \\ and \u0000 and ünï' },
    Ports: s.mark(Buffer.from(JSON.stringify(ports))),
    Nested: { List: s.mark(Buffer.from(JSON.stringify(list))), After: 1 },
  };
  const got = s.encode(value).toString();
  assert.equal(got, `${JSON.stringify({ ...value, Ports: ports, Nested: { List: list, After: 1 } })}\n`);
  assert.deepEqual(JSON.parse(got).Ports, ports);
});

test('json splice: without marks it is the plain JSON; a look-alike string is left alone', () => {
  const plain = { a: '\u0000berth:00:0\u0000', b: [1, 2] };
  assert.equal(new JsonSplice().encode(plain).toString(), `${JSON.stringify(plain)}\n`);
  const s = new JsonSplice();
  const v = { a: '\u0000berth:00:0\u0000', b: s.mark(Buffer.from('[1]')) };
  assert.equal(s.encode(v).toString(), `${JSON.stringify({ a: v.a, b: [1] })}\n`);
});
