/**
 * `berth build` and `POST /build` against a berthd on scratch roots, with the busybox fixture:
 * RUN, COPY (files, directories, globs, .dockerignore, --chown), ADD of a local tar, ENV,
 * WORKDIR, CMD, one layer per filesystem step, the cache, multi-stage builds, a failing RUN
 * with its exit code and nothing left behind (containers, mounts, processes, cgroups).
 * RUN steps here never leave the container (no network use at all).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { request } from 'node:http';
import * as path from 'node:path';
import { assertNoLeaksEventually, berthCliPath, busyboxImageTar, makeTempDir, snapshotLeaks, startDaemon, type Daemon, type TempDir } from '@berth/test-support';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let daemon: Daemon;
let tmp: TempDir;

function berth(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(berthCliPath(), args, { cwd: opts.cwd, env: { ...process.env, BERTH_HOST: daemon.host }, timeout: 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(opts.input ?? '');
  });
}

async function ok(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<string> {
  const r = await berth(args, opts);
  assert.equal(r.code, 0, `berth ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** A raw API call on the daemon's socket. */
function api(method: string, url: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: daemon.socket, path: url, method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A tar made by the host's tar of the files given (name -> content). */
async function contextTar(files: Record<string, string>): Promise<Buffer> {
  const dir = await writeContext(files);
  return new Promise((resolve, reject) => {
    execFile('tar', ['-c', '-C', dir, '.'], { encoding: 'buffer', maxBuffer: 64 << 20 }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

let ctxN = 0;
async function writeContext(files: Record<string, string>): Promise<string> {
  const dir = path.join(tmp.path, `ctx${++ctxN}`);
  for (const [name, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), content);
  }
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

const messages = (body: string): Record<string, unknown>[] =>
  body
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const tag = `b${process.pid}`;
const img = (what: string): string => `e2e-${tag}-${what}`;

interface Inspect {
  Id: string;
  Config: { Env: string[] | null; Cmd: string[] | null; WorkingDir: string; Labels: Record<string, string> | null; User: string; Entrypoint: string[] | null; ExposedPorts?: Record<string, unknown> };
  RootFS: { Layers: string[] };
}
async function inspect(ref: string): Promise<Inspect> {
  return (JSON.parse(await ok(['image', 'inspect', ref])) as Inspect[])[0]!;
}

/** Cgroup directories of a container id prefix in every v1 hierarchy. */
function cgroupsOf(id12: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', h, 'berth');
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir)) if (e.startsWith(id12)) out.push(path.join(dir, e));
  }
  return out;
}

describe('berth build and POST /build: the classic builder', { timeout: 300_000 }, () => {
  let baseLayers = 0;
  before(async () => {
    daemon = await startDaemon();
    tmp = await makeTempDir('berth-e2e-build');
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
    baseLayers = (await inspect('busybox')).RootFS.Layers.length;
  });
  after(async () => {
    const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    await daemon.cleanup();
    await tmp.remove();
  });

  test('RUN, COPY, ENV, WORKDIR, CMD: the image runs with them, one layer per RUN/COPY/WORKDIR', async () => {
    const dir = await writeContext({
      Dockerfile: [
        'FROM busybox',
        'ENV GREETING=hello NAME="the world"',
        'WORKDIR /app',
        'COPY greeting.txt ./',
        'COPY src/ /app/src/',
        'COPY *.conf /etc/conf.d/',
        'RUN echo "$GREETING, $NAME" > /app/said && wc -c < greeting.txt',
        'LABEL stage=test',
        'CMD ["cat", "/app/said"]',
        '',
      ].join('\n'),
      'greeting.txt': 'hi there\n',
      'src/a.js': 'a\n',
      'src/lib/b.js': 'b\n',
      'one.conf': '1\n',
      'two.conf': '2\n',
      'secret.key': 'do not send\n',
      '.dockerignore': 'secret.key\n',
    });
    const out = await ok(['build', '-t', img('app'), dir]);
    assert.match(out, /^Sending build context to Berth daemon/m);
    assert.match(out, /^Step 1\/9 : FROM busybox$/m);
    assert.match(out, /^Step 7\/9 : RUN echo "\$GREETING, \$NAME" > \/app\/said && wc -c < greeting.txt$/m);
    assert.match(out, /^ ---> Running in [0-9a-f]{12}$/m);
    assert.match(out, /^9$/m, 'the RUN output is streamed');
    assert.match(out, /^Removing intermediate container [0-9a-f]{12}$/m);
    const built = /^Successfully built ([0-9a-f]{12})$/m.exec(out);
    assert.ok(built, out);
    assert.match(out, new RegExp(`^Successfully tagged ${img('app')}:latest$`, 'm'));

    assert.equal(await ok(['run', '--rm', img('app')]), 'hello, the world\n');
    assert.equal(await ok(['run', '--rm', img('app'), 'sh', '-c', 'pwd; cat src/a.js src/lib/b.js; ls /etc/conf.d; ls -n greeting.txt | awk \'{print $3":"$4}\'']), '/app\na\nb\none.conf\ntwo.conf\n0:0\n');
    const i = await inspect(img('app'));
    assert.ok(i.Id.startsWith(`sha256:${built![1]}`));
    assert.deepEqual(i.Config.Cmd, ['cat', '/app/said']);
    assert.equal(i.Config.WorkingDir, '/app');
    assert.ok(i.Config.Env?.includes('GREETING=hello') && i.Config.Env.includes('NAME=the world'), JSON.stringify(i.Config.Env));
    // The fixture image sets no PATH: the build adds dockerd's default, as dockerd does.
    assert.ok(i.Config.Env?.includes('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'), JSON.stringify(i.Config.Env));
    assert.equal(i.Config.Labels?.stage, 'test');
    // WORKDIR (new directory), three COPYs and the RUN: five layers over busybox's.
    assert.equal(i.RootFS.Layers.length, baseLayers + 5);
    const history = JSON.parse((await api('GET', `/v1.41/images/${img('app')}/history`)).body) as { CreatedBy: string; Size: number }[];
    assert.equal(history.length, 9);
    assert.match(history[0]!.CreatedBy, /^\/bin\/sh -c #\(nop\) {2}CMD \["cat" "\/app\/said"\]$/);
    assert.match(history[2]!.CreatedBy, /^\/bin\/sh -c echo "\$GREETING, \$NAME" > \/app\/said/);
    assert.match(history[4]!.CreatedBy, /^\/bin\/sh -c #\(nop\) COPY dir:[0-9a-f]{64} in \/app\/src\/ $/);
    assert.match(history[5]!.CreatedBy, /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \.\/ $/);
    // The ignored file never reached the daemon's context.
    const r = await berth(['build', dir], { input: '' });
    assert.equal(r.code, 0);
    const bad = await writeContext({ Dockerfile: 'FROM busybox\nCOPY secret.key /\n', 'secret.key': 'x', '.dockerignore': 'secret.key\n' });
    const miss = await berth(['build', bad]);
    assert.equal(miss.code, 1);
    assert.match(miss.stderr, /COPY failed: file not found in build context or excluded by \.dockerignore: stat secret\.key: file does not exist/);
  });

  test('a Dockerfile on stdin: alone (build -) or with a context directory (-f -)', async () => {
    const alone = await berth(['build', '-q', '-t', img('stdin'), '-'], { input: 'FROM busybox\nRUN echo from-stdin > /s\n' });
    assert.equal(alone.code, 0, alone.stderr);
    assert.equal(await ok(['run', '--rm', img('stdin'), 'cat', '/s']), 'from-stdin\n');
    const dir = await writeContext({ f: 'ctx-file\n' });
    const withCtx = await berth(['build', '-q', '-t', img('stdinf'), '-f', '-', dir], { input: 'FROM busybox\nCOPY f /f\n' });
    assert.equal(withCtx.code, 0, withCtx.stderr);
    assert.equal(await ok(['run', '--rm', img('stdinf'), 'cat', '/f']), 'ctx-file\n');
    await ok(['rmi', img('stdin'), img('stdinf')]);
  });

  test('a second build uses the cache; --no-cache does not; a changed file invalidates its COPY', async () => {
    const dir = await writeContext({ Dockerfile: 'FROM busybox\nCOPY f /f\nRUN cat /f > /g\n', f: 'one\n' });
    const first = await ok(['build', '-t', img('cache'), dir]);
    const id1 = /^Successfully built ([0-9a-f]{12})$/m.exec(first)![1];
    const second = await ok(['build', '-t', img('cache'), dir]);
    assert.equal((second.match(/^ ---> Using cache$/gm) ?? []).length, 2, second);
    assert.equal(/^Successfully built ([0-9a-f]{12})$/m.exec(second)![1], id1);
    const third = await ok(['build', '--no-cache', dir]);
    assert.doesNotMatch(third, /Using cache/);
    await fs.writeFile(path.join(dir, 'f'), 'two\n');
    const fourth = await ok(['build', '-t', img('cache'), dir]);
    assert.doesNotMatch(fourth, /Using cache/);
    assert.equal(await ok(['run', '--rm', img('cache'), 'cat', '/g']), 'two\n');
  });

  test('a failing RUN: Docker\'s message and exit code; --force-rm leaves no container, mount, process or cgroup', async () => {
    const mine = (mp: string): boolean => mp.startsWith(daemon.dataRoot) || mp.startsWith(daemon.execRoot);
    const leaks = await snapshotLeaks({ processMarkers: [`${daemon.execRoot}/runtime/`], mountFilter: mine });
    const before = (await berth(['ps', '-aq'])).stdout;
    const dir = await writeContext({ Dockerfile: 'FROM busybox\nRUN echo about to fail; exit 3\n' });
    const r = await berth(['build', '--force-rm', dir]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stdout, /^about to fail$/m);
    assert.match(r.stderr, /The command '\/bin\/sh -c echo about to fail; exit 3' returned a non-zero code: 3/);
    const id12 = /^ ---> Running in ([0-9a-f]{12})$/m.exec(r.stdout)![1]!;
    assert.match(r.stdout, new RegExp(`^Removing intermediate container ${id12}$`, 'm'));
    assert.equal((await berth(['ps', '-aq'])).stdout, before, 'no container was left');
    await assertNoLeaksEventually(leaks, 'failed build');
    assert.deepEqual(cgroupsOf(id12), []);

    // Without --force-rm the failed step's container stays, as dockerd leaves it (rm is for success).
    const kept = await berth(['build', dir]);
    assert.equal(kept.code, 3);
    const k12 = /^ ---> Running in ([0-9a-f]{12})$/m.exec(kept.stdout)![1]!;
    assert.match(await ok(['ps', '-a', '--format', '{{.ID}} {{.Status}}']), new RegExp(`^${k12} Exited \\(3\\)`, 'm'));
    await ok(['rm', k12]);
    assert.deepEqual(cgroupsOf(k12), []);
  });

  test('multi-stage: COPY --from a stage, --target, ARG before FROM, --build-arg, FROM scratch', async () => {
    const dir = await writeContext({
      Dockerfile: [
        '# syntax=docker/dockerfile:1',
        'ARG BASE=busybox',
        'FROM ${BASE} AS builder',
        'ARG FLAVOUR=plain',
        'RUN mkdir /out && echo "$FLAVOUR" > /out/flavour',
        'FROM scratch AS final',
        'COPY --from=builder /out/flavour /flavour',
        'COPY --from=builder /bin/busybox /bin/busybox',
        'CMD ["/bin/busybox", "cat", "/flavour"]',
        'FROM busybox AS other',
        'RUN false',
        '',
      ].join('\n'),
    });
    const out = await ok(['build', '--target', 'final', '--build-arg', 'FLAVOUR=spicy', '-t', img('multi'), dir]);
    assert.match(out, /^Step 1\/8 : ARG BASE=busybox\nStep 2\/8 : FROM \$\{BASE\} AS builder$/m);
    assert.match(out, /^\[Note\] the parser directive "# syntax=docker\/dockerfile:1" is ignored/m);
    assert.equal(await ok(['run', '--rm', img('multi')]), 'spicy\n');
    const i = await inspect(img('multi'));
    assert.equal(i.RootFS.Layers.length, 2, 'scratch + two COPY layers');
    const unknown = await berth(['build', '--target', 'nope', dir]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /failed to reach build target nope in Dockerfile/);
  });

  test('COPY --chown by name and --chmod, SHELL, ONBUILD triggers of the base image, USER for RUN', async () => {
    const base = await writeContext({ Dockerfile: 'FROM busybox\nONBUILD COPY f /from-trigger\nONBUILD RUN echo triggered > /trig\n' });
    await ok(['build', '-q', '-t', img('onbuild'), base]);
    const dir = await writeContext({
      Dockerfile: [
        `FROM ${img('onbuild')}`,
        'SHELL ["/bin/sh", "-xc"]',
        'COPY --chown=user:nobody --chmod=0640 f /owned/',
        'USER nobody',
        'RUN id -u > /tmp/who',
        'USER root',
        '',
      ].join('\n'),
      f: 'data\n',
    });
    const out = await ok(['build', '-t', img('owner'), dir]);
    assert.match(out, /^# Executing 2 build triggers$/m);
    assert.match(out, /^\+ id -u$/m, 'SHELL applies to RUN');
    const files = await ok(['run', '--rm', img('owner'), 'sh', '-c', "stat -c '%u:%g %a %n' /owned/f; cat /trig /from-trigger /tmp/who"]);
    assert.equal(files, '1000:65534 640 /owned/f\ntriggered\ndata\n65534\n');
  });

  test('--add-host and --network none reach the RUN containers (with -m given); a bad -m is refused', async () => {
    const dir = await writeContext({ Dockerfile: 'FROM busybox\nRUN grep probe.test /etc/hosts; ls /sys/class/net\n' });
    const out = await ok(['build', '--no-cache', '--add-host', 'probe.test:127.0.0.9', '--network', 'none', '-m', '64m', dir]);
    assert.match(out, /^127\.0\.0\.9\s+probe\.test$/m);
    assert.match(out, /^ ---> Running in [0-9a-f]{12}\n127\.0\.0\.9\s+probe\.test\nlo\n/m, 'network none: lo only');
    const bad = await berth(['build', '-m', 'lots', dir]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid argument "lots" for "--memory" flag/);
  });

  test('POST /build: gzip context, ADD of a local tar, quiet, labels, stream shape; 400s before streaming', async () => {
    const inner = await contextTar({ 'x/y.txt': 'in the tar\n' });
    const dir = await writeContext({ Dockerfile: 'FROM busybox\nADD inner.tar /unpacked/\nUSER nobody\nEXPOSE 8080\n' });
    await fs.writeFile(path.join(dir, 'inner.tar'), inner);
    const gz = await new Promise<Buffer>((resolve, reject) =>
      execFile('tar', ['-cz', '-C', dir, '.'], { encoding: 'buffer' }, (err, out) => (err ? reject(err) : resolve(out))),
    );
    const r = await api('POST', `/v1.41/build?t=${img('api')}&labels=${encodeURIComponent('{"a":"b"}')}`, gz, { 'Content-Type': 'application/x-tar' });
    assert.equal(r.status, 200);
    const msgs = messages(r.body);
    assert.deepEqual(msgs[0], { stream: 'Step 1/5 : FROM busybox\n' });
    assert.deepEqual(msgs[msgs.length - 1], { stream: `Successfully tagged ${img('api')}:latest\n` });
    const aux = msgs.find((m) => m.aux !== undefined) as { aux: { ID: string } };
    assert.match(aux.aux.ID, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await ok(['run', '--rm', '-u', '0', img('api'), 'cat', '/unpacked/x/y.txt']), 'in the tar\n');
    const i = await inspect(img('api'));
    assert.equal(i.Config.User, 'nobody');
    assert.deepEqual(i.Config.Labels, { a: 'b' });
    assert.ok(i.Config.ExposedPorts?.['8080/tcp']);

    const q = await api('POST', '/v1.41/build?q=1', gz, { 'Content-Type': 'application/x-tar' });
    const qm = messages(q.body);
    // dockerd's quiet stream: the id alone (no aux); the labels differ, so another image.
    assert.equal(qm.length, 1, q.body);
    assert.match(qm[0]!.stream as string, /^sha256:[0-9a-f]{64}\n$/);
    assert.notEqual(qm[0]!.stream, `${aux.aux.ID}\n`);

    const tar = await contextTar({ Dockerfile: 'FROM busybox\n\n# c\nFOO bar\n' });
    const parse = await api('POST', '/v1.41/build', tar, { 'Content-Type': 'application/x-tar' });
    assert.equal(parse.status, 400);
    assert.deepEqual(JSON.parse(parse.body), { message: 'dockerfile parse error line 4: unknown instruction: FOO' });
    const args = await api('POST', '/v1.41/build?buildargs=bad', tar, { 'Content-Type': 'application/x-tar' });
    assert.equal(args.status, 400);
    assert.match(JSON.parse(args.body).message as string, /^error reading build args: /);
    const badTag = await api('POST', '/v1.41/build?t=Bad:x', tar, { 'Content-Type': 'application/x-tar' });
    assert.equal(badTag.status, 400);
    assert.match(JSON.parse(badTag.body).message as string, /repository name must be lowercase/);
    const noFile = await api('POST', '/v1.41/build?dockerfile=Nope', tar, { 'Content-Type': 'application/x-tar' });
    assert.equal(noFile.status, 400);
    assert.deepEqual(JSON.parse(noFile.body), { message: 'Cannot locate specified Dockerfile: Nope' });

    const fail = await api('POST', '/v1.41/build?forcerm=1', await contextTar({ Dockerfile: 'FROM busybox\nRUN exit 4\n' }), { 'Content-Type': 'application/x-tar' });
    assert.equal(fail.status, 200);
    const last = messages(fail.body).pop();
    const text = "The command '/bin/sh -c exit 4' returned a non-zero code: 4";
    assert.deepEqual(last, { errorDetail: { code: 4, message: text }, error: text });
  });
});
