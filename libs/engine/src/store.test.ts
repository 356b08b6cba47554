import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerStore, hostConfigProblem, recordProblem, type ContainerRecord } from './store.js';
import { newId } from './names.js';
import { ZERO_TIME } from './time.js';

const root = mkdtempSync(join(tmpdir(), 'berth-store-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

function record(id: string, state: Partial<ContainerRecord['State']> = {}, extra: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    Id: id, Created: ZERO_TIME, Path: 'sh', Args: [], Config: { Image: 'busybox' } as ContainerRecord['Config'], Image: 'sha256:00', Name: `/n${id.slice(0, 6)}`,
    RestartCount: 0, Driver: 'overlay2', Platform: 'linux',
    State: { Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME, ...state },
    ResolvConfPath: '', HostnamePath: '', HostsPath: '', LogPath: '', MountPoints: [], HasBeenStartedBefore: false, HasBeenManuallyStopped: false,
    ...extra,
  };
}

const host = { RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, NetworkMode: 'bridge' } as never;

test('loadAll: usable records, half-made creates and unusable records are told apart', () => {
  const store = new ContainerStore(join(root, 'a'));
  const dir = (id: string): string => store.dir(id);
  const cfg = (id: string): string => join(dir(id), 'config.v2.json');
  const hostPath = (id: string): string => join(dir(id), 'hostconfig.json');
  const make = (files: Record<string, string>): string => {
    const id = newId();
    mkdirSync(dir(id), { recursive: true });
    for (const [f, text] of Object.entries(files)) writeFileSync(join(dir(id), f), text);
    return id;
  };

  const good = newId();
  store.save(record(good, { Status: 'running', Running: true, Pid: 42 }), host);
  // Half-made: the host files (one still as its temp file), no record.
  const noRecord = make({ hostname: 'x\n', hosts: '', 'resolv.conf.tmp-123-9f': '' });
  const emptyDir = make({});
  // Half-made: the record renamed into place, the HostConfig not (its temp file may be there).
  const noHost = newId();
  store.save(record(noHost));
  writeFileSync(join(dir(noHost), 'hostconfig.json.tmp-7-ab'), '{');
  // Not half-made: a record of a container that ran has lost its HostConfig.
  const ranNoHost = newId();
  store.save(record(ranNoHost, { Status: 'exited' }, { HasBeenStartedBefore: true }));
  // Not half-made: no record, but a log (it ran).
  const noRecordLog = make({ hostname: '', [`${'f'.repeat(64)}-json.log`]: '{}\n' });
  const torn = newId();
  store.save(record(torn, { Status: 'running', Running: true, Pid: 7 }), host);
  writeFileSync(cfg(torn), '{"Id":"');
  const noState = newId();
  const { State: _dropped, ...withoutState } = record(noState);
  store.save(withoutState as ContainerRecord, host);
  const wrongId = make({ 'hostconfig.json': JSON.stringify(host) });
  writeFileSync(cfg(wrongId), JSON.stringify({ ...record(wrongId), Id: 'f'.repeat(64) }));
  const tornHost = newId();
  store.save(record(tornHost, { Status: 'exited' }, { HasBeenStartedBefore: true }), host);
  writeFileSync(hostPath(tornHost), '');
  const pidText = newId();
  store.save(record(pidText), host);
  writeFileSync(cfg(pidText), JSON.stringify({ ...record(pidText), State: { ...record(pidText).State, Pid: '12' } }));
  mkdirSync(join(store.root, 'not-a-container'));

  const got = store.loadAll();
  assert.deepEqual(got.records.map((r) => r.rec.Id), [good]);
  assert.equal(got.records[0]!.rec.State.Pid, 42);
  assert.deepEqual(got.halfMade.sort(), [noRecord, emptyDir, noHost].sort());
  const why = new Map(got.unusable.map((u) => [u.id, u]));
  assert.deepEqual([...why.keys()].sort(), [ranNoHost, noRecordLog, torn, noState, wrongId, tornHost, pidText].sort());
  assert.equal(why.get(torn)!.path, cfg(torn));
  assert.match(why.get(torn)!.error, /not valid JSON \(7 bytes\): /);
  assert.equal(why.get(noState)!.error, 'State is missing or not an object');
  assert.match(why.get(wrongId)!.error, /not the directory's name/);
  assert.deepEqual([why.get(ranNoHost)!.path, why.get(ranNoHost)!.error], [hostPath(ranNoHost), 'no hostconfig.json']);
  assert.match(why.get(noRecordLog)!.error, /no config\.v2\.json.*-json\.log/);
  assert.equal(why.get(tornHost)!.path, hostPath(tornHost));
  assert.equal(why.get(pidText)!.error, 'State.Pid is missing or not a number');
  // loadAll only reads: everything is still there.
  for (const id of [noRecord, noHost, torn, noState, noRecordLog]) assert.ok(readdirSync(dir(id)).length > 0);
});

test('recordProblem and hostConfigProblem name the first field that cannot be used', () => {
  const id = newId();
  assert.equal(recordProblem(record(id), id), null);
  assert.equal(recordProblem([], id), 'the record is not a JSON object');
  assert.equal(recordProblem({ ...record(id), Name: 'x' }, id), 'Name does not start with /');
  assert.equal(recordProblem({ ...record(id), Config: null }, id), 'Config is missing or not an object');
  assert.equal(recordProblem({ ...record(id), Args: 'sh' }, id), 'Args is missing or not an array');
  assert.equal(recordProblem({ ...record(id), State: { ...record(id).State, Status: undefined } }, id), 'State.Status is missing or not a string');
  assert.equal(hostConfigProblem(host), null);
  assert.equal(hostConfigProblem(null), 'the HostConfig is not a JSON object');
  assert.equal(hostConfigProblem({ NetworkMode: 'bridge' }), 'RestartPolicy.Name is missing or not a string');
  assert.equal(hostConfigProblem({ RestartPolicy: { Name: '' } }), 'NetworkMode is missing or not a string');
});
