import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@berth/log';
import { PluginRegistry, serveVolumePlugin } from '@berth/plugin';
import type { VolumeDriver } from '@berth/plugin-api';
import { isVolumeBind, normaliseHostConfig, parseVolumeBind, parseVolumesFrom } from './config.js';
import { parseMountOptions, VolumeStore, ANONYMOUS_LABEL, type VolumeMounter } from './volumes.js';

interface Rig {
  root: string;
  store: VolumeStore;
  refs: Map<string, string[]>;
  events: string[];
  calls: string[];
  done(): void;
}

function rig(root = mkdtempSync(join(tmpdir(), 'bvol-'))): Rig {
  const refs = new Map<string, string[]>();
  const events: string[] = [];
  const calls: string[] = [];
  const mounter: VolumeMounter = {
    mount: (source, target, fstype, flags, data) => void calls.push(`mount ${source} ${target} ${fstype} 0x${flags.toString(16)} ${data}`),
    umount2: (target, flags) => void calls.push(`umount ${target} ${flags}`),
  };
  const store = new VolumeStore({
    root: join(root, 'volumes'), logger: silentLogger(), refs: (n) => refs.get(n) ?? [],
    emit: (a, id, attrs) => void events.push(`${a} ${id} ${JSON.stringify(attrs)}`), mounter: () => mounter,
  });
  store.load();
  return { root, store, refs, events, calls, done: () => rmSync(root, { recursive: true, force: true }) };
}

test('create: Docker layout and view, idempotent for the same driver, durable across a reload', async () => {
  const r = rig();
  try {
    const { volume, created } = await r.store.create({ Name: 'data1', Labels: { a: 'b' } });
    assert.equal(created, true);
    assert.deepEqual(Object.keys(volume), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
    assert.equal(volume.Mountpoint, join(r.root, 'volumes', 'data1', '_data'));
    assert.match(volume.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual([volume.Driver, volume.Labels, volume.Options, volume.Scope], ['local', { a: 'b' }, null, 'local']);
    assert.equal(statSync(volume.Mountpoint).mode & 0o777, 0o755);
    const again = await r.store.create({ Name: 'data1', Labels: { c: 'd' } });
    assert.equal(again.created, false);
    assert.deepEqual(again.volume.Labels, { a: 'b' });
    assert.deepEqual(r.events, ['create data1 {"driver":"local"}', 'create data1 {"driver":"local"}']);

    assert.equal((await r.store.create({ Name: 'data1' })).volume.Driver, 'local', 'no driver asked: the existing one');
    await assert.rejects(r.store.create({ Name: 'data1', Driver: 'other' }), { code: 'BERTH_VOLUME_IN_USE', message: "create data1: driver 'local' already has volume 'data1': volume name must be unique" });
    const anon = (await r.store.create({}, { anonymous: true })).volume;
    assert.match(anon.Name, /^[0-9a-f]{64}$/);
    assert.deepEqual(anon.Labels, { [ANONYMOUS_LABEL]: '' });
    const reloaded = rig(r.root);
    assert.deepEqual(reloaded.store.get('data1'), volume);
    assert.deepEqual(reloaded.store.list(new Map()).map((v) => v.Name).sort(), [anon.Name, 'data1'].sort());
    assert.ok(JSON.parse(readFileSync(join(r.root, 'volumes', 'data1', 'volume.json'), 'utf8')).Labels.a === 'b');
  } finally {
    r.done();
  }
});

test('load: a directory with _data but no metadata is a volume; one without either is a leftover and goes', async () => {
  const r = rig();
  try {
    mkdirSync(join(r.root, 'volumes', 'byhand', '_data'), { recursive: true });
    mkdirSync(join(r.root, 'volumes', 'halfmade'), { recursive: true });
    const again = rig(r.root);
    assert.equal(again.store.get('byhand').Driver, 'local');
    assert.ok(!existsSync(join(r.root, 'volumes', 'halfmade')));
  } finally {
    r.done();
  }
});

test('create: Docker texts for bad names, unknown options and drivers', async () => {
  const r = rig();
  try {
    await assert.rejects(r.store.create({ Name: 'a' }), { code: 'BERTH_INVALID_ARGUMENT', message: 'create a: volume name is too short, names should be at least two alphanumeric characters' });
    await assert.rejects(r.store.create({ Name: 'a!b' }), {
      code: 'BERTH_INVALID_ARGUMENT',
      message: 'create a!b: "a!b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path',
    });
    await assert.rejects(r.store.create({ Name: '/abs' }), /includes invalid characters/);
    await assert.rejects(r.store.create({ Name: 'okname', DriverOpts: { foo: 'bar' } }), { code: 'BERTH_INVALID_ARGUMENT', message: 'create okname: invalid option: "foo"' });
    await assert.rejects(r.store.create({ Name: 'okname', Driver: 'nope' }), { code: 'BERTH_PLUGIN_NOT_FOUND', message: 'create okname: error looking up volume plugin nope: plugin "nope" not found' });
    assert.equal(r.store.list(new Map()).length, 0);
    assert.deepEqual(r.events, []);
  } finally {
    r.done();
  }
});

test('remove: 404 text, force on a missing one, in use 409 even with force, destroy event', async () => {
  const r = rig();
  try {
    await r.store.create({ Name: 'v1' });
    await assert.rejects(r.store.remove('nope'), { code: 'BERTH_VOLUME_NOT_FOUND', message: 'get nope: no such volume' });
    await r.store.remove('nope', { force: true });
    r.refs.set('v1', ['c1', 'c2']);
    for (const force of [false, true]) await assert.rejects(r.store.remove('v1', { force }), { code: 'BERTH_VOLUME_IN_USE', message: 'remove v1: volume is in use - [c1, c2]' });
    r.refs.delete('v1');
    await r.store.remove('v1');
    assert.ok(!existsSync(join(r.root, 'volumes', 'v1')));
    assert.equal(r.events.at(-1), 'destroy v1 {"driver":"local"}');
    assert.throws(() => r.store.get('v1'), { code: 'BERTH_VOLUME_NOT_FOUND' });
  } finally {
    r.done();
  }
});

test('list filters: dangling, driver, label, name; unknown filter 400', async () => {
  const r = rig();
  try {
    await r.store.create({ Name: 'alpha', Labels: { tier: 'db' } });
    await r.store.create({ Name: 'beta' });
    r.refs.set('beta', ['c1']);
    const names = (f: Record<string, string[]>): string[] => r.store.list(new Map(Object.entries(f).map(([k, v]) => [k, new Set(v)]))).map((v) => v.Name);
    assert.deepEqual(names({}), ['alpha', 'beta']);
    assert.deepEqual(names({ dangling: ['true'] }), ['alpha']);
    assert.deepEqual(names({ dangling: ['0'] }), ['beta']);
    assert.deepEqual(names({ label: ['tier=db'] }), ['alpha']);
    assert.deepEqual(names({ label: ['tier'] }), ['alpha']);
    assert.deepEqual(names({ name: ['bet'] }), ['beta']);
    assert.deepEqual(names({ driver: ['local'] }), ['alpha', 'beta']);
    assert.deepEqual(names({ driver: ['other'] }), []);
    assert.throws(() => names({ bogus: ['x'] }), { code: 'BERTH_INVALID_ARGUMENT' });
    assert.throws(() => names({ dangling: ['maybe'] }), { code: 'BERTH_INVALID_ARGUMENT' });
  } finally {
    r.done();
  }
});

test('prune: API 1.42+ only anonymous unless all=true, older all unused; label filters; space reclaimed', async () => {
  const r = rig();
  try {
    const anon = (await r.store.create({}, { anonymous: true })).volume.Name;
    const anonUsed = (await r.store.create({}, { anonymous: true })).volume.Name;
    r.refs.set(anonUsed, ['c1']);
    await r.store.create({ Name: 'named1', Labels: { keep: 'yes' } });
    await r.store.create({ Name: 'named2' });
    writeFileSync(join(r.store.pathOf(anon), 'f'), Buffer.alloc(1000));
    const f = (o: Record<string, string[]>) => new Map(Object.entries(o).map(([k, v]) => [k, new Set(v)]));
    assert.deepEqual(await r.store.prune(f({}), '1.43'), { VolumesDeleted: [anon], SpaceReclaimed: 1000 });
    assert.equal(r.events.at(-1), 'prune  {"reclaimed":"1000"}');
    assert.deepEqual(await r.store.prune(f({ all: ['true'], 'label!': ['keep=yes'] }), '1.43'), { VolumesDeleted: ['named2'], SpaceReclaimed: 0 });
    await assert.rejects(r.store.prune(f({ all: ['true'] }), '1.41'), { code: 'BERTH_INVALID_ARGUMENT' });
    assert.deepEqual(await r.store.prune(f({ label: ['keep'] }), '1.41'), { VolumesDeleted: ['named1'], SpaceReclaimed: 0 });
    assert.deepEqual(r.store.list(new Map()).map((v) => v.Name), [anonUsed]);
  } finally {
    r.done();
  }
});

test('local driver options: mounted at the first user, unmounted after the last; plain volumes need no mount', async () => {
  const r = rig();
  try {
    await r.store.create({ Name: 'tmp1', DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=10m,noexec,uid=5' } });
    await r.store.create({ Name: 'plain' });
    const p = await r.store.mount('tmp1', 'c1');
    await r.store.mount('tmp1', 'c2');
    await r.store.mount('plain', 'c1');
    assert.deepEqual(r.calls, [`mount tmpfs ${p} tmpfs 0x8 size=10m,uid=5`]);
    r.store.unmount('tmp1', 'c1');
    assert.equal(r.calls.length, 1);
    r.store.unmount('tmp1', 'c2');
    r.store.unmount('plain', 'c1');
    assert.deepEqual(r.calls.slice(1), [`umount ${p} 2`]);
    assert.deepEqual(parseMountOptions('bind,ro'), { flags: 0x1001, data: '' });
    assert.deepEqual(parseMountOptions('addr=1.2.3.4,rw,nfsvers=4'), { flags: 0, data: 'addr=1.2.3.4,nfsvers=4' });
  } finally {
    r.done();
  }
});

test('volume specs: -v name:/dst[:mode], -v /dst, --volumes-from, --mount type=volume checked with Docker texts', () => {
  assert.equal(isVolumeBind('/host:/dst'), false);
  assert.equal(isVolumeBind('name:/dst'), true);
  assert.equal(isVolumeBind('/dst'), true);
  assert.deepEqual(parseVolumeBind('data:/x', 'f'), { name: 'data', destination: '/x', readonly: false, nocopy: false, mode: 'z' });
  assert.deepEqual(parseVolumeBind('data:/x/:ro,nocopy', 'f'), { name: 'data', destination: '/x', readonly: true, nocopy: true, mode: 'ro,nocopy' });
  assert.deepEqual(parseVolumeBind('/anon', 'f'), { name: '', destination: '/anon', readonly: false, nocopy: false, mode: '' });
  assert.throws(() => parseVolumeBind('x!y:/data', 'HostConfig.Binds[0]'), { code: 'BERTH_INVALID_ARGUMENT', message: /^create x!y: "x!y" includes invalid characters/ });
  assert.throws(() => parseVolumeBind('data:/x:bogus', 'f'), { message: 'invalid mode: bogus' });
  assert.throws(() => parseVolumeBind('data:rel', 'f'), { message: /mount path must be absolute/ });
  assert.deepEqual(parseVolumesFrom('c1:ro', 'f'), { container: 'c1', mode: 'ro' });
  assert.throws(() => parseVolumesFrom('c1:zz', 'f'), { message: 'invalid mode: zz' });
  assert.throws(() => normaliseHostConfig({ Binds: ['bad/x:/m'] }), (e: Error & { details?: { field?: string } }) => e.details?.field === 'HostConfig.Binds[0]' && /^create bad\/x: /.test(e.message));
  assert.throws(() => normaliseHostConfig({ Mounts: [{ Type: 'volume', Source: '/abs', Target: '/m' }] } as never), { message: /^create \/abs: "\/abs" includes invalid characters/ });
  assert.throws(() => normaliseHostConfig({ Mounts: [{ Type: 'volume', Target: '/m', BindOptions: { Propagation: 'shared' } }] } as never), {
    message: 'invalid mount config for type "volume": field BindOptions must not be specified',
  });
  assert.throws(() => normaliseHostConfig({ Mounts: [{ Type: 'bind', Source: '/tmp', Target: '/m', VolumeOptions: { NoCopy: true } }] } as never), { message: /field VolumeOptions must not be specified/ });
  assert.throws(() => normaliseHostConfig({ Mounts: [{ Type: 'volume', Target: 'rel' }] } as never), { message: /mount path must be absolute/ });
  normaliseHostConfig({ Binds: ['data:/x:ro', '/anon'], Mounts: [{ Type: 'volume', Target: '/m', VolumeOptions: { NoCopy: true, DriverConfig: { Name: 'local', Options: { type: 'tmpfs' } } } }], VolumesFrom: ['other:rw'] } as never);
});

test('plugins: ls lists the volumes a plugin has and the store does not, a failing List is a warning; inspect, create by name and rm find them', async () => {
  const r = rig();
  const dir = join(r.root, 'plugins');
  mkdirSync(dir);
  const have = new Map<string, string>([['elsewhere', join(r.root, 'elsewhere')]]);
  const volumeDriver = (name: string, failList: boolean, have: Map<string, string>): VolumeDriver => ({
    name,
    create: async (req) => void have.set(req.Name, join(r.root, req.Name)),
    remove: async (req) => void have.delete(req.Name),
    mount: async (req) => ({ Mountpoint: have.get(req.Name)! }),
    unmount: async () => undefined,
    path: async (req) => ({ Mountpoint: have.get(req.Name)! }),
    get: async (req) => {
      if (!have.has(req.Name)) throw new Error('no such volume');
      return { Volume: { Name: req.Name, Mountpoint: have.get(req.Name)!, Status: { seen: true } } };
    },
    list: async () => {
      if (failList) throw new Error('backend down');
      return { Volumes: [...have].map(([Name, Mountpoint]) => ({ Name, Mountpoint })) };
    },
    capabilities: async () => ({ Capabilities: { Scope: 'local' } }),
  });
  const servers = [await serveVolumePlugin(volumeDriver('good', false, have), { name: 'good', dirs: [dir] }), await serveVolumePlugin(volumeDriver('bad', true, new Map()), { name: 'bad', dirs: [dir] })];
  const registry = new PluginRegistry({ socketDirs: [dir], specDirs: [], retry: { timeoutMs: 1000 } });
  const store = new VolumeStore({
    root: join(r.root, 'volumes'), logger: silentLogger(), refs: () => [], emit: (a, id) => void r.events.push(`${a} ${id}`), mounter: () => ({ mount: () => undefined, umount2: () => undefined }),
    plugin: (name) => registry.volume(name),
    plugins: async () => Promise.all((await registry.all('VolumeDriver')).map((a) => registry.volume(a.spec.name))),
  });
  store.load();
  try {
    await store.create({ Name: 'mine' });
    const listed = await store.listAll(new Map());
    assert.deepEqual(
      listed.Volumes.map((v) => [v.Name, v.Driver, v.Mountpoint, v.CreatedAt, v.Labels, v.Options]),
      [['mine', 'local', join(r.root, 'volumes', 'mine', '_data'), listed.Volumes[0]!.CreatedAt, null, null], ['elsewhere', 'good', join(r.root, 'elsewhere'), '0001-01-01T00:00:00Z', null, null]],
    );
    assert.equal(listed.Warnings.length, 1);
    assert.match(listed.Warnings[0]!, /^list bad: .*VolumeDriver\.List: backend down/);
    assert.deepEqual((await store.listAll(new Map([['driver', new Set(['local'])]]))).Volumes.map((v) => v.Name), ['mine']);
    assert.deepEqual(store.list(new Map()).map((v) => v.Name), ['mine'], 'prune and df count the store\'s only');

    const ins = await store.inspect('elsewhere');
    assert.deepEqual([ins.Driver, ins.Mountpoint, ins.Status], ['good', join(r.root, 'elsewhere'), { seen: true }]);
    await assert.rejects(store.inspect('nowhere'), { code: 'BERTH_VOLUME_NOT_FOUND', message: 'get nowhere: no such volume' });

    // `-v elsewhere:/x`: the plugin's volume, recorded, not a new local one (and not removable by a failed create).
    const byName = await store.create({ Name: 'elsewhere' });
    assert.deepEqual([byName.created, byName.volume.Driver], [false, 'good']);
    assert.equal(existsSync(join(r.root, 'volumes', 'elsewhere', '_data')), false);
    assert.equal(await store.mount('elsewhere', 'c1'), join(r.root, 'elsewhere'));
    store.unmount('elsewhere', 'c1');

    have.set('other', join(r.root, 'other'));
    await store.remove('other');
    assert.equal(have.has('other'), false, 'rm of a volume only the plugin knew goes through the plugin');
    await store.remove('elsewhere');
    assert.deepEqual([...have.keys()], []);
  } finally {
    registry.close();
    for (const s of servers) await s.close();
    r.done();
  }
});
