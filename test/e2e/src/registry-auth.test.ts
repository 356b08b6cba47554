/**
 * berth login / logout against Debian's docker-registry behind htpasswd Basic auth on
 * 127.0.0.1: a wrong password in docker's words, the credentials kept in $BERTH_CONFIG
 * (0600, docker's `auths` shape), push and pull sending them, skopeo reading what we pushed
 * with the same credentials, logout taking them away.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { berthCliPath, DOCKER_CLI, startDaemon, type Daemon } from '@berth/test-support';
import { peerSkipReason, readBusyboxTar, skopeo, startDockerRegistry, type TestRegistry } from '@berth/registry/testing';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const skip = peerSkipReason() ?? (process.getuid?.() !== 0 ? 'needs root (berthd)' : undefined);
const USER = 'alice';
const PASS = `pw-${process.pid}`;

describe('berth login / logout against docker-registry with htpasswd', { skip, timeout: 120_000 }, () => {
  let daemon: Daemon;
  let reg: TestRegistry;
  let work: string;
  let cfgDir: string;

  function berth(args: string[], input?: string): Promise<Result> {
    return new Promise((resolve) => {
      const child = execFile(
        berthCliPath(),
        args,
        { env: { ...process.env, BERTH_HOST: daemon.host, BERTH_CONFIG: cfgDir, DOCKER_CONFIG: '/nonexistent' }, timeout: 60_000 },
        (err, stdout, stderr) => {
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
      child.stdin!.end(input ?? '');
    });
  }
  async function ok(args: string[], input?: string): Promise<string> {
    const r = await berth(args, input);
    assert.equal(r.code, 0, `berth ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  }

  before(async () => {
    const tar = (await readBusyboxTar()) ?? assert.fail('the busybox fixture is missing: node tools/fixtures/bin/make-busybox-tar');
    work = await mkdtemp(join(tmpdir(), 'berth-e2e-login-'));
    cfgDir = join(work, 'berth-config');
    await writeFile(join(work, 'busybox.tar'), tar);
    reg = await startDockerRegistry({ auth: { username: USER, password: PASS } });
    daemon = await startDaemon();
  });
  after(async () => {
    if (daemon !== undefined) await daemon.cleanup();
    await reg?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  test('a wrong password fails in docker words, exit 1, and stores nothing', async () => {
    const r = await berth(['login', '-u', USER, '--password-stdin', reg.domain], 'not-the-password\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^Error response from daemon: login attempt to http://${reg.domain.replace(/\./g, '\\.')}/v2/ failed with status: 401 Unauthorized$`, 'm'));
    assert.equal(r.stdout, '');
    assert.ok(!existsSync(join(cfgDir, 'config.json')), 'no config written');
  });

  test('without credentials a push is refused by the registry', async () => {
    const ref = `${reg.domain}/auth/busybox:1`;
    await ok(['import', '-c', 'CMD ["sh"]', join(work, 'busybox.tar'), ref]);
    const r = await berth(['push', ref]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no basic auth credentials/);
  });

  test('login with --password-stdin stores the credentials (0600, auths shape); push and pull send them; logout removes them', async () => {
    const out = await ok(['login', '--username', USER, '--password-stdin', reg.domain], `${PASS}\n`);
    assert.equal(out, 'Login Succeeded\n');
    const file = join(cfgDir, 'config.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const cfg = JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.deepEqual(cfg.auths, { [reg.domain]: { auth: Buffer.from(`${USER}:${PASS}`).toString('base64') } });

    const ref = `${reg.domain}/auth/busybox:1`;
    const pushed = await ok(['push', ref]);
    assert.match(pushed, /^1: digest: sha256:[a-f0-9]{64} size: \d+$/m);
    // An independent client with the same credentials sees the image.
    const inspected = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--creds', `${USER}:${PASS}`, `docker://${ref}`)) as { Digest: string };
    assert.ok(pushed.includes(inspected.Digest), 'skopeo reads the manifest we pushed');

    await ok(['rmi', ref]);
    await ok(['pull', ref]);
    assert.equal((await ok(['run', '--rm', ref, 'echo', 'pulled with credentials'])).trim(), 'pulled with credentials');

    // A build whose FROM must be pulled sends the client's credentials (X-Registry-Config).
    await ok(['rmi', ref]);
    const ctxDir = join(work, 'build-ctx');
    await mkdir(ctxDir, { recursive: true });
    await writeFile(join(ctxDir, 'Dockerfile'), `FROM ${ref}\nRUN echo built-on-private > /built\n`);
    const built = await ok(['build', '-q', '-t', `authbuilt-${process.pid}`, ctxDir]);
    assert.match(built, /^sha256:[a-f0-9]{64}\n$/);
    assert.equal(await ok(['run', '--rm', `authbuilt-${process.pid}`, 'cat', '/built']), 'built-on-private\n');
    await ok(['rmi', `authbuilt-${process.pid}`, ref]);
    // The docker CLI's classic builder sends its config.json's credentials the same way.
    const dockerCfg = join(work, 'docker-config');
    await mkdir(dockerCfg, { recursive: true });
    await writeFile(join(dockerCfg, 'config.json'), JSON.stringify({ auths: { [reg.domain]: { auth: Buffer.from(`${USER}:${PASS}`).toString('base64') } } }));
    const dockerBuild = await run(DOCKER_CLI, ['build', '-q', '-t', `authbuilt2-${process.pid}`, ctxDir], { DOCKER_HOST: daemon.host, DOCKER_CONFIG: dockerCfg, DOCKER_BUILDKIT: '0' });
    assert.equal(dockerBuild.code, 0, dockerBuild.stderr);
    assert.equal(await ok(['run', '--rm', `authbuilt2-${process.pid}`, 'cat', '/built']), 'built-on-private\n');
    await ok(['rmi', `authbuilt2-${process.pid}`]);

    assert.equal(await ok(['logout', reg.domain]), `Removing login credentials for ${reg.domain}\n`);
    assert.deepEqual((JSON.parse(await readFile(file, 'utf8')) as { auths: object }).auths, {});
    await ok(['rmi', ref]);
    const r = await berth(['pull', ref]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no basic auth credentials/);
    const b = await berth(['build', '-q', ctxDir]);
    assert.notEqual(b.code, 0, 'without credentials the build cannot pull its FROM');
    assert.match(b.stderr, /no basic auth credentials/);
  });
});
