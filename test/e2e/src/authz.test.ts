/**
 * Authorization plugins as a user runs them: berthd started with `--authorization-plugin`, the
 * example plugin (tools/examples/hello-authz-plugin.mjs, Berth's SDK) in its own process, driven
 * with the berth CLI and the real docker CLI: allowed requests work, a privileged run and a volume
 * removal are refused in Docker's words, streams and hijacks (logs, attach, exec) are asked
 * (AuthZReq only), a plugin that is gone fails requests with a 500 and nothing else, and once it
 * is back requests work again. No container, mount or socket is left.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertNoLeaksEventually, berthCli, berthdPath, busyboxImageTar, dockerCli, snapshotLeaks, startDaemon, type Daemon, type LeakSnapshot } from '@berth/test-support';

const tag = `${process.pid}${Math.random().toString(16).slice(2, 6)}`;
const plugin = `az${tag}`;
const socket = `/run/berth/plugins/${plugin}.sock`;
const example = fileURLToPath(new URL('../../../../tools/examples/hello-authz-plugin.mjs', import.meta.url));

let daemon: Daemon;
let child: ChildProcess | undefined;
let pluginLog = '';
let leaks: LeakSnapshot;
const dockerConfig = mkdtempSync(join(tmpdir(), `berth-authz-docker-${process.pid}-`));
const berth = berthCli(() => daemon.host, { timeoutMs: 60_000 });
const docker = dockerCli(() => daemon.host, { timeoutMs: 60_000, env: { DOCKER_CONFIG: dockerConfig } });

async function startPlugin(): Promise<void> {
  child = spawn(process.execPath, [example, plugin, '--dir', '/run/berth/plugins'], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (c: Buffer) => (pluginLog += c.toString()));
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(socket), `plugin did not start: ${pluginLog}`);
}

async function stopPlugin(): Promise<void> {
  const c = child;
  child = undefined;
  if (c === undefined || c.exitCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await exited;
}

/** One raw API call, for the status code the CLIs do not show. */
function api(method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: daemon.socket, method, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The plugin's log lines since `mark` (an offset of pluginLog). */
const logSince = (mark: number): string[] => pluginLog.slice(mark).split('\n').filter(Boolean);

describe('authorization plugins: berthd --authorization-plugin with the example plugin, berth and docker CLIs', { timeout: 180_000 }, () => {
  before(async () => {
    await startPlugin();
    daemon = await startDaemon({ args: ['--authorization-plugin', plugin] });
    const roots = (mp: string): boolean => mp.startsWith(daemon.dataRoot) || mp.startsWith(daemon.execRoot);
    leaks = await snapshotLeaks({ processMarkers: [daemon.execRoot], mountFilter: roots });
    await berth.ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });

  after(async () => {
    try {
      if (child === undefined) await startPlugin();
      const ids = (await berth.run(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
      if (ids.length) await berth.run(['rm', '-f', ...ids]);
      await assertNoLeaksEventually(leaks, 'authz e2e');
    } finally {
      await daemon.cleanup();
      await stopPlugin();
      rmSync(dockerConfig, { recursive: true, force: true });
      assert.ok(!existsSync(socket), 'the plugin removed its socket');
    }
  });

  test('info lists the plugin; allowed requests work and each goes through AuthZReq and AuthZRes', async () => {
    assert.equal(await docker.ok(['info', '--format', '{{json .Plugins.Authorization}}']), `["${plugin}"]\n`);
    assert.match(await berth.ok(['info']), new RegExp(`\n  Authorization: ${plugin}\n`));
    const mark = pluginLog.length;
    assert.equal((await docker.run(['run', '--rm', 'busybox', 'true'])).code, 0);
    assert.equal(await berth.ok(['run', '--rm', 'busybox', 'echo', 'hi']), 'hi\n');
    const lines = logSince(mark);
    assert.ok(lines.some((l) => new RegExp(`^${plugin}: AuthZReq POST /v[\\d.]+/containers/create -> allow$`).test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => new RegExp(`^${plugin}: AuthZRes POST /v[\\d.]+/containers/create 201$`).test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /AuthZReq GET \/_ping -> allow$/.test(l) || /AuthZReq HEAD \/_ping/.test(l)), 'the CLI\'s ping is asked too');
  });

  test('a name that cannot be a plugin is a start-up error', async () => {
    const r = spawnSync(berthdPath(), ['--authorization-plugin', '../etc/x'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^berthd: invalid authorization plugin name "\.\.\/etc\/x"/);
  });

  test('run --privileged is refused in Docker words (exit 125) and leaves no container', async () => {
    const before = (await docker.ok(['ps', '-aq'])).trim();
    const d = await docker.run(['run', '--rm', '--privileged', 'busybox', 'true']);
    assert.equal(d.code, 125, d.stderr);
    assert.match(d.stderr, new RegExp(`^docker: Error response from daemon: authorization denied by plugin ${plugin}: privileged containers are not allowed here\\.?\\n`));
    const b = await berth.run(['run', '--rm', '--privileged', 'busybox', 'true']);
    assert.equal(b.code, 125, b.stderr);
    assert.match(b.stderr, new RegExp(`authorization denied by plugin ${plugin}: privileged containers are not allowed here`));
    assert.equal((await docker.ok(['ps', '-aq'])).trim(), before);
  });

  test('volume rm is refused with a 403; the volume stays', async () => {
    const v = `authz-${tag}`;
    assert.equal(await docker.ok(['volume', 'create', v]), `${v}\n`);
    const d = await docker.run(['volume', 'rm', v]);
    assert.equal(d.code, 1);
    assert.match(d.stderr, new RegExp(`Error response from daemon: authorization denied by plugin ${plugin}: volumes may not be removed`));
    const raw = await api('DELETE', `/v1.41/volumes/${v}`);
    assert.equal(raw.status, 403);
    assert.deepEqual(JSON.parse(raw.body), { message: `authorization denied by plugin ${plugin}: volumes may not be removed` });
    assert.equal(await docker.ok(['volume', 'ls', '-q', '--filter', `name=${v}`]), `${v}\n`);
  });

  test('logs, attach and exec go through AuthZReq (streams and hijacks: no AuthZRes)', async () => {
    const name = `authz-s-${tag}`;
    const id = (await docker.ok(['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'echo first; sleep 2; echo late; sleep 8'])).trim();
    const mark = pluginLog.length;
    assert.equal(await docker.ok(['exec', name, 'echo', 'there']), 'there\n');
    assert.equal(await berth.ok(['exec', name, 'echo', 'again']), 'again\n');
    await new Promise((r) => setTimeout(r, 300));
    assert.match(await docker.ok(['logs', name]), /^first\n/);
    // attach, last: the container prints "late" while attached, and the attach ends with it.
    const att = await docker.run(['attach', '--no-stdin', name], { timeoutMs: 30_000 });
    assert.match(att.stdout, /late/);
    const lines = logSince(mark);
    const has = (re: RegExp): boolean => lines.some((l) => re.test(l));
    const show = lines.join('\n');
    assert.ok(has(new RegExp(`AuthZReq POST /v[\\d.]+/containers/${name}/exec -> allow`)), show);
    assert.ok(has(/AuthZReq POST \/v[\d.]+\/exec\/[0-9a-f]{64}\/start -> allow/), show);
    assert.ok(has(new RegExp(`AuthZReq GET /v[\\d.]+/containers/${id}/logs\\?.* -> allow`)), show);
    assert.ok(has(new RegExp(`AuthZReq POST /v[\\d.]+/containers/${name}/attach\\?.* -> allow`)), show);
    assert.ok(!has(/AuthZRes POST \/v[\d.]+\/exec\/[0-9a-f]{64}\/start/), show);
    assert.ok(!has(/AuthZRes POST \/v[\d.]+\/containers\/[^/]+\/attach/), show);
    assert.ok(!has(/AuthZRes GET \/v[\d.]+\/containers\/[^/]+\/logs/), show);
    assert.ok(has(new RegExp(`AuthZRes POST /v[\\d.]+/containers/${name}/exec 201`)), show);
    await docker.ok(['rm', '-f', id]);
  });

  test('a stopped plugin fails requests with a 500 naming it, nothing else breaks; once back, requests work again', async () => {
    const name = `authz-k-${tag}`;
    await docker.ok(['run', '-d', '--name', name, 'busybox', 'sleep', '120']);
    await stopPlugin();
    assert.ok(!existsSync(socket));
    const t0 = Date.now();
    const raw = await api('GET', '/v1.41/containers/json');
    assert.equal(raw.status, 500);
    assert.match(JSON.parse(raw.body).message, new RegExp(`^plugin ${plugin} failed with error: AuthZPlugin\\.AuthZReq: `));
    assert.ok(Date.now() - t0 < 10_000, 'fails after a short retry');
    const ps = await docker.run(['ps']);
    assert.equal(ps.code, 1);
    assert.match(ps.stderr, new RegExp(`Error response from daemon: plugin ${plugin} failed with error: AuthZPlugin\\.AuthZReq: `));
    const b = await berth.run(['ps']);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, new RegExp(`plugin ${plugin} failed with error`));
    await startPlugin();
    // The container lived on; the daemon answers again through the plugin.
    assert.equal((await docker.ok(['inspect', '--format', '{{.State.Running}}', name])).trim(), 'true');
    assert.equal((await api('GET', '/_ping')).body, 'OK');
    await docker.ok(['rm', '-f', name]);
    assert.equal((await docker.ok(['ps', '-aq'])).trim(), '');
  });
});
