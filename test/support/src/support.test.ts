import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffLeaks, assertNoLeaks, type LeakSnapshot } from './leaks.js';
import { parseProbeOutput } from './probe.js';
import { crunHybridWrapper, requireAvailable, resolveRuntime, selectedRuntimes } from './runtime.js';

test('BERTH_CONFORMANCE_RUNTIMES defaults to berth,runc,crun', () => {
  assert.deepEqual(selectedRuntimes({}), ['berth', 'runc', 'crun']);
  assert.deepEqual(selectedRuntimes({ BERTH_CONFORMANCE_RUNTIMES: '' }), ['berth', 'runc', 'crun']);
});

test('BERTH_CONFORMANCE_RUNTIMES selects, in order, without duplicates', () => {
  assert.deepEqual(selectedRuntimes({ BERTH_CONFORMANCE_RUNTIMES: 'runc, crun,runc' }), ['runc', 'crun']);
});

test('BERTH_CONFORMANCE_RUNTIMES rejects an unknown runtime, naming it', () => {
  assert.throws(() => selectedRuntimes({ BERTH_CONFORMANCE_RUNTIMES: 'runc,youki' }), /BERTH_CONFORMANCE_RUNTIMES: unknown runtime "youki"/);
});

test('the crun wrapper unmounts the cgroup2 mount in a private mount namespace, then execs crun with the args', () => {
  const argv = crunHybridWrapper('/usr/bin/crun', '/sys/fs/cgroup/unified');
  assert.deepEqual(argv.slice(0, 4), ['unshare', '-m', '--propagation', 'private']);
  assert.match(argv[6]!, /umount \/sys\/fs\/cgroup\/unified/);
  assert.equal(argv[7], '/usr/bin/crun');
});

const empty: LeakSnapshot = { scope: {}, mounts: [], cgroups: [], processes: [], stateEntries: [], netns: [] };

test('diffLeaks lists what appeared, by kind, and ignores what went away', () => {
  const before = { ...empty, mounts: ['/a tmpfs tmpfs /'], processes: ['10 sleep'] };
  const after = { ...empty, mounts: ['/b proc proc /'], cgroups: ['/sys/fs/cgroup/pids/x'], stateEntries: ['/tmp/s/x'], netns: ['/run/netns/n'] };
  assert.deepEqual(diffLeaks(before, after), ['mount: /b proc proc /', 'cgroup: /sys/fs/cgroup/pids/x', 'state: /tmp/s/x', 'netns: /run/netns/n']);
});

test('diffLeaks counts duplicates: a second identical mount is a leak', () => {
  const m = '/x tmpfs tmpfs /';
  assert.deepEqual(diffLeaks({ ...empty, mounts: [m] }, { ...empty, mounts: [m, m] }), [`mount: ${m}`]);
});

test('assertNoLeaks passes on equal snapshots and fails naming each leak', () => {
  assertNoLeaks(empty, { ...empty });
  assert.throws(() => assertNoLeaks(empty, { ...empty, processes: ['42 /probe sleep'] }, 'case x'), /case x: left behind:\n {2}process: 42 \/probe sleep/);
});

test('parseProbeOutput takes the probe line among other output', () => {
  const r = parseProbeOutput<{ mode: 'write'; probe: number; ok: boolean }>('noise\n{"probe":1,"mode":"write","ok":false}\n', 'write');
  assert.equal(r.ok, false);
});

test('parseProbeOutput quotes the output when the probe printed nothing', () => {
  assert.throws(() => parseProbeOutput('exec failed: no such file\n'), /no probe output in stdout: "exec failed/);
  assert.throws(() => parseProbeOutput('{"probe":1,"mode":"signal"}'), /mode signal, expected report/);
});

test('a missing berth-runtime is unavailable with "berth-runtime not built", and requiring it throws that', async () => {
  const rt = await resolveRuntime('berth', { BERTH_RUNTIME: '/nonexistent/berth-runtime' });
  assert.equal(rt.available, false);
  assert.match(rt.reason!, /^berth-runtime not built \(BERTH_RUNTIME=\/nonexistent\/berth-runtime/);
  assert.throws(() => requireAvailable(rt), /berth-runtime not built/);
});

test('BERTH_RUNTIME pins the berth-runtime binary', async () => {
  const rt = await resolveRuntime('berth', { BERTH_RUNTIME: '/bin/true', PATH: '' });
  assert.deepEqual([rt.available, rt.command], [true, ['/bin/true']]);
});
