/**
 * A zstd pull end to end: skopeo (no code in common with ours) recompresses an image's layer to
 * zstd while pushing it to Debian's docker-registry on 127.0.0.1; berth pulls it, the layer is
 * decompressed and checked against its diffID, and a container runs from it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { berthCli, startDaemon, type Daemon } from '@berth/test-support';
import { peerSkipReason, readBusyboxTar, skopeo, startDockerRegistry, writeOciLayout, type OciLayoutImage, type TestRegistry } from '@berth/registry/testing';


const skip = peerSkipReason() ?? (process.getuid?.() !== 0 ? 'needs root (berthd)' : undefined);

describe('berth pull of zstd layers pushed by skopeo', { skip, timeout: 120_000 }, () => {
  let daemon: Daemon;
  let reg: TestRegistry;
  let work: string;
  let img: OciLayoutImage;
  const marker = `zstd-${process.pid}-${Date.now()}`;

  const cli = berthCli(() => daemon.host, { env: { DOCKER_CONFIG: '/nonexistent', BERTH_CONFIG: '/nonexistent' } });
  const berth = cli.run;
  const ok = cli.ok;

  before(async () => {
    const busybox = (await readBusyboxTar()) ?? assert.fail('the busybox fixture is missing: node tools/fixtures/bin/make-busybox-tar');
    work = await mkdtemp(join(tmpdir(), 'berth-e2e-zstd-'));
    // A rootfs no other test stores: busybox plus a file naming this run.
    const rootfs = join(work, 'rootfs.tar');
    await writeFile(rootfs, busybox);
    await mkdir(join(work, 'extra'));
    await writeFile(join(work, 'extra', 'marker'), `${marker}\n`);
    execFileSync('tar', ['--append', '-f', rootfs, '-C', join(work, 'extra'), '--owner=0', '--group=0', 'marker']);
    img = await writeOciLayout(join(work, 'layout'), await readFile(rootfs), '1', { cmd: ['cat', '/marker'] });
    reg = await startDockerRegistry();
    await skopeo('copy', '--dest-tls-verify=false', '--dest-compress-format', 'zstd', '--format', 'oci', `oci:${img.dir}:1`, `docker://${reg.domain}/z/busybox:1`);
    daemon = await startDaemon();
  });
  after(async () => {
    if (daemon !== undefined) await daemon.cleanup();
    await reg?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  test('the registry holds a zstd layer; berth pulls it to the same image id and runs it', async () => {
    const raw = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${reg.domain}/z/busybox:1`)) as { layers: { mediaType: string; digest: string }[] };
    assert.equal(raw.layers.length, 1);
    assert.equal(raw.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    assert.notEqual(raw.layers[0]!.digest, img.layerDigest, 'skopeo recompressed the layer');

    const out = await ok(['pull', `${reg.domain}/z/busybox:1`]);
    const short = raw.layers[0]!.digest.slice(7, 19);
    assert.match(out, new RegExp(`^${short}: Pull complete$`, 'm'));
    assert.match(out, /^Status: Downloaded newer image for /m);
    assert.equal((await ok(['image', 'inspect', '-f', '{{.Id}}', `${reg.domain}/z/busybox:1`])).trim(), img.configDigest);
    assert.equal((await ok(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', `${reg.domain}/z/busybox:1`])).trim(), JSON.stringify([img.diffId]));
    assert.equal(await ok(['run', '--rm', `${reg.domain}/z/busybox:1`]), `${marker}\n`);
  });
});
