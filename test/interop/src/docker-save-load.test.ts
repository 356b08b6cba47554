/**
 * `docker save` / `docker load` (docker CLI 28) against berthd, and skopeo reading what berthd
 * saved. With the reference dockerd reachable, an archive written by dockerd 20.10 loads too
 * (skipped in CI, which has no dockerd).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';

const DOCKER = process.env.BERTH_DOCKER_CLI ?? '/usr/local/bin/docker';
const REF_SOCK = '/run/docker-ref.sock';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let daemon: Daemon;
let work: string;

function run(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, DOCKER_CONFIG: path.join(work, 'docker-config'), ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
const docker = (args: string[]): Promise<Result> => run(DOCKER, args, { DOCKER_HOST: daemon.host });
async function ok(args: string[]): Promise<string> {
  const r = await docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const refReachable = (): boolean => existsSync(REF_SOCK) && spawnSync(DOCKER, ['-H', `unix://${REF_SOCK}`, 'image', 'inspect', 'busybox:latest'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
const hasSkopeo = spawnSync('skopeo', ['--version'], { stdio: 'ignore' }).status === 0;

describe('docker save and docker load against berthd', { timeout: 180_000 }, () => {
  let id: string;
  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), `berth-interop-saveload-${process.pid}-`));
    daemon = await startDaemon();
    id = (await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest'])).trim();
  });
  after(async () => {
    const ids = (await docker(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await docker(['rm', '-f', ...ids]);
    await daemon.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  test('save -o, rmi, load -i: the same image id, and a container runs from it', async () => {
    const file = path.join(work, 'bb.tar');
    await ok(['save', '-o', file, 'busybox:latest']);
    assert.ok(statSync(file).size > 1 << 20);
    await ok(['rmi', 'busybox:latest']);
    assert.notEqual((await docker(['image', 'inspect', id])).code, 0);
    const out = await ok(['load', '-i', file]);
    assert.equal(out, 'Loaded image: busybox:latest\n');
    assert.equal((await ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox:latest'])).trim(), id);
    assert.equal(await ok(['run', '--rm', 'busybox', 'sh', '-c', 'echo loaded-ok']), 'loaded-ok\n');
    // Loading what is already there changes nothing and says so the same way.
    assert.equal(await ok(['load', '-q', '-i', file]), 'Loaded image: busybox:latest\n');
  });

  test('save of an id writes no tags; load of it prints the id; a missing image fails before any byte', async () => {
    const file = path.join(work, 'byid.tar');
    await ok(['save', '-o', file, id.slice(7, 19)]);
    assert.equal(await ok(['load', '-i', file]), `Loaded image ID: ${id}\n`);
    const r = await docker(['save', '-o', path.join(work, 'none.tar'), 'nosuch:1']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No such image: nosuch:1/);
    assert.ok(!existsSync(path.join(work, 'none.tar')));
  });

  test('load of garbage is a clear error', async () => {
    const junk = path.join(work, 'junk.tar');
    spawnSync('sh', ['-c', `head -c 10000 /dev/urandom > ${junk}`]);
    const r = await docker(['load', '-i', junk]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /invalid archive|gzip|tar/i);
  });

  test('skopeo reads our save: inspect shows our layers, copy to an OCI layout succeeds', { skip: !hasSkopeo && 'skopeo not installed' }, async () => {
    const file = path.join(work, 'sk.tar');
    await ok(['save', '-o', file, 'busybox:latest']);
    const layers = JSON.parse(await ok(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', 'busybox:latest'])) as string[];
    const raw = await run('skopeo', ['inspect', '--raw', `docker-archive:${file}`]);
    assert.equal(raw.code, 0, raw.stderr);
    assert.deepEqual((JSON.parse(raw.stdout) as { layers: { digest: string }[] }).layers.map((l) => l.digest), layers);
    const copy = await run('skopeo', ['copy', '-q', `docker-archive:${file}`, `oci:${path.join(work, 'oci')}:bb`]);
    assert.equal(copy.code, 0, copy.stderr);
    const arch = path.join(work, 'sk-oci.tar');
    const copy2 = await run('skopeo', ['copy', '-q', '--preserve-digests', `docker-archive:${file}`, `oci-archive:${arch}:skopeo/bb:1`]);
    assert.equal(copy2.code, 0, copy2.stderr);
    assert.equal(await ok(['load', '-i', arch]), 'Loaded image: skopeo/bb:1\n');
    assert.equal((await ok(['image', 'inspect', '-f', '{{.Id}}', 'skopeo/bb:1'])).trim(), id);
  });

  test('an archive written by dockerd 20.10 loads and runs', { skip: !refReachable() && `reference dockerd not reachable at ${REF_SOCK}` }, async () => {
    const file = path.join(work, 'ref.tar');
    const s = await run(DOCKER, ['save', '-o', file, 'busybox:latest'], { DOCKER_HOST: `unix://${REF_SOCK}` });
    assert.equal(s.code, 0, s.stderr);
    const refId = (await run(DOCKER, ['image', 'inspect', '-f', '{{.Id}}', 'busybox:latest'], { DOCKER_HOST: `unix://${REF_SOCK}` })).stdout.trim();
    await ok(['tag', 'busybox:latest', 'ours:kept']);
    const out = await ok(['load', '-i', file]);
    assert.match(out, /Loaded image: busybox:latest\n$/);
    assert.equal((await ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox:latest'])).trim(), refId);
    assert.equal(await ok(['run', '--rm', 'busybox:latest', 'echo', 'ref-ok']), 'ref-ok\n');
    // And back: dockerd reads what berthd saves of it.
    const back = path.join(work, 'back.tar');
    await ok(['save', '-o', back, 'busybox:latest']);
    const l = await run(DOCKER, ['load', '-i', back], { DOCKER_HOST: `unix://${REF_SOCK}` });
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, /Loaded image: busybox:latest/);
  });
});
