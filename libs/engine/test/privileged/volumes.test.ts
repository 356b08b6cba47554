/**
 * Volumes on the real kernel: the engine on a temp data root, a busybox image with a VOLUME
 * whose directory has its own owner and mode (copy-up), tmpfs-backed local volumes mounted with
 * mount(2). Each test checks the mounts and directories it leaves.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Demuxer } from '@berth/api';
import { silentLogger } from '@berth/log';
import type { GraphDriver } from '@berth/plugin-api';
import { createEngine, type Engine } from '@berth/engine';
import { tarDirDriver } from '@berth/image/testing';
import { BUSYBOX_TAR, privilegedSkip, readAll } from './support.js';

const skip = privilegedSkip;

let tmp: string;
let dataRoot: string;
let execRoot: string;
let driver: GraphDriver;
let engine: Engine;
const tag = `${process.pid}${Math.random().toString(16).slice(2, 6)}`;

const open = (): Promise<Engine> => createEngine({ dataRoot, execRoot, logger: silentLogger(), graphDriver: driver });

/** Mount points under the test's temp directory (volumes with options, container layers). */
function mountsUnder(dir: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
}

async function create(body: Record<string, unknown>, name?: string): Promise<string> {
  return (await engine.createContainer(name, { Image: `vimg${tag}`, ...body })).Id;
}

/** Starts the container and answers its exit code and output once it has exited. */
async function run(id: string): Promise<{ code: number; out: string }> {
  const w = await engine.waitContainer(id, 'next-exit');
  await engine.startContainer(id);
  const { StatusCode } = await w.result;
  const logs = await engine.containerLogs(id, { follow: false, stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: 'all' });
  let out = '';
  new Demuxer((_t, p) => (out += p.toString())).push(await readAll(logs.body));
  return { code: StatusCode, out };
}

const volumeNames = async (): Promise<string[]> => (await engine.listVolumes(new Map([['driver', new Set(['local'])]]))).Volumes.map((v) => v.Name).sort();

describe('volumes (privileged)', { skip, concurrency: false }, () => {
  before(async () => {
    tmp = fs.mkdtempSync(`/tmp/bv${process.pid % 1000}`);
    dataRoot = path.join(tmp, 'd');
    execRoot = path.join(tmp, 'x');
    driver = tarDirDriver(path.join(tmp, 'layers'), { keepOwners: true });
    // busybox plus /data (uid 1000, gid 1001, 0750) holding f (uid 1002, 0640): the image's VOLUME.
    const root = path.join(tmp, 'rootfs');
    fs.mkdirSync(root);
    execFileSync('tar', ['-xf', BUSYBOX_TAR, '-C', root]);
    fs.mkdirSync(path.join(root, 'data'));
    fs.writeFileSync(path.join(root, 'data', 'f'), 'from the image\n');
    fs.chownSync(path.join(root, 'data', 'f'), 1002, 1002);
    fs.chmodSync(path.join(root, 'data', 'f'), 0o640);
    fs.chownSync(path.join(root, 'data'), 1000, 1001);
    fs.chmodSync(path.join(root, 'data'), 0o750);
    const tar = path.join(tmp, 'img.tar');
    execFileSync('tar', ['--numeric-owner', '-cf', tar, '-C', root, '.']);
    engine = await open();
    await engine.importImage(fs.createReadStream(tar), { repo: `vimg${tag}`, tag: 'latest', message: '', changes: ['CMD ["sh"]', 'VOLUME ["/data"]'] }, () => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  });

  after(async () => {
    for (const c of await engine.listContainers({ all: true, limit: 0, size: false, filters: new Map() }))
      await engine.removeContainer(c.Id, { force: true, volumes: true }).catch(() => undefined);
    for (const v of await volumeNames()) await engine.removeVolume(v, { force: true });
    await engine.close();
    const left = mountsUnder(tmp);
    for (const m of left.reverse()) execFileSync('umount', ['-l', m]);
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.deepEqual(left, [], 'mounts left under the test directory');
  });

  it("image VOLUME: an anonymous volume per path, filled from the image with owners and modes kept; rm -v removes it", async () => {
    const id = await create({ Cmd: ['sh', '-c', 'cat /data/f; stat -c "%u:%g %a" /data /data/f; echo new > /data/g'] });
    const [mp] = (await engine.inspectContainer(id)).Mounts;
    assert.equal(mp!.Type, 'volume');
    assert.match(mp!.Name!, /^[0-9a-f]{64}$/);
    assert.deepEqual({ ...mp, Name: 'x' }, { Type: 'volume', Name: 'x', Source: path.join(dataRoot, 'volumes', mp!.Name!, '_data'), Destination: '/data', Driver: 'local', Mode: '', RW: true, Propagation: '' });
    const r = await run(id);
    assert.deepEqual(r, { code: 0, out: 'from the image\n1000:1001 750\n1002:1002 640\n' });
    const st = fs.statSync(mp!.Source);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1000, 1001, 0o750]);
    assert.equal(fs.readFileSync(path.join(mp!.Source, 'g'), 'utf8'), 'new\n');
    await assert.rejects(engine.removeVolume(mp!.Name!, { force: true }), { message: `remove ${mp!.Name}: volume is in use - [${id}]` });
    // A second start copies nothing over what the container wrote.
    fs.writeFileSync(path.join(mp!.Source, 'f'), 'changed\n');
    // (the log holds both runs)
    assert.match((await run(id)).out, /^from the image\n.*\nchanged\n1000:1001 750\n/s);
    await engine.removeContainer(id, { force: false, volumes: true });
    assert.ok(!fs.existsSync(path.join(dataRoot, 'volumes', mp!.Name!)));
  });

  it('named volume shared by two containers: written by one, read (read-only) by the next; nocopy; rm without -v keeps it; events', async () => {
    const since = Date.now() / 1000;
    const name = `shared${tag}`;
    const a = await create({ Cmd: ['sh', '-c', 'ls /data; echo hello > /data/msg'], HostConfig: { Binds: [`${name}:/data:nocopy`] } });
    assert.deepEqual(await run(a), { code: 0, out: '' });
    const b = await create({ Cmd: ['sh', '-c', 'cat /data/msg; echo x 2>/dev/null > /data/y || echo refused'], HostConfig: { Binds: [`${name}:/data:ro`] } });
    const ins = await engine.inspectContainer(b);
    assert.deepEqual(ins.Mounts, [{ Type: 'volume', Name: name, Source: path.join(dataRoot, 'volumes', name, '_data'), Destination: '/data', Driver: 'local', Mode: 'ro', RW: false, Propagation: '' }]);
    const r = await run(b);
    assert.deepEqual(r, { code: 0, out: 'hello\nrefused\n' });
    await assert.rejects(engine.removeVolume(name, { force: false }), { code: 'BERTH_VOLUME_IN_USE', message: new RegExp(`^remove ${name}: volume is in use - \\[(${a}, ${b}|${b}, ${a})\\]$`) });
    await engine.removeContainer(a, { force: false, volumes: true });
    await engine.removeContainer(b, { force: false, volumes: false });
    assert.equal((await engine.inspectVolume(name)).Name, name, 'a named volume outlives rm -v');
    const ac = new AbortController();
    const seen: string[] = [];
    for await (const e of engine.events({ since, until: Date.now() / 1000 + 0.01, filters: new Map([['type', new Set(['volume'])]]) }, ac.signal))
      seen.push(`${e.Action}${e.Actor.Attributes?.container === a ? ' a' : e.Actor.Attributes?.container === b ? ' b' : ''}${e.Action === 'mount' ? ` ${e.Actor.Attributes?.['read/write']}` : ''}`);
    assert.deepEqual(seen, ['create', 'mount a true', 'unmount a', 'create', 'mount b false', 'unmount b']);
    await engine.removeVolume(name, { force: false });
    assert.ok(!fs.existsSync(path.join(dataRoot, 'volumes', name)));
  });

  it('local driver options: a tmpfs volume is mounted while its container runs and unmounted after; a failed start unmounts it', async () => {
    const name = `tmpv${tag}`;
    const vol = await engine.createVolume({ Name: name, DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=2m' } });
    assert.deepEqual(vol.Options, { type: 'tmpfs', device: 'tmpfs', o: 'size=2m' });
    const id = await create({ Cmd: ['sh', '-c', 'grep " /t " /proc/mounts | cut -d" " -f3; df -k /t | tail -1 | tr -s " " | cut -d" " -f2; sleep 0.5'], HostConfig: { Mounts: [{ Type: 'volume', Source: name, Target: '/t' }] } });
    const w = await engine.waitContainer(id, 'next-exit');
    await engine.startContainer(id);
    assert.deepEqual(mountsUnder(path.join(dataRoot, 'volumes')), [vol.Mountpoint]);
    await w.result;
    const logs = await engine.containerLogs(id, { follow: false, stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: 'all' });
    let out = '';
    new Demuxer((_t, p) => (out += p.toString())).push(await readAll(logs.body));
    assert.equal(out, 'tmpfs\n2048\n');
    assert.deepEqual(mountsUnder(path.join(dataRoot, 'volumes')), []);
    const bad = await create({ Cmd: ['/nonexistent'], HostConfig: { Binds: [`${name}:/t`] } });
    await assert.rejects(engine.startContainer(bad));
    assert.deepEqual(mountsUnder(path.join(dataRoot, 'volumes')), []);
    await engine.removeContainer(bad, { force: true, volumes: true });
    await engine.removeContainer(id, { force: true, volumes: true });
    await engine.removeVolume(name, { force: false });

    // type=none,o=bind,device=<dir>: a host directory bound on the volume's _data while used.
    const hostDir = path.join(tmp, 'hostdir');
    fs.mkdirSync(hostDir);
    fs.writeFileSync(path.join(hostDir, 'h'), 'from the host\n');
    const bindVol = await engine.createVolume({ Name: `bindv${tag}`, DriverOpts: { type: 'none', o: 'bind', device: hostDir } });
    const bid = await create({ Cmd: ['sh', '-c', 'cat /b/h; echo back > /b/w'], HostConfig: { Binds: [`bindv${tag}:/b`] } });
    assert.deepEqual(await run(bid), { code: 0, out: 'from the host\n' });
    assert.equal(fs.readFileSync(path.join(hostDir, 'w'), 'utf8'), 'back\n');
    assert.deepEqual(mountsUnder(path.join(dataRoot, 'volumes')), []);
    assert.deepEqual(fs.readdirSync(bindVol.Mountpoint), [], 'unmounted: _data is empty again');
    await engine.removeContainer(bid, { force: false, volumes: true });
    await engine.removeVolume(`bindv${tag}`, { force: false });
    assert.ok(fs.existsSync(path.join(hostDir, 'w')), 'removing the volume leaves the host directory');

    // Something mounted on a volume's _data by hand: rm refuses rather than delete through it.
    const guarded = await engine.createVolume({ Name: `guard${tag}` });
    execFileSync('mount', ['--bind', hostDir, guarded.Mountpoint]);
    try {
      await assert.rejects(engine.removeVolume(`guard${tag}`, { force: true }), { code: 'BERTH_VOLUME', message: /is still a mount point/ });
    } finally {
      execFileSync('umount', [guarded.Mountpoint]);
    }
    assert.ok(fs.existsSync(path.join(hostDir, 'h')));
    await engine.removeVolume(`guard${tag}`, { force: false });
  });

  it('--rm removes the anonymous volumes, not the named ones; --volumes-from shares them read-only', async () => {
    const named = `keep${tag}`;
    const src = await create({ Cmd: ['sh', '-c', 'echo s > /anon/s'], Volumes: { '/anon': {} }, HostConfig: { Binds: [`${named}:/n`] } });
    await run(src);
    const anon = (await engine.inspectContainer(src)).Mounts.find((m) => m.Destination === '/anon')!.Name!;
    const id = await create({ Cmd: ['sh', '-c', 'cat /anon/s; touch /anon/t 2>/dev/null || echo ro'], HostConfig: { VolumesFrom: [`${src}:ro`] } });
    const ins = await engine.inspectContainer(id);
    assert.deepEqual(ins.Mounts.map((m) => [m.Destination, m.Type, m.RW, m.Mode]).sort(), [['/anon', 'volume', false, ''], ['/data', 'volume', false, ''], ['/n', 'volume', false, '']], 'the image VOLUME /data is the one from --volumes-from, as in Docker');
    assert.deepEqual(await run(id), { code: 0, out: 's\nro\n' });
    // rm -v of the one that borrowed: the volume is still in use by its owner, so it stays (no error).
    await engine.removeContainer(id, { force: false, volumes: true });
    assert.ok((await volumeNames()).includes(anon));

    const before = await volumeNames();
    const rm = await create({ Cmd: ['true'], Volumes: { '/scratch': {} }, HostConfig: { AutoRemove: true, Binds: [`${named}:/n`] } });
    const gone = await engine.waitContainer(rm, 'removed');
    await engine.startContainer(rm);
    await gone.result;
    assert.deepEqual(await volumeNames(), before, '--rm left no volume of its own and kept the named one');
    await engine.removeContainer(src, { force: false, volumes: true });
    assert.deepEqual(await volumeNames(), [named]);
    await engine.removeVolume(named, { force: false });
  });

  it('a failed create leaves no volume it made; bad specs are 400 naming the field; volumes survive a daemon restart', async () => {
    const before = await volumeNames();
    await assert.rejects(create({ Cmd: ['true'], HostConfig: { Binds: [`new1${tag}:/x`, `new2${tag}:/x`] } }), { message: 'Duplicate mount point: /x' });
    await assert.rejects(create({ Cmd: ['true'], HostConfig: { Binds: [`new1${tag}:/x`], VolumesFrom: ['nosuch'] } }), { code: 'BERTH_INVALID_ARGUMENT', message: 'No such container: nosuch' });
    await assert.rejects(create({ Cmd: ['true'], HostConfig: { Mounts: [{ Type: 'volume', Target: '/m', VolumeOptions: { DriverConfig: { Options: { foo: 'bar' } } } }] } }), { code: 'BERTH_INVALID_ARGUMENT', message: /^create [0-9a-f]{64}: invalid option: "foo"$/ });
    await assert.rejects(create({ Cmd: ['true'], HostConfig: { Binds: ['a!b:/x'] } }), (e: Error & { details?: { field?: string } }) => e.details?.field === 'HostConfig.Binds[0]');
    assert.deepEqual(await volumeNames(), before);

    const name = `durable${tag}`;
    const v = await engine.createVolume({ Name: name, Labels: { k: 'v' } });
    const id = await create({ Cmd: ['sh', '-c', 'echo kept > /v/k'], HostConfig: { Binds: [`${name}:/v`] } });
    await run(id);
    await engine.close();
    engine = await open();
    assert.deepEqual(await engine.inspectVolume(name), v);
    await assert.rejects(engine.removeVolume(name, { force: false }), { code: 'BERTH_VOLUME_IN_USE' });
    assert.equal(fs.readFileSync(path.join(v.Mountpoint, 'k'), 'utf8'), 'kept\n');
    await engine.removeContainer(id, { force: false, volumes: true });
    await engine.removeVolume(name, { force: false });
  });
});
