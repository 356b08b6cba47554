/**
 * The real docker CLI (client 28) against berthd on a scratch socket: `docker volume
 * create/ls/inspect/rm/prune`, `docker run -v vol:/data` shared by two containers, `docker run
 * --rm -v /anon` leaving no volume, `--mount type=volume`, and the errors the CLI prints.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxImageTar, DOCKER_CLI as DOCKER, dockerCli, referenceDockerd, REFERENCE_DOCKERD_SOCKET, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
let dockerConfig: string;

const REF_DOCKERD = `unix://${REFERENCE_DOCKERD_SOCKET}`;
const env = () => ({ DOCKER_CONFIG: dockerConfig });
const cli = dockerCli(() => daemon.host, { env, timeoutMs: 30_000 });
const refCli = dockerCli(() => REF_DOCKERD, { env, timeoutMs: 30_000 });
/** docker against berthd, or against the reference dockerd when `host` is REF_DOCKERD. */
const docker = (args: string[], input?: string, host?: string) => (host === REF_DOCKERD ? refCli : cli).run(args, input === undefined ? {} : { input });
const ok = (args: string[]) => cli.ok(args);

const tag = `${process.pid}${Math.random().toString(16).slice(2, 6)}`;
const vname = (what: string): string => `interop-${what}-${tag}`;
// Local ones only: berthd also lists the volumes of every volume plugin on the host (as dockerd
// does), and another test's plugin may hold some while this file runs.
const volumes = async (): Promise<string[]> => (await ok(['volume', 'ls', '-q', '--filter', 'driver=local'])).split('\n').filter(Boolean);

describe('docker CLI against berthd: volumes', { skip: !existsSync(DOCKER) && `no ${DOCKER}`, timeout: 120_000 }, () => {
  before(async () => {
    dockerConfig = mkdtempSync(path.join(tmpdir(), 'docker-config-'));
    daemon = await startDaemon({ network: false });
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    const ids = (await docker(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await docker(['rm', '-fv', ...ids]);
    const vols = (await docker(['volume', 'ls', '-q', '--filter', 'driver=local'])).stdout.trim().split('\n').filter(Boolean);
    if (vols.length) await docker(['volume', 'rm', '-f', ...vols]);
    await daemon.cleanup();
    rmSync(dockerConfig, { recursive: true, force: true });
  });

  test('docker volume create, ls, inspect, rm', async () => {
    const v = vname('a');
    assert.equal(await ok(['volume', 'create', '--label', 'k=v', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', v]), `${v}\n`);
    const ls = await ok(['volume', 'ls', '--filter', 'driver=local']);
    assert.match(ls, new RegExp(`^DRIVER {4}VOLUME NAME\\nlocal {5}${v}\\n$`));
    assert.equal(await ok(['volume', 'ls', '-q', '--filter', 'label=k=v']), `${v}\n`);
    assert.equal(await ok(['volume', 'ls', '-q', '--filter', 'dangling=true', '--filter', 'driver=local']), `${v}\n`);
    const [ins] = JSON.parse(await ok(['volume', 'inspect', v])) as Record<string, unknown>[];
    assert.deepEqual(
      { ...ins, CreatedAt: 'x' },
      { CreatedAt: 'x', Driver: 'local', Labels: { k: 'v' }, Mountpoint: path.join(daemon.dataRoot, 'volumes', v, '_data'), Name: v, Options: { device: 'tmpfs', type: 'tmpfs' }, Scope: 'local' },
    );
    assert.equal(await ok(['volume', 'inspect', '--format', '{{.Driver}} {{.Scope}}', v]), 'local local\n');
    const bad = await docker(['volume', 'create', 'no/slash']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Error response from daemon: create no\/slash: "no\/slash" includes invalid characters for a local volume name/);
    const missing = await docker(['volume', 'inspect', `nope${tag}`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`no such volume|No such volume`));
    assert.equal(await ok(['volume', 'rm', v]), `${v}\n`);
    assert.deepEqual(await volumes(), []);
  });

  test('docker run -v vol:/data: one container writes, a second reads; the volume is in use until both are gone', async () => {
    const v = vname('data');
    await ok(['run', '--name', vname('w'), '-v', `${v}:/data`, 'busybox', 'sh', '-c', 'echo shared > /data/f']);
    assert.equal(await ok(['run', '--rm', '-v', `${v}:/data:ro`, 'busybox', 'cat', '/data/f']), 'shared\n');
    assert.equal(await ok(['run', '--rm', '--mount', `type=volume,src=${v},dst=/m,readonly`, 'busybox', 'cat', '/m/f']), 'shared\n');
    const inUse = await docker(['volume', 'rm', v]);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, new RegExp(`remove ${v}: volume is in use - \\[[0-9a-f]{64}\\]`));
    const mounts = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', vname('w')])) as Record<string, unknown>[];
    assert.deepEqual(mounts, [{ Type: 'volume', Name: v, Source: path.join(daemon.dataRoot, 'volumes', v, '_data'), Destination: '/data', Driver: 'local', Mode: 'z', RW: true, Propagation: '' }]);
    await ok(['rm', '-v', vname('w')]);
    assert.deepEqual(await volumes(), [v], 'rm -v keeps a named volume');
    assert.equal(await ok(['volume', 'rm', v]), `${v}\n`);
  });

  test('docker run --rm -v /anon leaves no volume; docker rm -v removes the anonymous ones; docker volume prune', async () => {
    assert.equal(await ok(['run', '--rm', '-v', '/anon', 'busybox', 'sh', '-c', 'echo x > /anon/f; cat /anon/f']), 'x\n');
    assert.deepEqual(await volumes(), []);
    const id = (await ok(['create', '-v', '/scratch', 'busybox', 'true'])).trim();
    assert.equal((await volumes()).length, 1);
    await ok(['rm', '-v', id]);
    assert.deepEqual(await volumes(), []);

    const keep = vname('keep');
    await ok(['volume', 'create', keep]);
    const id2 = (await ok(['create', '-v', '/scratch', 'busybox', 'true'])).trim();
    const anon = (JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', id2])) as { Name: string }[])[0]!.Name;
    await ok(['rm', id2]);
    const asked = await docker(['volume', 'prune'], 'n\n');
    assert.match(asked.stdout, /^WARNING! This will remove anonymous local volumes not used by at least one container\.\nAre you sure you want to continue\? \[y\/N\] /);
    assert.equal(await ok(['volume', 'prune', '-f']), `Deleted Volumes:\n${anon}\n\nTotal reclaimed space: 0B\n`);
    assert.deepEqual(await volumes(), [keep]);
    assert.equal(await ok(['volume', 'prune', '-af']), `Deleted Volumes:\n${keep}\n\nTotal reclaimed space: 0B\n`);
  });

  test('one volume plugin served with Berth\'s SDK (tools/examples) works under berthd and under dockerd (the reference daemon)', async (t) => {
    const plugin = `hvi${tag}`;
    const root = mkdtempSync(path.join(tmpdir(), 'berth-hvi-'));
    const example = fileURLToPath(new URL('../../../../tools/examples/hello-volume-plugin.mjs', import.meta.url));
    // --docker: the socket in /run/berth/plugins and in /run/docker/plugins, where dockerd looks.
    const child = spawn(process.execPath, [example, plugin, '--docker', '--root', root], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      for (let i = 0; i < 100 && !existsSync(`/run/docker/plugins/${plugin}.sock`); i++) await new Promise((r) => setTimeout(r, 50));
      const withRef = await referenceDockerd();
      if (!withRef) t.diagnostic(`no reference dockerd with busybox at ${REF_DOCKERD}: the plugin is tried under berthd only`);
      const hosts = [undefined, ...(withRef ? [REF_DOCKERD] : [])];
      for (const host of hosts) {
        const v = vname(host ? 'onref' : 'onberth');
        const run = async (args: string[]): Promise<string> => {
          const r = await docker(args, undefined, host);
          assert.equal(r.code, 0, `${host ?? 'berthd'}: docker ${args.join(' ')}: ${r.stderr}`);
          return r.stdout;
        };
        assert.equal(await run(['volume', 'create', '-d', plugin, '-o', 'color=green', v]), `${v}\n`);
        const [ins] = JSON.parse(await run(['volume', 'inspect', v])) as Record<string, unknown>[];
        assert.deepEqual([ins!.Driver, ins!.Mountpoint, ins!.Status, ins!.Options], [plugin, path.join(root, v), { color: 'green', mounts: 0 }, { color: 'green' }], host ?? 'berthd');
        await run(['run', '--rm', '-v', `${v}:/data`, 'busybox', 'sh', '-c', `echo ${host ? 'dockerd' : 'berthd'} > /data/f`]);
        assert.equal(readFileSync(path.join(root, v, 'f'), 'utf8'), `${host ? 'dockerd' : 'berthd'}\n`);
        assert.equal(await run(['volume', 'rm', v]), `${v}\n`);
        assert.ok(!existsSync(path.join(root, v)));
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('docker cp writes into the volume, not the container layer; a read-only volume is refused in Docker\'s words', async () => {
    const v = vname('cp');
    const c = vname('cpc');
    const src = path.join(dockerConfig, 'cp-src');
    writeFileSync(src, 'copied\n');
    await ok(['create', '--name', c, '-v', `${v}:/data`, '-v', `${v}:/ro:ro`, 'busybox', 'true']);
    await ok(['cp', src, `${c}:/data/f`]);
    assert.equal(await ok(['run', '--rm', '-v', `${v}:/v`, 'busybox', 'cat', '/v/f']), 'copied\n');
    assert.match(await ok(['cp', `${c}:/ro/f`, '-']), /copied/);
    const ro = await docker(['cp', src, `${c}:/ro/g`]);
    assert.equal(ro.code, 1);
    assert.equal(ro.stderr, 'Error response from daemon: mounted volume is marked read-only\n');
    await ok(['rm', c]);
    await ok(['volume', 'rm', v]);
  });

  test('bad specs are the daemon\'s 400 the CLI prints, not a pull', async () => {
    const r = await docker(['run', '--rm', '-v', 'bad!name:/data', 'busybox', 'true']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /create bad!name: "bad!name" includes invalid characters/);
    assert.doesNotMatch(r.stderr, /Unable to find image/);
    const opt = await docker(['run', '--rm', '--mount', 'type=volume,dst=/m,volume-opt=foo=bar', 'busybox', 'true']);
    assert.equal(opt.code, 125);
    assert.match(opt.stderr, /invalid option: "foo"/);
    const from = await docker(['run', '--rm', '--volumes-from', `nope${tag}`, 'busybox', 'true']);
    assert.equal(from.code, 125);
    assert.match(from.stderr, new RegExp(`No such container: nope${tag}`));
    assert.doesNotMatch(from.stderr, /Unable to find image/);
    assert.deepEqual(await volumes(), []);
  });
});
