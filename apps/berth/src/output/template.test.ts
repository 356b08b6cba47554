import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSpec, goString, parseTemplate } from './template.js';

const data = { Name: '/web', State: { Status: 'running', Pid: 42 }, Args: ['a', 'b'], Labels: { k: 'v', a: '1' }, Empty: null };

test('fields, nested fields, literals and Go printing', () => {
  assert.equal(parseTemplate('{{.Name}} {{.State.Status}} pid={{.State.Pid}}').execute(data), '/web running pid=42');
  assert.equal(parseTemplate('{{.Args}} {{.Labels}} {{.Empty}} {{.Missing}}').execute(data), '[a b] map[a:1 k:v] <nil> <no value>');
  assert.equal(goString(true), 'true');
});

test('json, functions, pipes, methods with arguments', () => {
  assert.equal(parseTemplate('{{json .State}}').execute(data), '{"Status":"running","Pid":42}');
  assert.equal(parseTemplate('{{json .}}').execute({ A: 1, Label: () => 'x' }), '{"A":1}');
  assert.equal(parseTemplate('{{.Name | upper}} {{join .Args ","}} {{index .Labels "k"}}').execute(data), '/WEB a,b v');
  const row = { Label: (k: string) => (k === 'k' ? 'v' : '') };
  assert.equal(parseTemplate('{{.Label "k"}}').execute(row), 'v');
  assert.equal(parseTemplate('{{printf "%s-%d" .Name .State.Pid}}').execute(data), '/web-42');
});

test('if / else / range / with and trim markers', () => {
  assert.equal(parseTemplate('{{if .State.Pid}}up{{else}}down{{end}}').execute(data), 'up');
  assert.equal(parseTemplate('{{range .Args}}[{{.}}]{{end}}').execute(data), '[a][b]');
  assert.equal(parseTemplate('{{with .State}}{{.Status}}{{end}}').execute(data), 'running');
  assert.equal(parseTemplate('a  {{- .Name -}}  b').execute(data), 'a/webb');
});

test('docker format preprocessing: table prefix, json, escapes', () => {
  assert.deepEqual(formatSpec('table {{.ID}}\\t{{.Names}}', 'x'), { table: true, template: '{{.ID}}\t{{.Names}}' });
  assert.deepEqual(formatSpec('json', 'x'), { table: false, template: '{{json .}}' });
  assert.deepEqual(formatSpec('', 'table {{.A}}'), { table: true, template: '{{.A}}' });
  assert.deepEqual(formatSpec('{{.A}}\\n', ''), { table: false, template: '{{.A}}\n' });
});

test('template errors', () => {
  assert.throws(() => parseTemplate('{{.A'), /unclosed action/);
  assert.throws(() => parseTemplate('{{nosuch .A}}').execute({}), /function "nosuch" not defined/);
  assert.throws(() => parseTemplate('{{if .A}}x').execute({}), /unexpected EOF/);
});
