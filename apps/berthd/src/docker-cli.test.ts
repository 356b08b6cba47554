import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@berth/log';
import { createServer } from './server.js';
import { listen } from './http/listen.js';
import { TestEngine } from './test-engine.js';

/**
 * The real docker CLI against berthd with the fake engine: proves the CLI accepts our
 * headers (version negotiation, Server OS), error bodies and the hijack/wait protocol.
 */
const DOCKER = process.env.BERTH_DOCKER_CLI ?? '/usr/local/bin/docker';
const skip = existsSync(DOCKER) ? false : `no docker CLI at ${DOCKER}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function setup(t: { after(fn: () => Promise<void> | void): void }) {
  const dir = mkdtempSync(join(tmpdir(), `berthd-cli-${process.pid}-`));
  const sock = join(dir, 'berth.sock');
  mkdirSync(join(dir, 'config'));
  const engine = new TestEngine();
  const app = createServer({ engine, logger: silentLogger() });
  const listener = await listen(app, [`unix://${sock}`]);
  t.after(async () => {
    await listener.close();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const docker = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        DOCKER,
        args,
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'config') }, timeout: 20000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
      );
    });
  return { engine, docker };
}

test('docker version, ps and inspect against berthd', { skip }, async (t) => {
  const { engine, docker } = await setup(t);
  const v = await docker('version', '--format', '{{json .Server}}');
  assert.equal(v.code, 0, v.stderr);
  const server = JSON.parse(v.stdout) as { Version: string; ApiVersion: string; Os: string; Components: { Name: string }[] };
  assert.equal(server.Version, '0.1.0-test');
  assert.equal(server.ApiVersion, '1.47');
  assert.equal(server.Os, 'linux');
  const plain = await docker('version');
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /API version:\s+1\.47 \(minimum version 1\.24\)/);

  engine.add('web', { running: true });
  const ps = await docker('ps');
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /^CONTAINER ID/);
  assert.match(ps.stdout, /\bweb\n/);
  const psq = await docker('ps', '-aq', '--no-trunc', '--filter', 'name=web');
  assert.equal(psq.stdout.trim(), [...engine.containers.keys()][0]);

  const missing = await docker('container', 'inspect', 'x');
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr.trim(), 'Error response from daemon: No such container: x');
  const any = await docker('inspect', 'x');
  assert.equal(any.code, 1);
  assert.match(any.stderr, /No such object: x/);

  const info = await docker('info', '--format', '{{.Driver}}');
  assert.equal(info.stdout.trim(), 'vfs', info.stderr);
});

test('docker run: create, attach (101), wait (headers first), start, exit code from wait', { skip }, async (t) => {
  const { engine, docker } = await setup(t);
  const run = docker('run', '--rm', 'busybox', 'true');
  // The CLI starts the container only after the wait's headers arrived.
  for (let i = 0; i < 500 && !engine.calls.some((c) => c.method === 'startContainer'); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(engine.calls.some((c) => c.method === 'startContainer'), 'docker run never started the container');
  const wait = engine.waits.at(-1)!;
  assert.equal(wait.condition, 'removed');
  wait.resolve({ StatusCode: 3 });
  const r = await run;
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, 'hello\n');
  assert.equal(r.stderr, 'bye\n');
  const order = engine.calls.map((c) => c.method).filter((m) => ['createContainer', 'attachContainer', 'waitContainer', 'startContainer'].includes(m));
  assert.deepEqual(order, ['createContainer', 'attachContainer', 'waitContainer', 'startContainer']);

  const pull = await docker('run', '--rm', 'nosuchimage');
  assert.equal(pull.code, 125);
  assert.match(pull.stderr, /Unable to find image 'nosuchimage:latest' locally/);
  assert.match(pull.stderr, /Error response from daemon: pull access denied for nosuchimage, repository does not exist or may require 'docker login'/);
});

test('docker exec, logs and events against berthd', { skip }, async (t) => {
  const { engine, docker } = await setup(t);
  engine.add('c', { running: true });
  const exec = await docker('exec', 'c', 'sh', '-c', 'true');
  assert.equal(exec.code, 0, exec.stderr);
  assert.equal(exec.stdout, 'hello\n');
  assert.equal(exec.stderr, 'bye\n');
  assert.deepEqual((engine.calls.find((c) => c.method === 'createExec')?.args[1] as { Cmd: string[] }).Cmd, ['sh', '-c', 'true']);
  const detached = await docker('exec', '-d', 'c', 'sleep', '1');
  assert.equal(detached.code, 0, detached.stderr);
  assert.deepEqual(engine.calls.filter((c) => c.method === 'startExec').at(-1)?.args[1], { Detach: true, Tty: false });

  const logs = await docker('logs', 'c');
  assert.equal(logs.code, 0, logs.stderr);
  assert.equal(logs.stdout, 'line1\n');
  assert.equal(logs.stderr, 'line2\n');

  engine.pastEvents.push({ Type: 'container', Action: 'start', Actor: { ID: 'abc', Attributes: { name: 'c' } }, scope: 'local', time: 1700000000, timeNano: 1700000000e9 });
  const ev = await docker('events', '--since', '1699999999', '--until', String(Math.floor(Date.now() / 1000) + 1), '--format', '{{.Type}} {{.Action}} {{.Actor.ID}}');
  assert.equal(ev.code, 0, ev.stderr);
  assert.equal(ev.stdout, 'container start abc\n');
});
