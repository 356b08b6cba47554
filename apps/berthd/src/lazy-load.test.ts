import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@berth/log';
import { createServer } from './server.js';
import { TestEngine } from './test-engine.js';

async function run(script: string): Promise<string> {
  const dist = fileURLToPath(new URL('.', import.meta.url));
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: dist }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
  );
}

test('the server loads neither typebox nor fastify schema compilers (ajv, fast-json-stringify), at start or on a create', async () => {
  const out = await run(`
import { createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
import { register } from 'node:module';
const { port1, port2 } = new MessageChannel();
const urls = [];
port1.on('message', (u) => urls.push(u));
port1.unref();
register('data:text/javascript,' + encodeURIComponent('let p; export async function initialize(d) { p = d.port; } export async function load(u, c, n) { p.postMessage(u); return n(u, c); }'), { parentURL: import.meta.url, data: { port: port2 }, transferList: [port2] });
const { createServer } = await import('./server.js');
const { TestEngine } = await import('./test-engine.js');
const { silentLogger } = await import('@berth/log');
const app = createServer({ engine: new TestEngine(), logger: silentLogger() });
await app.ready();
await new Promise((r) => setTimeout(r, 100));
const cjs = () => Object.keys(createRequire(import.meta.url).cache);
const pick = (list) => [...new Set(list.map((u) => /node_modules\\/(@sinclair\\/typebox|ajv|fast-json-stringify\\/index)[/.]/.exec(u)?.[1]).filter(Boolean))].sort();
const atStart = pick([...urls, ...cjs()]);
const res = await app.inject({ method: 'POST', url: '/containers/create', headers: { 'content-type': 'application/json' }, payload: '{"Image":"busybox"}' });
await new Promise((r) => setTimeout(r, 100));
console.log(JSON.stringify({ atStart, status: res.statusCode, afterCreate: pick([...urls, ...cjs()]) }));
await app.close();
`);
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as { atStart: string[]; status: number; afterCreate: string[] };
  assert.deepEqual(r.atStart, []);
  assert.equal(r.status, 201);
  assert.deepEqual(r.afterCreate, []);
});

test('a route given a schema still gets fastify\'s compilers (loaded on demand)', async () => {
  const app = createServer({ engine: new TestEngine(), logger: silentLogger() });
  app.post('/schema-probe', { schema: { body: { type: 'object', required: ['a'], properties: { a: { type: 'integer' } } }, response: { 200: { type: 'object', properties: { b: { type: 'integer' } } } } } }, async (req) => ({
    b: (req.body as { a: number }).a + 1,
    dropped: true,
  }));
  const ok = await app.inject({ method: 'POST', url: '/schema-probe', headers: { 'content-type': 'application/json' }, payload: '{"a":"41"}' });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.deepEqual(ok.json(), { b: 42 });
  const bad = await app.inject({ method: 'POST', url: '/schema-probe', headers: { 'content-type': 'application/json' }, payload: '{}' });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().message, /must have required property 'a'/);
  await app.close();
});
