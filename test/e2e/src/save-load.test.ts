/** berth save / berth load as a user drives them: round trip, stdout/stdin pipes, a container from the loaded image. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { berthCliPath, busyboxImageTar, makeTempDir, startDaemon, type Daemon, type TempDir } from '@berth/test-support';

interface Result {
  code: number;
  stdout: Buffer;
  stderr: string;
}

let daemon: Daemon;
let tmp: TempDir;

function berth(args: string[], input?: Buffer): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(berthCliPath(), args, { env: { ...process.env, BERTH_HOST: daemon.host }, timeout: 60_000, encoding: 'buffer', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr: stderr.toString('utf8') });
    });
    child.stdin!.end(input);
  });
}

async function ok(args: string[], input?: Buffer): Promise<string> {
  const r = await berth(args, input);
  assert.equal(r.code, 0, `berth ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout.toString('utf8');
}

describe('berth save and berth load', { timeout: 120_000 }, () => {
  let id: string;
  before(async () => {
    daemon = await startDaemon();
    tmp = await makeTempDir('berth-e2e-saveload');
    id = (await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest'])).trim();
    await ok(['tag', 'busybox', 'mine/bb:v1']);
  });
  after(async () => {
    await daemon.cleanup();
    await tmp.remove();
  });

  test('save -o, rmi, load -i: same id and tags; a container runs from the loaded image', async () => {
    const file = path.join(tmp.path, 'two.tar');
    await ok(['save', '-o', file, 'busybox:latest', 'mine/bb:v1']);
    assert.deepEqual((await fs.readdir(tmp.path)).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
    await ok(['rmi', 'busybox:latest', 'mine/bb:v1']);
    assert.equal(await ok(['load', '-i', file]), 'Loaded image: busybox:latest\nLoaded image: mine/bb:v1\n');
    assert.equal((await ok(['image', 'inspect', '-f', '{{.Id}}', 'mine/bb:v1'])).trim(), id);
    assert.equal(await ok(['run', '--rm', 'busybox', 'echo', 'from-loaded']), 'from-loaded\n');
  });

  test('image save to stdout piped into image load from stdin', async () => {
    const r = await berth(['image', 'save', 'busybox']);
    assert.equal(r.code, 0, r.stderr);
    await ok(['rmi', '-f', id]);
    assert.equal(await ok(['image', 'load', '-q'], r.stdout), 'Loaded image: busybox:latest\n');
    assert.equal((await ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).trim(), id);
  });

  test('errors: a missing image, a missing file, a broken archive', async () => {
    const miss = await berth(['save', '-o', path.join(tmp.path, 'x.tar'), 'nosuch']);
    assert.equal(miss.code, 1);
    assert.match(miss.stderr, /No such image: nosuch/);
    const nofile = await berth(['load', '-i', path.join(tmp.path, 'absent.tar')]);
    assert.equal(nofile.code, 1);
    assert.match(nofile.stderr, /no such file or directory/);
    const broken = await berth(['load'], Buffer.alloc(2048, 'z'));
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /invalid archive/);
  });
});
