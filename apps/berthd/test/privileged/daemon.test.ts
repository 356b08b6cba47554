/**
 * The berthd process with the real engine on scratch roots: starts from bin/berthd, serves the
 * docker CLI, refuses a second daemon on its pid file, and on SIGTERM exits 0 removing its
 * socket and pid file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '../../../bin/berthd');
const DOCKER = '/usr/local/bin/docker';
const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync(DOCKER) ? 'no docker CLI' : false;

function ping(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const r = request({ socketPath: sock, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    r.on('error', () => resolve(false));
    r.end();
  });
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 30000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    ),
  );
}

test('berthd serves the docker CLI with the real engine, refuses a second daemon, shuts down cleanly', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), `berthd-priv-${process.pid}-`));
  const execRoot = `/run/berthd-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const sock = join(dir, 'berth.sock');
  const pidfile = join(dir, 'berthd.pid');
  const cfg = join(dir, 'daemon.json');
  writeFileSync(cfg, JSON.stringify({ 'storage-driver': 'vfs', 'log-level': 'info' }));
  const args = ['--data-root', join(dir, 'data'), '--exec-root', execRoot, '-H', `unix://${sock}`, '--pidfile', pidfile, '--config-file', cfg];
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(execRoot, { recursive: true, force: true });
  });

  for (let i = 0; i < 400 && !(await ping(sock)); i++) {
    assert.equal(child.exitCode, null, `berthd exited early:\n${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(await ping(sock), true, out);
  assert.equal(statSync(sock).mode & 0o777, 0o660);

  const env = { DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'cli') };
  const v = await run(DOCKER, ['version', '--format', '{{.Server.Os}} {{.Server.APIVersion}}'], env);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), 'linux 1.47');
  const info = await run(DOCKER, ['info', '--format', '{{.Driver}}'], env);
  assert.equal(info.stdout.trim(), 'vfs', info.stderr);

  // docker import through the raw-body route, then the image is listed and tagged.
  mkdirSync(join(dir, 'root'));
  writeFileSync(join(dir, 'root', 'hello'), 'hi\n');
  const tar = await run('tar', ['-C', join(dir, 'root'), '-cf', join(dir, 'img.tar'), '.']);
  assert.equal(tar.code, 0);
  const imp = await run(DOCKER, ['import', join(dir, 'img.tar'), `berthd-test-${process.pid}:v1`], env);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  const images = await run(DOCKER, ['images', '--format', '{{.Repository}}:{{.Tag}}'], env);
  assert.match(images.stdout, new RegExp(`berthd-test-${process.pid}:v1`));
  const missing = await run(DOCKER, ['container', 'inspect', 'nosuch'], env);
  assert.equal(missing.stderr.trim(), 'Error response from daemon: No such container: nosuch');

  // A second daemon on the same pid file is refused.
  const second = await run(BIN, ['--data-root', join(dir, 'data2'), '--exec-root', execRoot + '-2', '-H', `unix://${join(dir, 'b.sock')}`, '--pidfile', pidfile, '--config-file', cfg]);
  rmSync(execRoot + '-2', { recursive: true, force: true });
  assert.equal(second.code, 1);
  assert.match(second.stderr, /pid file found, ensure berthd is not running/);
  assert.equal(existsSync(join(dir, 'b.sock')), false);

  child.kill('SIGTERM');
  assert.equal(await exited, 0, out);
  assert.equal(existsSync(sock), false, 'socket removed');
  assert.equal(existsSync(pidfile), false, 'pid file removed');
  assert.match(out, /shutting down/);
});
