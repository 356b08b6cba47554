/**
 * Volumes as a user drives them: `berth volume create/ls/inspect/rm/prune`, `run -v`, `--mount`,
 * `--volumes-from`, `rm -v`, `run --rm`, `system df`, against a berthd on scratch roots; bad input
 * answered with Docker's statuses and texts; volumes kept across a daemon restart; no mount left.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertNoLeaksEventually, berthCli, busyboxImageTar, restartDaemon, snapshotLeaks, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
const cli = berthCli(() => daemon.host, { timeoutMs: 30_000 });
const berth = cli.run;
const ok = cli.ok;
const tag = `${process.pid}${Math.random().toString(16).slice(2, 6)}`;

/** One call of Docker's plugin protocol to a plugin's socket, as a daemon makes it. */
function pluginCall(socket: string, method: string, body: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: `/${method}`, method: 'POST', headers: { 'Content-Type': 'application/vnd.docker.plugins.v1.2+json' } }, (res) => {
      let data = '';
      res.on('data', (c: Buffer) => (data += c.toString()));
      res.on('end', () => {
        const answer = JSON.parse(data) as { Err?: string };
        if (answer.Err) reject(new Error(answer.Err));
        else resolve(answer);
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
const vname = (what: string): string => `e2e-${what}-${tag}`;
// Local ones only: berthd also lists the volumes of every volume plugin on the host (as dockerd
// does), and another test's plugin may hold some while this file runs.
const volumes = async (): Promise<string[]> => (await ok(['volume', 'ls', '-q', '--filter', 'driver=local'])).split('\n').filter(Boolean);

describe('berth CLI and berthd: volumes', { timeout: 180_000 }, () => {
  before(async () => {
    // With networking: `system prune` prunes networks too.
    daemon = await startDaemon();
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-fv', ...ids]);
    const vols = (await berth(['volume', 'ls', '-q', '--filter', 'driver=local'])).stdout.trim().split('\n').filter(Boolean);
    if (vols.length) await berth(['volume', 'rm', '-f', ...vols]);
    await daemon.cleanup();
  });

  test('volume create, ls (table, -q, --filter, --format), inspect, rm print what docker prints', async () => {
    const a = vname('a');
    assert.equal(await ok(['volume', 'create', '--label', 'tier=db', a]), `${a}\n`);
    const anon = (await ok(['volume', 'create'])).trim();
    assert.match(anon, /^[0-9a-f]{64}$/);
    const table = await ok(['volume', 'ls']);
    assert.match(table, /^DRIVER {4}VOLUME NAME\n/);
    assert.ok(table.includes(`local     ${a}\n`), table);
    assert.equal(await ok(['volume', 'ls', '-q', '--filter', 'label=tier=db']), `${a}\n`);
    assert.equal(await ok(['volume', 'ls', '--filter', `name=${a}`, '--format', '{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}} {{.Label "tier"}}']), `${a} local local tier=db db\n`);
    const [ins] = JSON.parse(await ok(['volume', 'inspect', a])) as Record<string, unknown>[];
    assert.deepEqual(Object.keys(ins!), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
    assert.equal(ins!.Mountpoint, join(daemon.dataRoot, 'volumes', a, '_data'));
    assert.ok(existsSync(ins!.Mountpoint as string));
    assert.equal(await ok(['volume', 'inspect', '-f', '{{.Name}}:{{.Driver}}', a]), `${a}:local\n`);
    assert.equal(await ok(['inspect', '-f', '{{.Name}}:{{.Scope}}', a]), `${a}:local\n`, 'berth inspect finds volumes too');
    const miss = await berth(['volume', 'inspect', a, `nope${tag}`]);
    assert.equal(miss.code, 1);
    assert.equal(miss.stderr, `Error response from daemon: get nope${tag}: no such volume\n`);
    assert.equal(await ok(['volume', 'rm', a, anon]), `${a}\n${anon}\n`);
    assert.ok(!existsSync(join(daemon.dataRoot, 'volumes', a)));
    assert.equal((await berth(['volume', 'rm', '-f', `nope${tag}`])).code, 0);
  });

  test('bad input: invalid names and options 400, missing 404, in use 409 (force too), bad --mount 125', async () => {
    const bad = await berth(['volume', 'create', 'a!b']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^Error response from daemon: create a!b: "a!b" includes invalid characters for a local volume name, only "\[a-zA-Z0-9\]\[a-zA-Z0-9_.-\]" are allowed/);
    assert.match((await berth(['volume', 'create', '-o', 'foo=bar', vname('o')])).stderr, /invalid option: "foo"/);
    assert.match((await berth(['volume', 'rm', `nope${tag}`])).stderr, new RegExp(`get nope${tag}: no such volume`));
    const v = vname('used');
    const id = (await ok(['create', '-v', `${v}:/data`, 'busybox', 'true'])).trim();
    for (const args of [['volume', 'rm', v], ['volume', 'rm', '-f', v]]) {
      const r = await berth(args);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `Error response from daemon: remove ${v}: volume is in use - [${id}]\n`);
    }
    const run = await berth(['run', '--rm', '-v', 'x!y:/data', 'busybox', 'true']);
    assert.equal(run.code, 125);
    assert.match(run.stderr, /create x!y: "x!y" includes invalid characters/);
    const mount = await berth(['run', '--rm', '--mount', 'type=volume,target=/m,bind-propagation=shared', 'busybox', 'true']);
    assert.equal(mount.code, 125);
    assert.match(mount.stderr, /invalid argument "type=volume,target=\/m,bind-propagation=shared" for "--mount" flag: cannot mix 'bind-\*' options with mount type 'volume'/);
    assert.match((await berth(['run', '--rm', '--mount', 'src=x', 'busybox', 'true'])).stderr, /target is required/);
    assert.match((await berth(['run', '--rm', '--volumes-from', `nope${tag}`, 'busybox', 'true'])).stderr, new RegExp(`No such container: nope${tag}`));
    await ok(['rm', id]);
    await ok(['volume', 'rm', v]);
  });

  test('run -v vol:/data writes, a second container reads it; --mount readonly; the image content is copied into an empty volume', async () => {
    const v = vname('data');
    const roots = (mp: string): boolean => mp.startsWith(daemon.dataRoot) || mp.startsWith(daemon.execRoot);
    const before = await snapshotLeaks({ processMarkers: [daemon.execRoot], mountFilter: roots });
    assert.equal((await berth(['run', '--rm', '-v', `${v}:/data`, 'busybox', 'sh', '-c', 'echo hello > /data/msg'])).code, 0);
    assert.equal(await ok(['run', '--rm', '-v', `${v}:/data`, 'busybox', 'cat', '/data/msg']), 'hello\n');
    const ro = await berth(['run', '--rm', '--mount', `type=volume,source=${v},target=/d,readonly`, 'busybox', 'sh', '-c', 'cat /d/msg; touch /d/x']);
    assert.equal(ro.stdout, 'hello\n');
    assert.match(ro.stderr, /Read-only file system/);
    assert.ok((await volumes()).includes(v), '--rm keeps a named volume');
    // copy-up: /etc and /home of the image land in new volumes mounted there (owners kept); nocopy leaves it empty
    const etc = vname('etc');
    assert.match(await ok(['run', '--rm', '-v', `${etc}:/etc`, 'busybox', 'cat', '/etc/passwd']), /^root:/);
    assert.ok(existsSync(join(daemon.dataRoot, 'volumes', etc, '_data', 'passwd')));
    assert.equal(await ok(['run', '--rm', '-v', `${vname('home')}:/home`, 'busybox', 'stat', '-c', '%n %u %a', '/home/user']), '/home/user 1000 755\n');
    assert.equal(await ok(['run', '--rm', '--mount', `type=volume,src=${vname('empty')},dst=/home,volume-nocopy`, 'busybox', 'ls', '-A', '/home']), '');
    await assertNoLeaksEventually(before);
    assert.equal(readFileSync(join(daemon.dataRoot, 'volumes', v, '_data', 'msg'), 'utf8'), 'hello\n');
    await ok(['volume', 'rm', v, etc, vname('empty'), vname('home')]);
  });

  test('anonymous volumes: run --rm -v /anon leaves none, rm -v removes them, --volumes-from shares them, inspect Mounts', async () => {
    const start = await volumes();
    assert.equal((await berth(['run', '--rm', '-v', '/anon', 'busybox', 'sh', '-c', 'echo x > /anon/f'])).code, 0);
    assert.deepEqual(await volumes(), start);
    const src = vname('src');
    await ok(['run', '--name', src, '-v', '/shared', 'busybox', 'sh', '-c', 'echo from-src > /shared/f']);
    assert.equal(await ok(['ps', '-a', '--filter', 'volume=/shared', '--format', '{{.Names}}']), `${src}\n`);
    const mounts = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', src])) as Record<string, unknown>[];
    assert.equal(mounts.length, 1);
    const name = mounts[0]!.Name as string;
    assert.deepEqual(mounts[0], { Type: 'volume', Name: name, Source: join(daemon.dataRoot, 'volumes', name, '_data'), Destination: '/shared', Driver: 'local', Mode: '', RW: true, Propagation: '' });
    assert.equal(await ok(['run', '--rm', '--volumes-from', `${src}:ro`, 'busybox', 'sh', '-c', 'cat /shared/f; touch /shared/g 2>/dev/null || echo ro']), 'from-src\nro\n');
    assert.ok((await volumes()).includes(name), 'a borrowed anonymous volume stays with its owner');
    assert.equal(await ok(['ps', '-a', '--filter', `volume=${name}`, '--format', '{{.Names}}']), `${src}\n`);
    assert.equal(await ok(['rm', '-v', src]), `${src}\n`);
    assert.deepEqual(await volumes(), start);
  });

  test('volume prune: asks unless -f, anonymous only unless -a, prints what went; system df counts volumes', async () => {
    const keep = vname('keep');
    await ok(['volume', 'create', keep]);
    const anonId = (await ok(['create', '-v', '/scratch', 'busybox', 'sh', '-c', 'head -c 2000 /dev/zero > /scratch/z'])).trim();
    await ok(['start', '-a', anonId]);
    const anon = (JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', anonId])) as { Name: string }[])[0]!.Name;
    await ok(['rm', anonId]);
    const df = await ok(['system', 'df']);
    assert.match(df, /\nLocal Volumes {3}2 {9}0 {9}2kB {7}2kB \(100%\)\n/);
    const asked = await cli.run(['volume', 'prune'], { input: 'n\n' });
    assert.equal(asked.stdout, 'WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ');
    assert.ok((await volumes()).includes(anon));
    assert.equal(await ok(['volume', 'prune', '-f']), `Deleted Volumes:\n${anon}\n\nTotal reclaimed space: 2kB\n`);
    assert.deepEqual(await volumes(), [keep]);
    assert.equal(await ok(['volume', 'prune', '-f']), 'Total reclaimed space: 0B\n');
    assert.equal(await ok(['volume', 'prune', '-af', '--filter', 'label=nope']), 'Total reclaimed space: 0B\n');
    assert.equal(await ok(['volume', 'prune', '-af']), `Deleted Volumes:\n${keep}\n\nTotal reclaimed space: 0B\n`);
    // system df -v lists volumes; system prune --volumes takes the anonymous unused ones
    const sid = (await ok(['create', '-v', '/scratch2', 'busybox', 'true'])).trim();
    const anon2 = (JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', sid])) as { Name: string }[])[0]!.Name;
    assert.match(await ok(['system', 'df', '-v']), new RegExp(`Local Volumes space usage:\\n\\nVOLUME NAME +LINKS +SIZE\\n${anon2} +1 +0B\\n`));
    const sp = await ok(['system', 'prune', '-f', '--volumes']);
    assert.match(sp, new RegExp(`^Deleted Containers:\\n${sid}\\n\\nDeleted Volumes:\\n${anon2}\\n\\n`));
    assert.deepEqual(await volumes(), []);
  });

  test('a volume plugin (tools/examples/hello-volume-plugin.mjs): volume create -d, inspect Status, run -v writes into its directory, mount IDs, rm', async () => {
    const plugin = `hv${tag}`;
    const root = mkdtempSync(join(tmpdir(), 'berth-hv-'));
    const example = fileURLToPath(new URL('../../../../tools/examples/hello-volume-plugin.mjs', import.meta.url));
    const child = spawn(process.execPath, [example, plugin, '--dir', '/run/berth/plugins', '--root', root], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (c: Buffer) => (log += c.toString()));
    try {
      for (let i = 0; i < 100 && !existsSync(`/run/berth/plugins/${plugin}.sock`); i++) await new Promise((r) => setTimeout(r, 50));
      const v = vname('pv');
      assert.equal(await ok(['volume', 'create', '-d', plugin, '-o', 'color=red', v]), `${v}\n`);
      const bad = await berth(['volume', 'create', '-d', plugin, '-o', 'size=1', vname('pbad')]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /VolumeDriver\.Create: unknown option/);
      const [ins] = JSON.parse(await ok(['volume', 'inspect', v])) as Record<string, unknown>[];
      assert.equal(ins!.Driver, plugin);
      assert.equal(ins!.Mountpoint, join(root, v));
      assert.deepEqual(ins!.Status, { color: 'red', mounts: 0 });
      assert.ok((await ok(['volume', 'ls'])).includes(`${plugin}${' '.repeat(Math.max(3, 10 - plugin.length))}${v}\n`) || (await ok(['volume', 'ls', '-q', '--filter', `driver=${plugin}`])) === `${v}\n`);
      // A volume the plugin has and berthd never made (another daemon's, or made by hand): listed,
      // inspected and used by name as Docker does, removed through the plugin.
      const direct = vname('direct');
      await pluginCall(`/run/berth/plugins/${plugin}.sock`, 'VolumeDriver.Create', { Name: direct, Opts: { color: 'blue' } });
      assert.deepEqual((await ok(['volume', 'ls', '-q', '--filter', `driver=${plugin}`])).split('\n').filter(Boolean).sort(), [direct, v].sort());
      const [dins] = JSON.parse(await ok(['volume', 'inspect', direct])) as Record<string, unknown>[];
      assert.deepEqual([dins!.Driver, dins!.Mountpoint, dins!.Status], [plugin, join(root, direct), { color: 'blue', mounts: 0 }]);
      assert.equal(await ok(['run', '--rm', '-v', `${direct}:/d`, 'busybox', 'sh', '-c', 'echo by-name > /d/f']), '');
      assert.equal(readFileSync(join(root, direct, 'f'), 'utf8'), 'by-name\n');
      assert.deepEqual(await volumes(), [], 'no local volume was made for the name');
      assert.equal(await ok(['volume', 'rm', direct]), `${direct}\n`);
      assert.ok(!existsSync(join(root, direct)));
      assert.equal(await ok(['run', '--rm', '-v', `${v}:/data`, 'busybox', 'sh', '-c', 'echo via-plugin > /data/f; cat /data/f']), 'via-plugin\n');
      assert.equal(readFileSync(join(root, v, 'f'), 'utf8'), 'via-plugin\n');
      const id = new RegExp(`Mount \\{"Name":"${v}","ID":"([0-9a-f]{64})"\\}`).exec(log)?.[1];
      assert.ok(id, log);
      // Unmount goes out when the container exits, in the background: wait for it.
      const unmount = new RegExp(`Unmount \\{"Name":"${v}","ID":"${id}"\\}`);
      for (let i = 0; i < 100 && !unmount.test(log); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(log, unmount);
      // a daemon restart under a running container: the Unmount at its exit carries the Mount's ID; inspect shows the plugin's path
      const bg = (await ok(['run', '-d', '-v', `${v}:/data`, 'busybox', 'sleep', '2'])).trim();
      assert.equal(JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', bg]))[0].Source, join(root, v));
      const ids = [...log.matchAll(/Mount \{"Name":"[^"]+","ID":"([0-9a-f]{64})"\}/g)].map((m) => m[1]);
      const bgId = ids.at(-1)!;
      daemon = await restartDaemon(daemon);
      assert.equal((await ok(['wait', bg])).trim(), '0');
      const bgUnmount = new RegExp(`Unmount \\{"Name":"${v}","ID":"${bgId}"\\}`);
      for (let i = 0; i < 100 && !bgUnmount.test(log); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(log, bgUnmount);
      await ok(['rm', bg]);
      // an anonymous volume of the plugin through --volume-driver, removed with the --rm container
      assert.equal((await berth(['run', '--rm', '--volume-driver', plugin, '-v', '/anon', 'busybox', 'true'])).code, 0);
      assert.deepEqual((await ok(['volume', 'ls', '-q', '--filter', `driver=${plugin}`])).trim(), v);
      assert.equal(await ok(['volume', 'rm', v]), `${v}\n`);
      assert.ok(!existsSync(join(root, v)));
      assert.match((await berth(['volume', 'create', '-d', `nope${tag}`, vname('np')])).stderr, new RegExp(`error looking up volume plugin nope${tag}: plugin "nope${tag}" not found`));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a tmpfs-backed local volume (--opt type=tmpfs) is a tmpfs inside and unmounted after; volumes survive a daemon restart', async () => {
    const t = vname('tmpfs');
    await ok(['volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=10m', t]);
    assert.equal(await ok(['volume', 'inspect', '-f', '{{json .Options}}', t]), '{"device":"tmpfs","o":"size=10m","type":"tmpfs"}\n');
    assert.equal(await ok(['run', '--rm', '-v', `${t}:/t`, 'busybox', 'sh', '-c', 'grep " /t " /proc/mounts | cut -d" " -f3']), 'tmpfs\n');
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(join(daemon.dataRoot, 'volumes', t)), 'unmounted after the run');
    const d = vname('durable');
    await ok(['run', '--rm', '-v', `${d}:/d`, 'busybox', 'sh', '-c', 'echo kept > /d/k']);
    daemon = await restartDaemon(daemon);
    assert.ok((await volumes()).includes(d));
    assert.equal(await ok(['run', '--rm', '-v', `${d}:/d`, 'busybox', 'cat', '/d/k']), 'kept\n');
    await ok(['volume', 'rm', t, d]);
  });
});
