/**
 * The real docker CLI (client 28, /usr/local/bin/docker) against berthd on a scratch socket:
 * the verbs users type every day, with docker's own output and exit codes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { busyboxImageTar, dockerCli, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
let dockerConfig: string;

const cli = dockerCli(() => daemon.host, { env: () => ({ DOCKER_CONFIG: dockerConfig }), timeoutMs: 30_000 });
const docker = (args: string[], timeoutMs?: number) => cli.run(args, timeoutMs === undefined ? {} : { timeoutMs });
const ok = (args: string[]) => cli.ok(args);

const name = (what: string): string => `interop-${what}-${process.pid}`;

describe('docker CLI against berthd', { timeout: 120_000 }, () => {
  before(async () => {
    dockerConfig = mkdtempSync(path.join(tmpdir(), 'docker-config-'));
    daemon = await startDaemon();
  });
  after(async () => {
    const ids = (await docker(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await docker(['rm', '-f', ...ids]);
    await daemon.cleanup();
    rmSync(dockerConfig, { recursive: true, force: true });
  });

  test('version and info are served and parsed', async () => {
    const v = await ok(['version', '--format', '{{.Server.APIVersion}} {{.Server.Os}}']);
    assert.equal(v.trim(), '1.47 linux');
    const info = await ok(['info', '--format', '{{.Driver}} {{.OSType}} {{.Containers}}']);
    assert.match(info.trim(), /^(overlay2|vfs) linux 0$/);
  });

  test('import makes an image that images and image inspect show', async () => {
    const tar = await busyboxImageTar();
    const id = (await ok(['import', '-c', 'CMD ["sh"]', tar, 'busybox:latest'])).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    const list = await ok(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
    assert.match(list, new RegExp(`^busybox:latest ${id.slice(7, 19)}$`, 'm'));
    assert.equal((await ok(['image', 'inspect', '-f', '{{json .Config.Cmd}}', 'busybox'])).trim(), '["sh"]');
  });

  test('run --rm splits stdout from stderr, passes the exit code and removes the container', async () => {
    const r = await docker(['run', '--rm', '--name', name('rm'), 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal((await ok(['ps', '-a', '--filter', `name=${name('rm')}`, '-q'])).trim(), '');
  });

  test('run -d, ps, logs, exec, inspect, stop, rm', async () => {
    const n = name('d');
    const id = (await ok(['run', '-d', '--name', n, 'busybox', 'sh', '-c', 'echo hello; exec sleep 1000'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const ps = await ok(['ps', '--format', '{{.ID}} {{.Names}} {{.Status}}']);
    assert.match(ps, new RegExp(`^${id.slice(0, 12)} ${n} Up`, 'm'));
    let logs = '';
    for (let i = 0; i < 50 && logs === ''; i++) {
      logs = await ok(['logs', n]);
      if (logs === '') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(logs, 'hello\n');
    const ex = await docker(['exec', n, 'sh', '-c', 'echo $((1+2)); exit 4']);
    assert.equal(ex.stdout, '3\n');
    assert.equal(ex.code, 4);
    assert.equal((await ok(['inspect', '-f', '{{.State.Running}} {{.Config.Image}} {{.Name}}', n])).trim(), `true busybox /${n}`);
    const rm = await docker(['rm', n]);
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /Error response from daemon: .*stop the container before removing or force remove/i);
    assert.equal((await ok(['stop', '-t', '1', n])).trim(), n);
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', n])).trim(), 'exited 137');
    assert.equal((await ok(['rm', n])).trim(), n);
    const gone = await docker(['container', 'inspect', n]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`No such container: ${n}`));
  });

  test('run -i with an empty stdin: the CLI half-closes before the start, the container still sees EOF', async () => {
    // The docker CLI shuts the attach connection's write side as soon as its stdin ends: here
    // before it even asks for the start. berthd keeps that end for the container's stdin.
    for (const input of ['', 'piped\n']) {
      const r = await cli.run(['run', '--rm', '-i', 'busybox', 'cat'], { input, timeoutMs: 10_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, input);
    }
  });

  test('a command not in the image exits 127, one that cannot run exits 126', async () => {
    const missing = await docker(['run', '--rm', 'busybox', 'no-such-command']);
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stderr, /executable file not found/);
    const notExec = await docker(['run', '--rm', 'busybox', '/etc/passwd']);
    assert.equal(notExec.code, 126, notExec.stderr);
    assert.match(notExec.stderr, /permission denied/);
  });

  test('--security-opt seccomp=<file>: the profile the CLI sends applies; one berthd cannot use is a 400 at create', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'interop-seccomp-'));
    try {
      writeFileSync(path.join(dir, 'no-mkdir.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }, null, 2));
      writeFileSync(path.join(dir, 'bad-action.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_NOPE' }));
      const r = await docker(['run', '--rm', '--security-opt', `seccomp=${path.join(dir, 'no-mkdir.json')}`, 'busybox', 'sh', '-c', 'mkdir /made; echo "mkdir=$?"']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /mkdir=1/);
      assert.match(r.stderr, /Operation not permitted/);
      const bad = await docker(['run', '--rm', '--security-opt', `seccomp=${path.join(dir, 'bad-action.json')}`, 'busybox', 'true']);
      assert.equal(bad.code, 125, bad.stderr);
      assert.match(bad.stderr, /Error response from daemon: .*SCMP_ACT_NOPE/);
      assert.equal((await docker(['ps', '-aq'])).stdout.trim(), '', 'nothing was created');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('container prune and system prune remove stopped containers and unused networks; running ones stay', async () => {
    const stopped = (await ok(['create', '--name', name('prune-a'), 'busybox', 'true'])).trim();
    const running = (await ok(['run', '-d', '--name', name('prune-b'), 'busybox', 'sleep', '60'])).trim();
    const pruned = await ok(['container', 'prune', '-f']);
    assert.match(pruned, new RegExp(`Deleted Containers:\\n(.*\\n)*${stopped}\\n`));
    assert.ok(!pruned.includes(running), pruned);
    await ok(['create', '--name', name('prune-c'), 'busybox', 'true']);
    await ok(['network', 'create', name('prune-net')]);
    const sys = await ok(['system', 'prune', '-f']);
    assert.match(sys, /Deleted Containers:/);
    assert.match(sys, new RegExp(`Deleted Networks:\\n${name('prune-net')}\\n`));
    assert.match(sys, /Total reclaimed space:/);
    assert.equal((await ok(['ps', '-aq', '--no-trunc'])).trim(), running);
    await ok(['rm', '-f', running]);
  });

  test('run --health-cmd: docker ps shows (healthy), inspect .State.Health, --filter health, health_status event; a bad interval is the daemon\'s 400', async () => {
    const n = name('health');
    const since = Math.floor(Date.now() / 1000);
    await ok(['run', '-d', '--name', n, '--health-cmd', 'echo ok', '--health-interval', '200ms', '--health-retries', '2', 'busybox', 'sleep', '60']);
    const deadline = Date.now() + 10_000;
    let status = '';
    while (Date.now() < deadline) {
      status = (await ok(['inspect', '-f', '{{.State.Health.Status}}', n])).trim();
      if (status === 'healthy') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 'healthy');
    assert.match(await ok(['ps', '--filter', `name=${n}`, '--format', '{{.Status}}']), /^Up .* \(healthy\)\n$/);
    assert.match(await ok(['ps', '--filter', 'health=healthy', '--format', '{{.Names}}']), new RegExp(`^${n}$`, 'm'));
    const log = JSON.parse(await ok(['inspect', '-f', '{{json .State.Health.Log}}', n])) as { ExitCode: number; Output: string }[];
    assert.deepEqual({ code: log.at(-1)?.ExitCode, out: log.at(-1)?.Output }, { code: 0, out: 'ok\n' });
    const events = await ok(['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000)), '--filter', `container=${n}`, '--filter', 'event=health_status', '--format', '{{.Action}}']);
    assert.equal(events, 'health_status: healthy\n');
    await ok(['rm', '-f', n]);
    const bad = await docker(['create', '--health-cmd', 'true', '--health-interval', '100us', 'busybox']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Error response from daemon: Interval in Healthcheck cannot be less than 1ms/);
  });

  test('a missing network, linked or joined container is the error the CLI shows, not a pull of the image', async () => {
    for (const [flags, text] of [
      [['--network', 'no-such-net'], /network no-such-net not found/],
      [['--link', 'no-such-ctr:x'], /could not get container for no-such-ctr: No such container: no-such-ctr/],
      [['--ipc', 'container:no-such-ctr'], /No such container: no-such-ctr/],
      [['--network', 'container:no-such-ctr'], /No such container: no-such-ctr/],
    ] as const) {
      const r = await docker(['run', '--rm', ...flags, 'busybox', 'true']);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, text);
      assert.doesNotMatch(r.stderr, /Unable to find image/);
    }
  });

  test('unknown image and container answer 404 texts the CLI prints', async () => {
    const img = await docker(['create', 'no-such-image-here']);
    assert.notEqual(img.code, 0);
    assert.match(img.stderr, /no-such-image-here/);
    const stop = await docker(['stop', 'no-such-container']);
    assert.equal(stop.code, 1);
    assert.match(stop.stderr, /Error response from daemon: No such container: no-such-container/);
  });

  test('networks: create with a subnet, run on it with --ip and an alias, inspect, a published port, connect, rm', async () => {
    const net = name('net');
    const id = (await ok(['network', 'create', '--subnet', '10.252.33.0/24', '--label', 'k=v', net])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const ls = await ok(['network', 'ls', '--filter', 'label=k=v', '--format', '{{.Name}} {{.Driver}}']);
    assert.equal(ls.trim(), `${net} bridge`);
    const c = name('net-c');
    await ok(['run', '-d', '--name', c, '--network', net, '--ip', '10.252.33.7', '--network-alias', 'svc', '-p', '127.0.0.1::80', 'busybox', 'httpd', '-f', '-p', '80']);
    const insp = JSON.parse(await ok(['network', 'inspect', net])) as { Containers: Record<string, { Name: string; IPv4Address: string }>; IPAM: { Config: { Subnet: string }[] } }[];
    assert.deepEqual(Object.values(insp[0]!.Containers).map((x) => [x.Name, x.IPv4Address]), [[c, '10.252.33.7/24']]);
    const port = (await ok(['port', c, '80'])).trim();
    assert.match(port, /^127\.0\.0\.1:\d+$/);
    assert.equal((await ok(['run', '--rm', '--network', net, 'busybox', 'sh', '-c', 'wget -q -O /dev/null http://svc/ 2>&1; echo $?'])).trim().split('\n').pop(), '1', 'httpd answers 404 for / but the name resolved and connected');
    await ok(['network', 'connect', 'bridge', c]);
    const nets = JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', c])) as Record<string, { IPAddress: string }>;
    assert.deepEqual(Object.keys(nets).sort(), ['bridge', net].sort());
    const rmBusy = await docker(['network', 'rm', net]);
    assert.equal(rmBusy.code, 1);
    assert.match(rmBusy.stderr, /has active endpoints/);
    await ok(['rm', '-f', c]);
    await ok(['network', 'rm', net]);
    const gone = await docker(['network', 'inspect', net]);
    assert.notEqual(gone.code, 0);
  });
});
