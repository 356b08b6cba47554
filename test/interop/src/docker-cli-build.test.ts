/**
 * `docker build` (docker CLI 28, the legacy builder: DOCKER_BUILDKIT=0) against berthd: the
 * CLI sends its context tar to POST /build, prints the classic stream, tags, and `docker run`
 * runs the result; a failing RUN makes the CLI exit with the step's code and Docker's text.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { busyboxImageTar, dockerCli, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
let work: string;

const cli = dockerCli(() => daemon.host, { env: () => ({ DOCKER_CONFIG: path.join(work, 'docker-config'), DOCKER_BUILDKIT: '0' }), timeoutMs: 90_000, maxBuffer: 64 << 20 });
const docker = (args: string[]) => cli.run(args);
const ok = (args: string[]) => cli.ok(args);

function context(name: string, files: Record<string, string>): string {
  const dir = path.join(work, name);
  for (const [f, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), content);
  }
  return dir;
}

const image = `interop-build-${process.pid}`;

describe('docker build (legacy builder) against berthd', { timeout: 240_000 }, () => {
  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), `berth-interop-build-${process.pid}-`));
    daemon = await startDaemon();
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    const ids = (await docker(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await docker(['rm', '-f', ...ids]);
    await daemon.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  test('docker build -t x . builds with the classic output, docker run --rm x runs it', async () => {
    const dir = context('app', {
      Dockerfile: 'FROM busybox\nARG WHO=nobody\nENV WHO=$WHO\nWORKDIR /srv\nCOPY . /srv/\nRUN echo "built for $WHO" > /srv/built && ls /srv\nCMD ["sh", "-c", "cat /srv/built /srv/data/x.txt"]\n',
      'data/x.txt': 'x-data\n',
      'ignored.log': 'not sent\n',
      '.dockerignore': '*.log\n',
    });
    const r = await docker(['build', '--build-arg', 'WHO=interop', '-t', image, dir]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stderr, /DEPRECATED: The legacy builder is deprecated/);
    assert.match(r.stdout, /^Sending build context to Docker daemon/m);
    assert.match(r.stdout, /^Step 1\/7 : FROM busybox\n ---> [0-9a-f]{12}$/m);
    assert.match(r.stdout, /^ ---> Running in [0-9a-f]{12}\nDockerfile\nbuilt\ndata\n/m, 'the RUN output: the ignored file is not in the context');
    assert.match(r.stdout, /^Successfully built [0-9a-f]{12}\nSuccessfully tagged interop-build-\d+:latest\n$/m);
    assert.equal(await ok(['run', '--rm', image]), 'built for interop\nx-data\n');
    const history = await ok(['history', '--no-trunc', '--format', '{{.CreatedBy}}', image]);
    assert.match(history, /^\/bin\/sh -c #\(nop\) {2}ENV WHO=interop$/m);
    // A second build is all cache, the same image.
    const again = await ok(['build', '--build-arg', 'WHO=interop', '-q', dir]);
    const id = (await ok(['image', 'inspect', '-f', '{{.Id}}', image])).trim();
    assert.equal(again.trim(), id);
  });

  test('docker build --add-host and --network: the RUN containers get them', async () => {
    const dir = context('hosts', { Dockerfile: 'FROM busybox\nRUN grep probe.test /etc/hosts && ls /sys/class/net | sort | tr "\\n" " "; echo\n' });
    const out = await ok(['build', '--no-cache', '--add-host', 'probe.test:127.0.0.9', '--network', 'none', dir]);
    assert.match(out, /^127\.0\.0\.9\s+probe\.test$/m);
    assert.match(out, /^lo $/m, 'network none: only lo');
  });

  test('a failing RUN: the step\'s exit code and dockerd\'s message; --force-rm leaves no container', async () => {
    const dir = context('fail', { Dockerfile: 'FROM busybox\nRUN echo bad; exit 6\n' });
    const before = await ok(['ps', '-aq']);
    const r = await docker(['build', '--force-rm', dir]);
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stdout, /^bad$/m);
    assert.match(r.stderr, /The command '\/bin\/sh -c echo bad; exit 6' returned a non-zero code: 6/);
    assert.equal(await ok(['ps', '-aq']), before);
  });
});
