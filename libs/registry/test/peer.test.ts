/**
 * The client against real peers: Debian's docker-registry (distribution 2.8) on 127.0.0.1,
 * seeded and checked by skopeo, which shares no code with us.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import type { BerthError } from '@berth/errors';
import { MediaType, RegistryClient, pullImage, pushImage, translatePullError, type PushEvent } from '../src/index.js';
import { peerSkipReason, readBusyboxTar, skopeo, startDockerRegistry, writeOciLayout, type OciLayoutImage, type TestRegistry } from '../src/testing.js';

const skip = peerSkipReason();
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function rootfsTar(): Promise<Buffer> {
  // The busybox fixture when it was made; else any bytes will do for the registry.
  return (await readBusyboxTar()) ?? Buffer.alloc(512 * 1024, 7);
}

describe('registry client vs docker-registry and skopeo', { skip }, () => {
  let reg: TestRegistry;
  let work: string;
  let img: OciLayoutImage;
  let tar: Buffer;
  const client = new RegistryClient();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-registry-test-'));
    reg = await startDockerRegistry();
    tar = await rootfsTar();
    img = await writeOciLayout(join(work, 'layout'), tar, '1');
    // OCI manifest as is, and converted to Docker schema 2 by skopeo.
    await skopeo('copy', '--dest-tls-verify=false', `oci:${img.dir}:1`, `docker://${reg.domain}/x/busybox:1`);
    await skopeo('copy', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${img.dir}:1`, `docker://${reg.domain}/x/busybox:v2s2`);
    const multi = await writeOciLayout(join(work, 'multi'), tar, 'multi', { extraPlatforms: ['arm64'], cmd: ['echo', 'multi'] });
    await skopeo('copy', '--all', '--dest-tls-verify=false', `oci:${multi.dir}:multi`, `docker://${reg.domain}/x/busybox:multi`);
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  for (const tag of ['1', 'v2s2']) {
    test(`pull of what skopeo pushed (${tag === '1' ? 'OCI manifest' : 'Docker schema 2'}): config and layer bytes as made`, async () => {
      const tmp = await mkdtemp(join(work, 'pull-'));
      const repo = client.repository(reg.domain, 'x/busybox');
      const pulled = await pullImage(repo, { reference: tag, tmpDir: tmp });
      assert.equal(pulled.configDigest, img.configDigest);
      assert.deepEqual(pulled.config, img.config);
      assert.equal(pulled.layers.length, 1);
      const l = pulled.layers[0]!;
      assert.equal(l.digest, img.layerDigest);
      assert.equal(l.mediaType, tag === '1' ? MediaType.OciLayerGzip : MediaType.DockerLayerGzip);
      assert.equal(sha(gunzipSync(await readFile(l.file!))), img.diffId);
      const m = await repo.getManifest(tag);
      assert.equal(m.mediaType, tag === '1' ? MediaType.OciManifest : MediaType.DockerManifest);
      await pulled.cleanup();
      assert.deepEqual(await readdir(tmp), []);
    });
  }

  test('pull of an index picks linux/amd64', async () => {
    const tmp = await mkdtemp(join(work, 'pull-'));
    const repo = client.repository(reg.domain, 'x/busybox');
    const top = await repo.getManifest('multi');
    assert.equal(top.parsed.kind, 'index');
    const pulled = await pullImage(repo, { reference: 'multi', tmpDir: tmp });
    assert.equal(pulled.digest, top.digest);
    const config = JSON.parse(pulled.config.toString()) as { architecture: string; config: { Cmd: string[] } };
    assert.equal(config.architecture, 'amd64');
    assert.deepEqual(config.config.Cmd, ['echo', 'multi']);
    const arm = await pullImage(repo, { reference: 'multi', tmpDir: tmp, platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal((JSON.parse(arm.config.toString()) as { architecture: string }).architecture, 'arm64');
    await pulled.cleanup();
    await arm.cleanup();
  });

  test('404: unknown tag and unknown repository, in Docker\'s words', async () => {
    const err = await client.repository(reg.domain, 'x/busybox').getManifest('nope').catch((e: unknown) => e);
    const t1 = translatePullError(err, `${reg.domain}/x/busybox`, `${reg.domain}/x/busybox:nope`) as BerthError;
    assert.equal(t1.code, 'BERTH_REGISTRY_NOT_FOUND');
    assert.equal(t1.message, `manifest for ${reg.domain}/x/busybox:nope not found: manifest unknown: manifest unknown`);
    const err2 = await client.repository(reg.domain, 'x/nothing').getManifest('latest').catch((e: unknown) => e);
    const t2 = translatePullError(err2, `${reg.domain}/x/nothing`, `${reg.domain}/x/nothing:latest`) as BerthError;
    assert.equal(t2.code, 'BERTH_REGISTRY_NOT_FOUND');
    assert.match(t2.message, new RegExp(`^(repository|manifest for) ${reg.domain.replace(/\./g, '\\.')}/x/nothing(:latest)? not found: `));
  });

  test('push (monolithic, chunked, mount) is read back by skopeo', async () => {
    const tmp = await mkdtemp(join(work, 'push-'));
    const layers = [{ diffId: img.diffId, open: () => Readable.from([tar]) }];
    const events: PushEvent[] = [];
    const a = client.repository(reg.domain, 'y/pushed', {}, ['pull', 'push']);
    const one = await pushImage(a, { tag: '1', config: img.config, layers, tmpDir: tmp, onEvent: (e) => events.push(e) });
    assert.ok(events.some((e) => e.state === 'pushed'));
    const raw = JSON.parse(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.domain}/y/pushed:1`)) as {
      mediaType: string;
      config: { digest: string };
      layers: { mediaType: string; digest: string }[];
    };
    assert.equal(raw.mediaType, MediaType.DockerManifest);
    assert.equal(raw.config.digest, img.configDigest);
    assert.equal(raw.layers[0]!.mediaType, MediaType.DockerLayerGzip);
    const inspect = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${reg.domain}/y/pushed:1`)) as { Digest: string; Architecture: string };
    assert.equal(inspect.Digest, one.digest);
    assert.equal(inspect.Architecture, 'amd64');
    await skopeo('copy', '--src-tls-verify=false', `docker://${reg.domain}/y/pushed:1`, `oci:${join(work, 'back')}:1`);
    // skopeo converts to an OCI manifest for an OCI layout (and may recompress): same layer content.
    const backIndex = JSON.parse(await readFile(join(work, 'back', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const backManifest = JSON.parse(await readFile(join(work, 'back', 'blobs', 'sha256', backIndex.manifests[0]!.digest.slice(7)), 'utf8')) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    // (skopeo re-marshals the config as an OCI config: compare its content, not its bytes.)
    const backConfig = JSON.parse(await readFile(join(work, 'back', 'blobs', 'sha256', backManifest.config.digest.slice(7)), 'utf8')) as { rootfs: unknown; architecture: string };
    assert.deepEqual(backConfig.rootfs, { type: 'layers', diff_ids: [img.diffId] });
    assert.equal(backConfig.architecture, 'amd64');
    const layerBack = await readFile(join(work, 'back', 'blobs', 'sha256', backManifest.layers[0]!.digest.slice(7)));
    assert.equal(sha(gunzipSync(layerBack)), img.diffId);

    // Again: every blob is there (HEAD), same manifest digest (deterministic gzip).
    events.length = 0;
    const again = await pushImage(a, { tag: '2', config: img.config, layers, tmpDir: tmp, onEvent: (e) => events.push(e) });
    assert.equal(again.digest, one.digest);
    assert.deepEqual(events.filter((e) => !['preparing', 'waiting', 'pushing'].includes(e.state)).map((e) => e.state), ['exists']);

    // Chunked upload (PATCH with Content-Range, then PUT ?digest=).
    const b = client.repository(reg.domain, 'y/chunked', {}, ['pull', 'push']);
    const chunked = await pushImage(b, { tag: '1', config: img.config, layers, tmpDir: tmp, chunkSize: 256 * 1024 });
    assert.equal(chunked.digest, one.digest);
    await skopeo('copy', '--src-tls-verify=false', `docker://${reg.domain}/y/chunked:1`, `oci:${join(work, 'back-chunked')}:1`);

    // Cross-repository mount from y/pushed.
    events.length = 0;
    const c = client.repository(reg.domain, 'y/mounted', {}, ['pull', 'push']);
    await pushImage(c, { tag: '1', config: img.config, layers, tmpDir: tmp, mountFrom: ['y/pushed'], onEvent: (e) => events.push(e) });
    const mounted = events.find((e) => e.state === 'mounted');
    assert.equal(mounted?.from, 'y/pushed');
    await skopeo('inspect', '--tls-verify=false', `docker://${reg.domain}/y/mounted:1`);
    assert.deepEqual(await readdir(tmp), [], 'no compressed layer left behind');
  });

  test('a blob upload from a file source streams in PATCH chunks of the asked size', async () => {
    const tmp = await mkdtemp(join(work, 'blob-'));
    const { writeFile } = await import('node:fs/promises');
    const data = Buffer.alloc(700 * 1024, 3);
    const file = join(tmp, 'blob');
    await writeFile(file, data);
    const repo = client.repository(reg.domain, 'y/blobs', {}, ['pull', 'push']);
    const progress: number[] = [];
    const r = await repo.pushBlob(
      { digest: sha(data), size: data.length, open: (range) => createReadStream(file, range ?? {}) },
      { chunkSize: 300 * 1024, onProgress: (n) => progress.push(n) },
    );
    assert.equal(r.result, 'pushed');
    assert.equal(progress.at(-1), data.length);
    assert.equal(await repo.statBlob(sha(data)), data.length);
    assert.deepEqual(await repo.readBlob(sha(data)), data);
  });
});

describe('registry client vs docker-registry with htpasswd Basic auth', { skip }, () => {
  let reg: TestRegistry;
  let work: string;
  let img: OciLayoutImage;
  const client = new RegistryClient();
  const creds = { username: 'berth', password: 'pw-' + process.pid };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-registry-auth-'));
    reg = await startDockerRegistry({ auth: creds });
    img = await writeOciLayout(join(work, 'layout'), await rootfsTar(), '1');
    await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', `${creds.username}:${creds.password}`, `oci:${img.dir}:1`, `docker://${reg.domain}/x/private:1`);
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('no credentials: no basic auth credentials; wrong ones: pull access denied / unauthorized; right ones: pull works', async () => {
    const anon = await client.repository(reg.domain, 'x/private').getManifest('1').catch((e: unknown) => e);
    assert.equal((anon as BerthError).code, 'BERTH_REGISTRY_UNAUTHORIZED');
    assert.equal((anon as Error).message, `Get "http://${reg.domain}/v2/x/private/manifests/1": no basic auth credentials`);
    assert.equal(translatePullError(anon, `${reg.domain}/x/private`, `${reg.domain}/x/private:1`), anon, "dockerd's text, as is");
    const wrongPull = await client.repository(reg.domain, 'x/private', { username: creds.username, password: 'nope' }).getManifest('1').catch((e: unknown) => e);
    const denied = translatePullError(wrongPull, `${reg.domain}/x/private`, `${reg.domain}/x/private:1`) as BerthError;
    assert.equal(denied.code, 'BERTH_REGISTRY_NOT_FOUND');
    assert.match(denied.message, new RegExp(`^pull access denied for ${reg.domain.replace(/\./g, '\\.')}/x/private, repository does not exist or may require 'docker login': unauthorized: `));

    const tmp = await mkdtemp(join(work, 'pull-'));
    const auth = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
    const pulled = await pullImage(client.repository(reg.domain, 'x/private', auth), { reference: '1', tmpDir: tmp });
    assert.equal(pulled.configDigest, img.configDigest);
    await pulled.cleanup();

    const wrong = client.repository(reg.domain, 'x/private', { username: creds.username, password: 'nope' }, ['pull', 'push']);
    await assert.rejects(
      pushImage(wrong, { tag: '2', config: img.config, layers: [], tmpDir: tmp }),
      (err: BerthError) => err.code === 'BERTH_REGISTRY_UNAUTHORIZED' && /unauthorized/.test(err.message),
    );
  });
});
