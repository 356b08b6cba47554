import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AuthzRequest } from '@berth/plugin-api';
import { connect, PluginRegistry, serveAuthzPlugin } from './index.js';

/** A raw POST to a unix socket: what dockerd's client sees of the answer. */
function post(sock: string, p: string, body: unknown): Promise<{ status: number; type: string | undefined; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, path: p, method: 'POST', headers: { 'Content-Type': 'application/vnd.docker.plugins.v1.2+json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('serveAuthzPlugin: Activate says authz; verdicts are 200 {Allow, Msg, Err}; a throw is HTTP 500 {Err} (as Docker\'s Go SDK answers); the client reads both', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-authz-${process.pid}-`));
  const seen: AuthzRequest[] = [];
  const srv = await serveAuthzPlugin(
    {
      async authZReq(req) {
        seen.push(req);
        if (req.RequestUri === '/boom') throw new Error('database down');
        return req.RequestMethod === 'DELETE' ? { Allow: false, Msg: 'no deletes' } : { Allow: true };
      },
      async authZRes(req) {
        seen.push(req);
        return { Allow: req.ResponseStatusCode !== 418, Msg: 'teapot' };
      },
    },
    { name: 'az', dirs: [dir] },
  );
  const sock = path.join(dir, 'az.sock');
  try {
    assert.deepEqual((await post(sock, '/Plugin.Activate', {})).json, { Implements: ['authz'] });
    assert.deepEqual(await post(sock, '/AuthZPlugin.AuthZReq', { RequestMethod: 'GET', RequestUri: '/_ping' }), {
      status: 200,
      type: 'application/vnd.docker.plugins.v1.1+json',
      json: { Allow: true, Msg: '', Err: '' },
    });
    assert.deepEqual((await post(sock, '/AuthZPlugin.AuthZReq', { RequestMethod: 'DELETE', RequestUri: '/volumes/x' })).json, { Allow: false, Msg: 'no deletes', Err: '' });
    assert.deepEqual(await post(sock, '/AuthZPlugin.AuthZReq', { RequestMethod: 'GET', RequestUri: '/boom' }), {
      status: 500,
      type: 'application/vnd.docker.plugins.v1.1+json',
      json: { Allow: false, Msg: '', Err: 'database down' },
    });

    const reg = new PluginRegistry({ socketDirs: [dir], specDirs: [], retry: { timeoutMs: 1000, baseMs: 50, capMs: 200 } });
    const c = await reg.authz('az');
    assert.equal(c.name, 'az');
    assert.deepEqual(await c.authZReq({ RequestMethod: 'GET', RequestUri: '/v1.41/info' }), { Allow: true });
    assert.deepEqual(await c.authZReq({ RequestMethod: 'DELETE', RequestUri: '/v1.41/volumes/x' }), { Allow: false, Msg: 'no deletes' });
    await assert.rejects(c.authZReq({ RequestMethod: 'GET', RequestUri: '/boom' }), { code: 'BERTH_PLUGIN', message: 'AuthZPlugin.AuthZReq: database down' });
    assert.deepEqual(await c.authZRes({ RequestMethod: 'GET', RequestUri: '/x', ResponseStatusCode: 418 }), { Allow: false, Msg: 'teapot' });
    assert.deepEqual(seen.at(-1), { RequestMethod: 'GET', RequestUri: '/x', ResponseStatusCode: 418 });
    // Not an authz plugin: refused by kind.
    await assert.rejects(reg.volume('az'), { code: 'BERTH_PLUGIN_NOT_FOUND', message: /does not implement the requested driver \(VolumeDriver\)/ });
    reg.close();
  } finally {
    await srv.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('the authz client against a foreign plugin: 200 answers are judged by Allow alone (dockerd ignores Err there); 500 text bodies and a gone socket are errors', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-authz-raw-${process.pid}-`));
  const sock = path.join(dir, 'raw.sock');
  let answer: { status: number; body: string } = { status: 200, body: '{"Allow":true,"Err":"ignored"}' };
  const srv = http.createServer((req, res) => {
    req.resume();
    res.writeHead(answer.status, { 'Content-Type': 'application/json' });
    res.end(answer.body);
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  const c = connect(`unix://${sock}`, 'authz', { retry: { timeoutMs: 300, baseMs: 50, capMs: 100 } });
  try {
    assert.equal(c.name, 'raw');
    assert.deepEqual(await c.authZReq({}), { Allow: true, Err: 'ignored' });
    answer = { status: 200, body: '{"Msg":"nope"}' };
    assert.deepEqual(await c.authZReq({}), { Allow: false, Msg: 'nope' });
    answer = { status: 500, body: 'plain failure\n' };
    await assert.rejects(c.authZRes({}), { message: 'AuthZPlugin.AuthZRes: plain failure' });
    answer = { status: 200, body: 'not json' };
    await assert.rejects(c.authZReq({}), { message: /^AuthZPlugin\.AuthZReq: bad answer/ });
  } finally {
    c.close();
    await new Promise((r) => srv.close(r));
  }
  await assert.rejects(c.authZReq({}), { code: 'BERTH_PLUGIN', message: /^AuthZPlugin\.AuthZReq: unix:\/\/.*raw\.sock\/AuthZPlugin\.AuthZReq: connect E/ });
  await fs.rm(dir, { recursive: true, force: true });
});
