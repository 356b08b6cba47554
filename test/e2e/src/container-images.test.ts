/**
 * The berth CLI against a berthd on scratch roots: diff, commit, cp (in and out, confined to
 * the container's root), history, image prune, system df and export, as a user drives them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { berthCliPath, busyboxImageTar, makeTempDir, startDaemon, type Daemon, type TempDir } from '@berth/test-support';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let daemon: Daemon;
let tmp: TempDir;

function berth(args: string[], input?: Buffer): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(berthCliPath(), args, { env: { ...process.env, BERTH_HOST: daemon.host }, timeout: 30_000, encoding: 'buffer', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString('utf8') });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

async function ok(args: string[], input?: Buffer): Promise<string> {
  const r = await berth(args, input);
  assert.equal(r.code, 0, `berth ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const name = (what: string): string => `e2e-ci-${what}-${process.pid}`;

describe('berth CLI and berthd: diff, commit, cp, history, prune, df, export', { timeout: 240_000 }, () => {
  before(async () => {
    daemon = await startDaemon();
    tmp = await makeTempDir('berth-e2e-ci');
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    await daemon.cleanup();
    await tmp.remove();
  });

  test('--storage-opt reaches the storage driver: refused here with its reason, nothing left', async () => {
    const before = (await berth(['ps', '-aq'])).stdout;
    const r = await berth(['run', '--rm', '--storage-opt', 'size=1G', 'busybox', 'true']);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /(overlay2|vfs|aufs): --storage-opt is not supported/);
    assert.equal((await berth(['ps', '-aq'])).stdout, before, 'no container was left');
  });

  test('diff shows A, C and D after edits', async () => {
    const c = name('diff');
    await ok(['run', '--name', c, 'busybox', 'sh', '-c', 'echo x > /tmp/x; rm /bin/ls; echo y >> /etc/hostname.new']);
    const out = await ok(['diff', c]);
    const lines = out.trim().split('\n');
    assert.ok(lines.includes('C /tmp'), out);
    assert.ok(lines.includes('A /tmp/x'), out);
    assert.ok(lines.includes('D /bin/ls'), out);
    assert.ok(lines.includes('A /etc/hostname.new'), out);
    await ok(['rm', c]);
  });

  test('commit makes an image that runs with the change, with a history row on top', async () => {
    const c = name('commit');
    await ok(['run', '--name', c, 'busybox', 'sh', '-c', 'echo committed > /greeting']);
    const id = (await ok(['commit', '-m', 'add greeting', '-a', 'e2e', '-c', 'ENV FOO=bar', c, 'e2e-committed:v1'])).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await ok(['run', '--rm', 'e2e-committed:v1', 'cat', '/greeting']), 'committed\n');
    assert.equal(await ok(['run', '--rm', 'e2e-committed:v1', 'sh', '-c', 'echo $FOO']), 'bar\n');
    const hist = (await ok(['history', 'e2e-committed:v1'])).trim().split('\n');
    assert.match(hist[0]!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    assert.equal(hist.length, 3, hist.join('\n'));
    assert.ok(hist[1]!.startsWith(id.slice(7, 19)), hist[1]);
    assert.match(hist[1]!, /sh -c echo committed > \/greeting/);
    assert.match(hist[1]!, /add greeting$/);
    // The base row is the parent image's id (local parent chain), as docker shows it.
    const base = (await ok(['images', '-q', 'busybox:latest'])).trim();
    assert.ok(hist[2]!.startsWith(base), hist[2]);
    const inspect = JSON.parse(await ok(['image', 'inspect', 'e2e-committed:v1']))[0];
    assert.equal(inspect.RootFS.Layers.length, 2);
    assert.equal(inspect.Author, 'e2e');
    assert.equal(inspect.Comment, 'add greeting');
    await ok(['rm', c]);
  });

  test('commit of a running container pauses it and keeps it running', async () => {
    const c = name('commit-run');
    await ok(['run', '-d', '--name', c, 'busybox', 'sh', '-c', 'echo live > /live; sleep 60']);
    await new Promise((r) => setTimeout(r, 300));
    await ok(['commit', c, 'e2e-live']);
    assert.equal(JSON.parse(await ok(['inspect', c]))[0].State.Status, 'running');
    assert.equal(await ok(['run', '--rm', 'e2e-live', 'cat', '/live']), 'live\n');
    await ok(['rm', '-f', c]);
  });

  test('cp out: a file to stdout as tar, a file and a dir to local paths', async () => {
    const c = name('cpout');
    await ok(['run', '--name', c, 'busybox', 'sh', '-c', 'mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b']);
    const tarOut = await berth(['cp', `${c}:/data/a`, '-']);
    assert.equal(tarOut.code, 0, tarOut.stderr);
    const listing = spawnSync('tar', ['-t'], { input: Buffer.from(tarOut.stdout, 'latin1') }).stdout.toString();
    assert.equal(listing, 'a\n');
    await ok(['cp', `${c}:/data/a`, path.join(tmp.path, 'a-copy')]);
    assert.equal(await fs.readFile(path.join(tmp.path, 'a-copy'), 'utf8'), 'one\n');
    await ok(['cp', `${c}:/data`, path.join(tmp.path, 'out')]);
    assert.equal(await fs.readFile(path.join(tmp.path, 'out', 'sub', 'b'), 'utf8'), 'two\n');
    // Into an existing directory: the source keeps its name.
    await ok(['cp', `${c}:/data`, path.join(tmp.path, 'out')]);
    assert.equal(await fs.readFile(path.join(tmp.path, 'out', 'data', 'a'), 'utf8'), 'one\n');
    // `/.`: the contents only.
    await fs.mkdir(path.join(tmp.path, 'contents'));
    await ok(['cp', `${c}:/data/.`, path.join(tmp.path, 'contents')]);
    assert.deepEqual((await fs.readdir(path.join(tmp.path, 'contents'))).sort(), ['a', 'sub']);
    const missing = await berth(['cp', `${c}:/nope`, path.join(tmp.path, 'x')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Could not find the file \/nope in container/);
    await ok(['rm', c]);
  });

  test('cp in: a file into a dir, a renamed file, a dir, and a tar on stdin', async () => {
    const c = name('cpin');
    await ok(['create', '--name', c, 'busybox', 'sleep', '60']);
    await fs.writeFile(path.join(tmp.path, 'in.txt'), 'hello in\n');
    await fs.mkdir(path.join(tmp.path, 'indir', 'deep'), { recursive: true });
    await fs.writeFile(path.join(tmp.path, 'indir', 'deep', 'f'), 'deep\n');
    await ok(['cp', path.join(tmp.path, 'in.txt'), `${c}:/tmp/`]);
    await ok(['cp', path.join(tmp.path, 'in.txt'), `${c}:/etc/renamed`]);
    await ok(['cp', path.join(tmp.path, 'indir'), `${c}:/newdir`]);
    await ok(['cp', path.join(tmp.path, 'indir'), `${c}:/opt`]);
    const tarIn = spawnSync('tar', ['-C', tmp.path, '-c', 'in.txt']).stdout;
    await ok(['cp', '-', `${c}:/root`], tarIn);
    await ok(['start', c]);
    const out = await ok(['exec', c, 'sh', '-c', 'cat /tmp/in.txt /etc/renamed /newdir/deep/f /opt/indir/deep/f /root/in.txt; stat -c %u:%g /tmp/in.txt']);
    assert.equal(out, 'hello in\nhello in\ndeep\ndeep\nhello in\n0:0\n');
    const noDir = await berth(['cp', path.join(tmp.path, 'in.txt'), `${c}:/nonexistent/dir/`]);
    assert.notEqual(noDir.code, 0);
    await ok(['rm', '-f', c]);
  });

  test('cp through a symlink to /etc/shadow reads and writes the container file, never the host one', async () => {
    const hostShadow = await fs.readFile('/etc/shadow');
    const c = name('cpevil');
    await ok(['run', '--name', c, 'busybox', 'sh', '-c', 'echo container-shadow > /etc/shadow; ln -s /etc/shadow /tmp/evil; ln -s / /tmp/root; ln -s ../../../../../../etc /tmp/up']);
    // Read: the link is followed inside the container.
    await ok(['cp', '-L', `${c}:/tmp/evil`, path.join(tmp.path, 'shadow-out')]);
    assert.equal(await fs.readFile(path.join(tmp.path, 'shadow-out'), 'utf8'), 'container-shadow\n');
    await ok(['cp', `${c}:/tmp/up/shadow`, path.join(tmp.path, 'shadow-up')]);
    assert.equal(await fs.readFile(path.join(tmp.path, 'shadow-up'), 'utf8'), 'container-shadow\n');
    // Write: to the link, through a link to /, and through `..` climbing.
    await fs.writeFile(path.join(tmp.path, 'pwn'), 'pwned\n');
    await ok(['cp', path.join(tmp.path, 'pwn'), `${c}:/tmp/evil`]);
    await ok(['cp', path.join(tmp.path, 'pwn'), `${c}:/tmp/root/etc/shadow`]);
    await ok(['cp', path.join(tmp.path, 'pwn'), `${c}:/../../../../etc/pwn`]);
    assert.deepEqual(await fs.readFile('/etc/shadow'), hostShadow);
    await assert.rejects(fs.access('/etc/pwn'));
    const tarOut = await berth(['cp', `${c}:/etc/shadow`, '-']);
    assert.match(tarOut.stdout, /pwned/);
    assert.doesNotMatch(tarOut.stdout, /root:/);
    await ok(['rm', '-f', c]);
  });

  test('cp sees what the container sees: volumes, binds and host files, stopped or running; read-only refused; nothing left mounted', async () => {
    const c = name('cpmounts');
    const vol = `e2e-cpvol-${process.pid}`;
    const ro = `e2e-cpro-${process.pid}`;
    const bind = path.join(tmp.path, 'cp-bind');
    await fs.mkdir(bind);
    await fs.writeFile(path.join(bind, 'b'), 'from-host\n');
    await fs.writeFile(path.join(tmp.path, 'payload'), 'payload\n');
    const mounts = async (): Promise<string[]> =>
      (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(daemon.dataRoot) || l.includes(daemon.execRoot));
    const mountsBefore = await mounts();
    const id = (await ok(['create', '--name', c, '-v', `${vol}:/data`, '-v', `${ro}:/rodata:ro`, '-v', `${bind}:/bind`, 'busybox', 'sleep', '60'])).trim();
    // Stopped: into the volume (the mount point is not in the image) and into the bind; out of the bind.
    await ok(['cp', path.join(tmp.path, 'payload'), `${c}:/data/f`]);
    await ok(['cp', path.join(tmp.path, 'payload'), `${c}:/bind/f`]);
    assert.equal(await fs.readFile(path.join(bind, 'f'), 'utf8'), 'payload\n');
    assert.equal(await ok(['run', '--rm', '-v', `${vol}:/v`, 'busybox', 'cat', '/v/f']), 'payload\n', 'the file went into the volume');
    assert.match((await berth(['cp', `${c}:/bind/b`, '-'])).stdout, /from-host/);
    // Only the mount points went into the layer (Docker makes them too), none of the files.
    assert.deepEqual((await ok(['diff', c])).split('\n').filter((l) => /^[AC] \/(data|bind|rodata)\//.test(l)), []);
    const refused = await berth(['cp', path.join(tmp.path, 'payload'), `${c}:/rodata/f`]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, 'Error response from daemon: mounted volume is marked read-only\n');
    // Running: into the volume (the container sees it), the daemon's /etc/hostname out.
    await ok(['start', c]);
    await ok(['cp', path.join(tmp.path, 'payload'), `${c}:/data/g`]);
    assert.equal(await ok(['exec', c, 'cat', '/data/g']), 'payload\n');
    assert.match((await berth(['cp', `${c}:/etc/hostname`, '-'])).stdout, new RegExp(`^hostname\0[^]*${id.slice(0, 12)}\n`));
    // Two at once on one container, and the container sees none of cp's mounts.
    const inside = await ok(['exec', c, 'cat', '/proc/self/mountinfo']);
    await Promise.all([ok(['cp', `${c}:/data`, path.join(tmp.path, 'out1')]), ok(['cp', `${c}:/bind`, path.join(tmp.path, 'out2')])]);
    assert.deepEqual((await fs.readdir(path.join(tmp.path, 'out1'))).sort(), ['f', 'g']);
    assert.equal(await ok(['exec', c, 'cat', '/proc/self/mountinfo']), inside);
    await ok(['rm', '-f', c]);

    // --read-only: refused outside volumes, also with a body large enough to be still on its way.
    const r = name('cpro');
    await ok(['create', '--name', r, '--read-only', '-v', `${vol}:/data`, 'busybox', 'true']);
    await fs.writeFile(path.join(tmp.path, 'big'), Buffer.alloc(8 << 20, 1));
    for (const src of ['payload', 'big']) {
      const no = await berth(['cp', path.join(tmp.path, src), `${r}:/tmp/`]);
      assert.equal(no.code, 1, no.stderr);
      assert.equal(no.stderr, 'Error response from daemon: container rootfs is marked read-only\n');
    }
    await ok(['cp', path.join(tmp.path, 'payload'), `${r}:/data/h`]);
    await ok(['rm', '-v', r]);
    await ok(['volume', 'rm', vol, ro]);
    assert.deepEqual(await mounts(), mountsBefore, 'no mount of cp is left');
    assert.deepEqual(await fs.readdir(path.join(daemon.execRoot, 'cp')), []);
  });

  test('image prune removes dangling images only; -a removes unused ones, never used ones', async () => {
    const c = name('prune');
    await ok(['run', '--name', c, 'busybox', 'sh', '-c', 'echo d > /d']);
    const dangling = (await ok(['commit', c])).trim();
    await ok(['tag', 'busybox:latest', 'e2e-unused:1']);
    const r = await ok(['image', 'prune', '-f']);
    assert.match(r, /Deleted Images:/);
    assert.ok(r.includes(`deleted: ${dangling}`), r);
    assert.match(r, /Total reclaimed space: \S+/);
    assert.notEqual((await ok(['images', '-q', 'e2e-unused:1'])).trim(), '');
    // -a: unused tagged images go (busybox is used by the container: it stays).
    const all = await ok(['image', 'prune', '-a', '-f']);
    assert.match(all, /untagged: e2e-committed:v1/);
    assert.notEqual((await ok(['images', '-q', 'busybox:latest'])).trim(), '');
    await ok(['rm', c]);
  });

  test('system df shows the four rows with sizes', async () => {
    const out = await ok(['system', 'df']);
    const lines = out.trim().split('\n');
    assert.match(lines[0]!, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
    assert.match(lines[1]!, /^Images\s+\d+\s+\d+\s+[\d.]+[kMG]?B\s+/);
    assert.match(lines[2]!, /^Containers\s+\d+\s+\d+\s+/);
    assert.match(lines[3]!, /^Local Volumes\s+0\s+0\s+0B\s+0B$/);
    assert.match(lines[4]!, /^Build Cache\s+0\s+0\s+0B\s+0B$/);
  });

  test('export of a created container gives the busybox tree', async () => {
    const id = (await ok(['create', 'busybox'])).trim();
    const r = await berth(['export', id]);
    assert.equal(r.code, 0, r.stderr);
    const root = path.join(tmp.path, 'rootfs');
    await fs.mkdir(root);
    const x = spawnSync('tar', ['-C', root, '-x'], { input: Buffer.from(r.stdout, 'latin1') });
    assert.equal(x.status, 0, x.stderr.toString());
    const entries = new Set(await fs.readdir(root));
    for (const d of ['bin', 'dev', 'etc', 'home', 'proc', 'root', 'sys', 'tmp', 'usr', 'var']) assert.ok(entries.has(d), `${d} missing: ${[...entries].join(' ')}`);
    await ok(['rm', id]);
  });

  test('a --rm container\'s writable layer is mounted volatile (no sync at unmount), an ordinary one is not; both are removed', async () => {
    const rmName = name('vol');
    const keepName = name('durable');
    await ok(['run', '-d', '--rm', '--name', rmName, 'busybox', 'sh', '-c', 'echo kept > /tmp/f; exec sleep 60']);
    await ok(['run', '-d', '--name', keepName, 'busybox', 'sleep', '60']);
    const info = JSON.parse(await ok(['inspect', rmName, keepName])) as { Name: string; Driver: string; GraphDriver: { Data: Record<string, string> } }[];
    if (info[0]!.Driver !== 'overlay2') {
      await ok(['rm', '-f', rmName, keepName]);
      return; // volatile is overlay2's (this daemon probed another driver)
    }
    const superOptions = async (merged: string): Promise<string> => {
      const line = (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === merged);
      assert.ok(line, `no mount at ${merged}`);
      return line.split(' - ')[1]!;
    };
    assert.match(await superOptions(info[0]!.GraphDriver.Data.MergedDir!), /[ ,](fsync=)?volatile(,|$)/);
    assert.doesNotMatch(await superOptions(info[1]!.GraphDriver.Data.MergedDir!), /volatile/);
    assert.equal((await ok(['exec', rmName, 'cat', '/tmp/f'])).trim(), 'kept');
    await ok(['stop', '-t', '0', rmName]);
    await ok(['rm', '-f', keepName]);
    for (const d of [info[0]!, info[1]!]) {
      assert.equal((await berth(['inspect', d.Name])).code, 1, `${d.Name} is gone`);
      await assert.rejects(fs.stat(path.dirname(d.GraphDriver.Data.MergedDir!)), `the layer of ${d.Name} is gone`);
    }
  });
});
