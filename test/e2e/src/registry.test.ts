/**
 * berth pull / push / run against Debian's docker-registry on 127.0.0.1, seeded and checked
 * by skopeo (no code in common with ours), plus a fake registry that serves a corrupt layer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { berthCliPath, startDaemon, type Daemon } from '@berth/test-support';
import { peerSkipReason, readBusyboxTar, skopeo, startDockerRegistry, writeOciLayout, type OciLayoutImage, type TestRegistry } from '@berth/registry/testing';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const skip = peerSkipReason() ?? (process.getuid?.() !== 0 ? 'needs root (berthd)' : undefined);

let daemon: Daemon;

function berth(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(berthCliPath(), args, { env: { ...process.env, BERTH_HOST: daemon.host, DOCKER_CONFIG: '/nonexistent', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await berth(args, env);
  assert.equal(r.code, 0, `berth ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

describe('berth pull / push against docker-registry', { skip, timeout: 180_000 }, () => {
  let reg: TestRegistry;
  let work: string;
  let img: OciLayoutImage;
  let tar: Buffer;

  before(async () => {
    tar = (await readBusyboxTar()) ?? assert.fail('the busybox fixture is missing: node tools/fixtures/bin/make-busybox-tar');
    work = await mkdtemp(join(tmpdir(), 'berth-e2e-registry-'));
    reg = await startDockerRegistry();
    img = await writeOciLayout(join(work, 'layout'), tar, '1', { cmd: ['echo', 'from the registry'] });
    await skopeo('copy', '--dest-tls-verify=false', `oci:${img.dir}:1`, `docker://${reg.domain}/x/busybox:1`);
    const multi = await writeOciLayout(join(work, 'multi'), tar, 'multi', { extraPlatforms: ['arm64'], cmd: ['echo', 'multi-arch'] });
    await skopeo('copy', '--all', '--dest-tls-verify=false', `oci:${multi.dir}:multi`, `docker://${reg.domain}/x/busybox:multi`);
    daemon = await startDaemon();
  });
  after(async () => {
    if (daemon !== undefined) {
      const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
      if (ids.length) await berth(['rm', '-f', ...ids]);
      await daemon.cleanup();
    }
    await reg?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  test('pull: what skopeo pushed arrives with the same image id and config; a second pull is up to date', async () => {
    const ref = `${reg.domain}/x/busybox:1`;
    const out = await ok(['pull', ref]);
    const lines = out.trim().split('\n');
    const layer = img.layerDigest.slice(7, 19);
    assert.deepEqual(lines, [
      '1: Pulling from x/busybox',
      `${layer}: Pulling fs layer`,
      `${layer}: Verifying Checksum`,
      `${layer}: Download complete`,
      `${layer}: Pull complete`,
      `Digest: ${img.manifestDigest}`,
      `Status: Downloaded newer image for ${ref}`,
      ref,
    ]);
    const inspect = JSON.parse(await ok(['image', 'inspect', ref])) as [{ Id: string; RepoDigests: string[]; RootFS: { Layers: string[] }; Config: { Cmd: string[] } }];
    assert.equal(inspect[0].Id, img.configDigest);
    assert.deepEqual(inspect[0].RootFS.Layers, [img.diffId]);
    assert.deepEqual(inspect[0].Config.Cmd, ['echo', 'from the registry']);
    assert.ok(inspect[0].RepoDigests.includes(`${reg.domain}/x/busybox@${img.manifestDigest}`), JSON.stringify(inspect[0].RepoDigests));

    // Docker lists no layers for an image it has.
    const again = await ok(['pull', ref]);
    assert.deepEqual(again.trim().split('\n'), ['1: Pulling from x/busybox', `Digest: ${img.manifestDigest}`, `Status: Image is up to date for ${ref}`, ref]);
    // Another tag of the same layer, with another config: the layer is there already.
    const other = await writeOciLayout(join(work, 'other'), tar, 'other', { cmd: ['true'] });
    await skopeo('copy', '--dest-tls-verify=false', `oci:${other.dir}:other`, `docker://${reg.domain}/x/busybox:other`);
    assert.match(await ok(['pull', `${reg.domain}/x/busybox:other`]), new RegExp(`${layer}: Already exists`));
    assert.deepEqual(await readdir(join(daemon.dataRoot, 'tmp')), [], 'no downloaded blob left');

    const quiet = await ok(['pull', '-q', ref]);
    assert.equal(quiet, `${ref}\n`);
  });

  test('run pulls an image it does not have (an index: the amd64 entry) and runs it', async () => {
    const r = await berth(['run', '--rm', `${reg.domain}/x/busybox:multi`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'multi-arch\n');
    assert.match(r.stderr, new RegExp(`Unable to find image '${reg.domain.replace(/\./g, '\\.')}/x/busybox:multi' locally`));
    assert.match(r.stderr, /Status: Downloaded newer image/);
  });

  test('push of an imported image: skopeo reads it back; again: layers exist; to another repo: mounted', async () => {
    const tarFile = join(work, 'busybox.tar');
    await writeFile(tarFile, tar);
    const ref = `${reg.domain}/y/imported:v1`;
    await ok(['import', '-c', 'CMD ["sh"]', tarFile, ref]);
    const inspect = JSON.parse(await ok(['image', 'inspect', ref])) as [{ Id: string; RootFS: { Layers: string[] } }];
    const out = await ok(['push', ref]);
    const diff = inspect[0].RootFS.Layers[0]!.slice(7, 19);
    const lines = out.trim().split('\n');
    assert.equal(lines[0], `The push refers to repository [${reg.domain}/y/imported]`);
    assert.ok(lines.includes(`${diff}: Preparing`), out);
    assert.ok(lines.includes(`${diff}: Pushed`), out);
    assert.ok(!lines.includes(`${diff}: Waiting`), 'Waiting only behind the concurrency limit');
    const last = /^v1: digest: (sha256:[a-f0-9]{64}) size: (\d+)$/.exec(lines.at(-1)!);
    assert.ok(last, out);

    const remote = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${reg.domain}/y/imported:v1`)) as { Digest: string; Layers: string[] };
    assert.equal(remote.Digest, last[1]);
    const config = await skopeo('inspect', '--config', '--raw', '--tls-verify=false', `docker://${reg.domain}/y/imported:v1`);
    assert.equal(sha(config), inspect[0].Id, 'the config went up byte for byte');
    await skopeo('copy', '--src-tls-verify=false', `docker://${reg.domain}/y/imported:v1`, `oci:${join(work, 'back')}:v1`);
    const index = JSON.parse(await readFile(join(work, 'back', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(await readFile(join(work, 'back', 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
    const layer = await readFile(join(work, 'back', 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7)));
    assert.equal(sha(gunzipSync(layer)), inspect[0].RootFS.Layers[0]);

    const again = await ok(['push', ref]);
    assert.match(again, new RegExp(`${diff}: Layer already exists`));

    await ok(['tag', ref, `${reg.domain}/y/other:v1`]);
    const mounted = await ok(['push', `${reg.domain}/y/other:v1`]);
    assert.match(mounted, new RegExp(`${diff}: Mounted from y/imported`));
    await skopeo('inspect', '--tls-verify=false', `docker://${reg.domain}/y/other:v1`);
  });

  test('bad input: unknown tag, unknown local image to push, a registry nobody listens on', async () => {
    const nope = await berth(['pull', `${reg.domain}/x/busybox:nope`]);
    assert.equal(nope.code, 1);
    assert.equal(nope.stderr, `Error response from daemon: manifest for ${reg.domain}/x/busybox:nope not found: manifest unknown: manifest unknown\n`);
    const push = await berth(['push', `${reg.domain}/y/never:v1`]);
    assert.equal(push.code, 1);
    assert.equal(push.stdout, `The push refers to repository [${reg.domain}/y/never]\n`);
    assert.equal(push.stderr, `An image does not exist locally with the tag: ${reg.domain}/y/never\n`);
    const gone = await berth(['pull', '127.0.0.1:1/x/y:z']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /connection refused/);
  });

  test('a layer whose bytes do not match its digest: an error, nothing stored', async () => {
    const good = gzipSync(Buffer.from('layer'));
    const bad = Buffer.from(good);
    bad[bad.length - 5]! ^= 0xff;
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('layer')] } }));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha(config) },
        layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: good.length, digest: sha(good) }],
      }),
    );
    const server: Server = createServer((req, res) => {
      const url = req.url ?? '';
      if (url === '/v2/') return res.end('{}');
      if (url.includes('/manifests/')) {
        res.setHeader('content-type', 'application/vnd.docker.distribution.manifest.v2+json');
        return res.end(manifest);
      }
      if (url.endsWith(sha(config))) return res.end(config);
      if (url.endsWith(sha(good))) return res.end(bad);
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const domain = `127.0.0.1:${(server.address() as { port: number }).port}`;
      const before = await ok(['images', '-q']);
      const r = await berth(['pull', `${domain}/x/corrupt:1`]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `filesystem layer verification failed for digest ${sha(good)}\n`);
      assert.equal(await ok(['images', '-q']), before);
      assert.deepEqual(await readdir(join(daemon.dataRoot, 'tmp')), []);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('berth pull against docker-registry with htpasswd Basic auth', { skip, timeout: 120_000 }, () => {
  let reg: TestRegistry;
  let work: string;
  const creds = { username: 'berth', password: `pw-${process.pid}` };

  before(async () => {
    const tar = (await readBusyboxTar()) ?? assert.fail('the busybox fixture is missing');
    work = await mkdtemp(join(tmpdir(), 'berth-e2e-registry-auth-'));
    reg = await startDockerRegistry({ auth: creds });
    const img = await writeOciLayout(join(work, 'layout'), tar, '1');
    await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', `${creds.username}:${creds.password}`, `oci:${img.dir}:1`, `docker://${reg.domain}/x/private:1`);
    daemon = await startDaemon();
  });
  after(async () => {
    await daemon?.cleanup();
    await reg?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  test('without credentials: no basic auth credentials; wrong ones: pull access denied; right ones from config.json: pulled', async () => {
    const ref = `${reg.domain}/x/private:1`;
    const anon = await berth(['pull', ref]);
    assert.equal(anon.code, 1);
    assert.equal(anon.stderr, `Error response from daemon: Get "http://${reg.domain}/v2/x/private/manifests/1": no basic auth credentials\n`);
    const wrong = join(work, 'wrong-config');
    await import('node:fs/promises').then((fs) => fs.mkdir(wrong));
    await writeFile(join(wrong, 'config.json'), JSON.stringify({ auths: { [reg.domain]: { auth: Buffer.from(`${creds.username}:nope`).toString('base64') } } }));
    const denied = await berth(['pull', ref], { DOCKER_CONFIG: wrong });
    assert.equal(denied.code, 1);
    assert.match(
      denied.stderr,
      new RegExp(`^Error response from daemon: pull access denied for ${reg.domain.replace(/\./g, '\\.')}/x/private, repository does not exist or may require 'docker login'`),
    );
    const cfg = join(work, 'docker-config');
    await rm(cfg, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(cfg));
    await writeFile(join(cfg, 'config.json'), JSON.stringify({ auths: { [reg.domain]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } } }));
    const out = await ok(['pull', ref], { DOCKER_CONFIG: cfg });
    assert.match(out, /Status: Downloaded newer image/);
  });
});
