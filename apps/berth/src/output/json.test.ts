import assert from 'node:assert/strict';
import { test } from 'node:test';
import { indentJson, indentJsonArray } from './json.js';

const samples: unknown[] = [
  {},
  [],
  { a: {}, b: [], c: [{}], d: [[]], e: null, f: true, g: false },
  { s: 'quote " backslash \\ slash / tab \t newline \n nul \u0000 ünï 😀 "{[,:]}"', n: [0, -1, 1.5, 1e21, -2.5e-7, 123456789012] },
  { Ports: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`${41000 + i}/udp`, [{ HostIp: '0.0.0.0', HostPort: String(41000 + i) }]])) },
  { deep: { a: { b: { c: { d: [1, [2, [3, { e: 'f' }]]] } } } }, '': '', 'k:,': ',:' },
  // indentation many times the input: the output buffer grows
  JSON.parse(`${'['.repeat(60)}1${',[2]]'.repeat(30)}${']'.repeat(30)}`),
];

test('indentJson: the same text as JSON.stringify(value, null, 4) for compact JSON', () => {
  for (const v of samples) {
    assert.equal(indentJson(Buffer.from(JSON.stringify(v))).toString(), JSON.stringify(v, null, 4));
    assert.equal(indentJson(Buffer.from(JSON.stringify(v)), 2).toString(), JSON.stringify(v, null, 2));
  }
});

test('indentJson: whitespace in the input is dropped, empty containers with spaces stay one token', () => {
  const v = { a: [1, 2], b: {}, c: [] };
  const spaced = ' {\n "a" : [ 1 ,\t2 ] , "b" : { } ,"c":[\r\n] } ';
  assert.equal(indentJson(Buffer.from(spaced)).toString(), JSON.stringify(v, null, 4));
});

test('indentJson: strings and numbers stay as the daemon wrote them (docker prints the raw message)', () => {
  assert.equal(indentJson(Buffer.from('{"a":"\\u003cb\\u003e","n":1.0}')).toString(), '{\n    "a": "\\u003cb\\u003e",\n    "n": 1.0\n}');
});

test('indentJsonArray: docker inspect output for none, one and several answers', () => {
  assert.equal(indentJsonArray([]).toString(), '[]\n');
  const objs = [{ Id: 'a', Ports: {} }, { Id: 'b', List: [1] }, samples[4], samples[samples.length - 1], 'x', []];
  for (let k = 1; k <= objs.length; k++) {
    const got = indentJsonArray(objs.slice(0, k).map((o) => Buffer.from(`${JSON.stringify(o)}\n`)));
    assert.equal(got.toString(), `${JSON.stringify(objs.slice(0, k), null, 4)}\n`);
  }
});

test('indentJson: a truncated or unbalanced input ends without throwing', () => {
  for (const t of ['{"a":[1,2', '"abc', '}}]', '{"a":"b\\']) assert.equal(typeof indentJson(Buffer.from(t)).toString(), 'string');
});
