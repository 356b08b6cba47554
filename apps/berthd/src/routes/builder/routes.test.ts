import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import type { JsonMessage } from '@berth/api';
import { BerthError } from '@berth/errors';
import type { BuildOptions } from '@berth/engine';
import { silentLogger } from '@berth/log';
import { createServer } from '../../server.js';
import { TestEngine } from '../../test-engine.js';

/** A TestEngine with a scripted builder: records the options and the body's size. */
class BuildEngine extends TestEngine {
  seen: { opts: BuildOptions; bytes: number }[] = [];
  script: (progress: (m: JsonMessage) => void) => Promise<string> = async (progress) => {
    progress({ stream: 'Step 1/1 : FROM busybox\n' });
    progress({ aux: { ID: 'sha256:' + 'a'.repeat(64) } });
    return 'sha256:' + 'a'.repeat(64);
  };
  async buildImage(context: Readable, opts: BuildOptions, progress: (msg: JsonMessage) => void): Promise<string> {
    let bytes = 0;
    for await (const c of context) bytes += (c as Buffer).length;
    this.seen.push({ opts, bytes });
    return this.script(progress);
  }
}

function setup(): { engine: BuildEngine; app: ReturnType<typeof createServer> } {
  const engine = new BuildEngine();
  return { engine, app: createServer({ engine, logger: silentLogger() }) };
}

const lines = (body: string): unknown[] => body.trim().split('\n').map((l) => JSON.parse(l) as unknown);

test('POST /build: the query as Docker names it reaches the builder, the body streams to it', async () => {
  const { app, engine } = setup();
  const q = new URLSearchParams([
    ['t', 'a:1'],
    ['t', 'b'],
    ['dockerfile', 'sub/Dockerfile.dev'],
    ['buildargs', '{"A":"1","FROM_ENV":null}'],
    ['labels', '{"l":"v"}'],
    ['nocache', '1'],
    ['rm', '0'],
    ['forcerm', '1'],
    ['pull', '1'],
    ['target', 'final'],
    ['networkmode', 'host'],
    ['platform', 'linux/amd64'],
    // What the docker CLI sends for --memory, --add-host, --shm-size, --ulimit (zeros = unset).
    ['memory', '67108864'],
    ['cpushares', '0'],
    ['cpusetcpus', '0'],
    ['shmsize', '1048576'],
    ['extrahosts', 'h1:127.0.0.2'],
    ['extrahosts', 'h2:127.0.0.3'],
    ['ulimits', '[{"Name":"nofile","Soft":100,"Hard":200}]'],
    ['cgroupparent', ''],
  ]);
  // The docker CLI sends every registry's credentials of its config.json for the FROM pulls.
  const registryConfig = { 'localhost:5000': { username: 'u', password: 'p', serveraddress: 'localhost:5000' } };
  const r = await app.inject({
    method: 'POST', url: `/v1.41/build?${q}`, payload: Buffer.alloc(3 * 1024 * 1024),
    headers: { 'content-type': 'application/x-tar', 'x-registry-config': Buffer.from(JSON.stringify(registryConfig)).toString('base64url') },
  });
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.deepEqual(lines(r.body), [{ stream: 'Step 1/1 : FROM busybox\n' }, { aux: { ID: 'sha256:' + 'a'.repeat(64) } }]);
  const { opts, bytes } = engine.seen[0]!;
  assert.equal(bytes, 3 * 1024 * 1024);
  assert.deepEqual(
    { ...opts, signal: undefined, hostConfig: undefined },
    {
      dockerfile: 'sub/Dockerfile.dev',
      tags: ['a:1', 'b'],
      buildArgs: { A: '1', FROM_ENV: null },
      labels: { l: 'v' },
      quiet: false,
      noCache: true,
      rm: false,
      forceRm: true,
      pull: true,
      target: 'final',
      networkMode: 'host',
      platform: 'linux/amd64',
      signal: undefined,
      hostConfig: undefined,
      registryConfig,
    },
  );
  assert.deepEqual(opts.hostConfig, {
    Memory: 67108864,
    ShmSize: 1048576,
    CpusetCpus: '0',
    ExtraHosts: ['h1:127.0.0.2', 'h2:127.0.0.3'],
    Ulimits: [{ Name: 'nofile', Soft: 100, Hard: 200 }],
  });
  // Defaults: rm on, the rest off.
  await app.inject({ method: 'POST', url: '/build', payload: Buffer.alloc(10), headers: { 'content-type': 'application/x-tar' } });
  assert.equal(engine.seen[1]!.opts.rm, true);
  assert.deepEqual(engine.seen[1]!.opts.registryConfig, {});
  const bad = await app.inject({ method: 'POST', url: '/build', payload: Buffer.alloc(10), headers: { 'content-type': 'application/x-tar', 'x-registry-config': '!!notjson' } });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().message, 'invalid X-Registry-Config header: not base64url-encoded JSON');
  assert.deepEqual(engine.seen[1]!.opts.tags, []);
});

test('POST /build: a bad query is a 400 before the body is read', async () => {
  const { app, engine } = setup();
  for (const [query, message] of [
    ['buildargs=bad', /^error reading build args: /],
    ['buildargs=%5B1%5D', /^error reading build args: a JSON object of strings is expected$/],
    ['labels=%7B', /^error reading labels: /],
    ['t=Bad%3Ax', /repository name must be lowercase/],
    ['platform=windows', /unsupported platform/],
    ['version=2', /BuildKit is not supported/],
    ['memory=lots', /^invalid value for memory: "lots"$/],
  ] as const) {
    const r = await app.inject({ method: 'POST', url: `/v1.41/build?${query}`, payload: Buffer.alloc(10), headers: { 'content-type': 'application/x-tar' } });
    assert.equal(r.statusCode, query === 'version=2' ? 501 : 400, `${query}: ${r.body}`);
    assert.match((r.json() as { message: string }).message, message);
  }
  assert.equal(engine.seen.length, 0);
});

test('POST /build: an error before the stream is its status; after it, the last message with the exit code', async () => {
  const { app, engine } = setup();
  engine.script = async () => {
    throw new BerthError('BERTH_INVALID_ARGUMENT', 'dockerfile parse error line 4: unknown instruction: FOO');
  };
  const early = await app.inject({ method: 'POST', url: '/build', payload: Buffer.alloc(1), headers: { 'content-type': 'application/x-tar' } });
  assert.equal(early.statusCode, 400);
  assert.deepEqual(early.json(), { message: 'dockerfile parse error line 4: unknown instruction: FOO' });

  const text = "The command '/bin/sh -c false' returned a non-zero code: 1";
  engine.script = async (progress) => {
    progress({ stream: 'Step 2/2 : RUN false\n' });
    throw new BerthError('BERTH_BUILD_STEP_FAILED', text, { details: { exitCode: 1 } });
  };
  const late = await app.inject({ method: 'POST', url: '/build', payload: Buffer.alloc(1), headers: { 'content-type': 'application/x-tar' } });
  assert.equal(late.statusCode, 200);
  assert.deepEqual(lines(late.body), [{ stream: 'Step 2/2 : RUN false\n' }, { errorDetail: { code: 1, message: text }, error: text }]);

  // Quiet: nothing was written before the failure, and it still goes in the stream.
  engine.script = async () => {
    throw new BerthError('BERTH_BUILD_STEP_FAILED', text, { details: { exitCode: 1 } });
  };
  const quiet = await app.inject({ method: 'POST', url: '/build?q=1', payload: Buffer.alloc(1), headers: { 'content-type': 'application/x-tar' } });
  assert.equal(quiet.statusCode, 200);
  assert.deepEqual(lines(quiet.body), [{ errorDetail: { code: 1, message: text }, error: text }]);

  // Quiet success: the id alone, as a stream message.
  engine.script = async () => 'sha256:' + 'b'.repeat(64);
  const ok = await app.inject({ method: 'POST', url: '/build?q=1', payload: Buffer.alloc(1), headers: { 'content-type': 'application/x-tar' } });
  assert.deepEqual(lines(ok.body), [{ stream: `sha256:${'b'.repeat(64)}\n` }]);
});

test('POST /build without a builder in the engine: 501', async () => {
  const engine = new TestEngine();
  const app = createServer({ engine, logger: silentLogger() });
  const r = await app.inject({ method: 'POST', url: '/build', payload: Buffer.alloc(1), headers: { 'content-type': 'application/x-tar' } });
  assert.equal(r.statusCode, 501);
});

test('_ping says Builder-Version 1 (the classic builder) when the engine has one, nothing otherwise', async () => {
  const { app } = setup();
  assert.equal((await app.inject({ method: 'GET', url: '/_ping' })).headers['builder-version'], '1');
  assert.equal((await app.inject({ method: 'HEAD', url: '/_ping' })).headers['builder-version'], '1');
  const bare = createServer({ engine: new TestEngine(), logger: silentLogger() });
  assert.equal((await bare.inject({ method: 'GET', url: '/_ping' })).headers['builder-version'], undefined);
});
