import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFilters } from '@berth/api';
import { DetachScanner, parseDetachKeys } from './detach.js';
import { matchEvent, matchLabels, matchRegexp } from './filters.js';
import { hostsFile, resolvConf } from './host-files.js';
import { generateName, newId, normaliseName } from './names.js';
import { resolveReference } from './references.js';
import { Backoff, shouldRestart } from './restart.js';
import { commandText, statusText } from './status.js';
import { humanDuration, parseRfc3339Nano, rfc3339Nano, ZERO_TIME } from './time.js';
import { parsePs } from './top.js';
import { EventBus } from './events.js';

test('ids and names', () => {
  const id = newId();
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(normaliseName('/web'), 'web');
  assert.throws(() => normaliseName('a'), /Invalid container name \(a\)/);
  assert.throws(() => normaliseName('-bad'), /Invalid container name/);
  const n = generateName(() => false);
  assert.match(n, /^[a-z]+_[a-z]+$/);
  let calls = 0;
  assert.match(generateName(() => ++calls < 12), /^[a-z]+_[a-z]+\d+$/);
});

test('reference resolution: full id, name, unique prefix, ambiguous prefix', () => {
  const items = [{ id: 'abc111', name: 'web' }, { id: 'abc222', name: 'db' }, { id: 'def333', name: 'abc' }];
  assert.equal(resolveReference('abc111', items).name, 'web');
  assert.equal(resolveReference('/db', items).id, 'abc222');
  assert.equal(resolveReference('abc', items).id, 'def333'); // a name wins over a prefix
  assert.equal(resolveReference('de', items).id, 'def333');
  assert.throws(() => resolveReference('abc1x', items), /No such container: abc1x/);
  assert.throws(() => resolveReference('ab', items), /multiple IDs found with provided prefix: ab/);
});

test('humanDuration like Go units', () => {
  const s = 1000;
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(1 * s), '1 second');
  assert.equal(humanDuration(59 * s), '59 seconds');
  assert.equal(humanDuration(60 * s), 'About a minute');
  assert.equal(humanDuration(119 * s), 'About a minute');
  assert.equal(humanDuration(2 * 60 * s), '2 minutes');
  assert.equal(humanDuration(59 * 60 * s), '59 minutes');
  assert.equal(humanDuration(60 * 60 * s), 'About an hour');
  assert.equal(humanDuration(3 * 3600 * s), '3 hours');
  assert.equal(humanDuration(3 * 86400 * s), '3 days');
  assert.equal(humanDuration(20 * 86400 * s), '2 weeks');
  assert.equal(humanDuration(90 * 86400 * s), '3 months');
  assert.equal(humanDuration(800 * 86400 * s), '2 years');
});

test('timestamps: 9 fractional digits, round trip', () => {
  const t = rfc3339Nano(1_700_000_000_123_456_789n);
  assert.equal(t, '2023-11-14T22:13:20.123456789Z');
  assert.equal(parseRfc3339Nano(t), 1_700_000_000_123_456_789n);
  assert.equal(parseRfc3339Nano('2023-11-14T22:13:20.5Z'), 1_700_000_000_500_000_000n);
  assert.equal(parseRfc3339Nano(ZERO_TIME), null);
});

test('status strings', () => {
  const now = Date.parse('2024-01-01T00:10:00Z');
  const base = { Status: 'running' as const, Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 1, ExitCode: 0, Error: '', StartedAt: '2024-01-01T00:09:55.000000001Z', FinishedAt: ZERO_TIME };
  assert.equal(statusText(base, now), 'Up 4 seconds');
  assert.equal(statusText({ ...base, Paused: true, StartedAt: '2024-01-01T00:08:00Z' }, now), 'Up 2 minutes (Paused)');
  assert.equal(statusText({ ...base, Running: false, Status: 'exited', ExitCode: 3, FinishedAt: '2024-01-01T00:09:57Z' }, now), 'Exited (3) 3 seconds ago');
  assert.equal(statusText({ ...base, Running: false, Status: 'created', StartedAt: ZERO_TIME }, now), 'Created');
  assert.equal(statusText({ ...base, Running: false, Restarting: true, ExitCode: 1, FinishedAt: '2024-01-01T00:09:59Z' }, now), 'Restarting (1) 1 second ago');
});

test('command text quotes args with spaces', () => {
  assert.equal(commandText('sh', ['-c', 'echo hi']), "sh -c 'echo hi'");
  assert.equal(commandText('top', []), 'top');
});

test('filters: regexp names, labels', () => {
  assert.ok(matchRegexp(new Set(['we']), '/web'));
  assert.ok(matchRegexp(new Set(['^/web$']), '/web'));
  assert.ok(!matchRegexp(new Set(['^db']), '/web'));
  assert.ok(matchRegexp(undefined, 'x'));
  assert.ok(matchLabels(new Set(['a', 'b=2']), { a: '1', b: '2' }));
  assert.ok(!matchLabels(new Set(['b=3']), { b: '2' }));
  const e = { Type: 'container', Action: 'exec_start: sh', Actor: { ID: 'abc123', Attributes: { name: 'web', image: 'busybox', tier: 'x' } }, scope: 'local' as const, time: 0, timeNano: 0 };
  assert.ok(matchEvent(e, parseFilters('{"event":{"exec_start":true},"container":{"web":true}}')));
  assert.ok(matchEvent(e, parseFilters('{"container":["abc"],"image":["busybox"],"label":["tier=x"]}')));
  assert.ok(!matchEvent(e, parseFilters('{"type":["image"]}')));
  assert.ok(!matchEvent(e, parseFilters('{"label":["tier=y"]}')));
});

test('detach keys: parse Docker specs and scan across chunks', () => {
  assert.deepEqual([...parseDetachKeys(undefined)], [16, 17]);
  assert.deepEqual([...parseDetachKeys('ctrl-a,x,ctrl-@,ctrl-_')], [1, 120, 0, 31]);
  assert.throws(() => parseDetachKeys('ctrl-1'), /Invalid escape keys/);
  assert.throws(() => parseDetachKeys('abc'), /Invalid escape keys/);
  const sc = new DetachScanner(parseDetachKeys(undefined));
  assert.deepEqual(sc.push(Buffer.from('ab\x10')), { forward: Buffer.from('ab'), detached: false });
  assert.deepEqual(sc.push(Buffer.from('c')), { forward: Buffer.from('\x10c'), detached: false });
  assert.deepEqual(sc.push(Buffer.from('\x10\x10')), { forward: Buffer.from('\x10'), detached: false });
  assert.deepEqual(sc.push(Buffer.from('\x11rest')), { forward: Buffer.alloc(0), detached: true });
});

test('restart policy decisions and back-off', () => {
  const f = (exitCode: number, restartCount = 0, manuallyStopped = false) => ({ exitCode, restartCount, manuallyStopped });
  assert.equal(shouldRestart({ Name: 'no', MaximumRetryCount: 0 }, f(1)), false);
  assert.equal(shouldRestart({ Name: 'always', MaximumRetryCount: 0 }, f(0)), true);
  assert.equal(shouldRestart({ Name: 'always', MaximumRetryCount: 0 }, f(0, 0, true)), false);
  assert.equal(shouldRestart({ Name: 'unless-stopped', MaximumRetryCount: 0 }, f(0)), true);
  assert.equal(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 2 }, f(0)), false);
  assert.equal(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 2 }, f(1, 1)), true);
  assert.equal(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 2 }, f(1, 2)), false);
  assert.equal(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 0 }, f(1, 99)), true);
  const b = new Backoff();
  assert.deepEqual([b.next(10), b.next(10), b.next(10), b.next(20_000), b.next(10)], [100, 200, 400, 100, 200]);
});

test('host files', () => {
  assert.match(hostsFile({ ExtraHosts: ['db:10.0.0.2'] }), /127\.0\.0\.1\tlocalhost\n[\s\S]*10\.0\.0\.2\tdb\n$/);
  const h = { Dns: [], DnsSearch: [], DnsOptions: [], NetworkMode: 'bridge' };
  assert.equal(resolvConf('nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch x\n', h), 'nameserver 10.1.1.1\nsearch x\n');
  assert.equal(resolvConf('nameserver 127.0.0.53\n', h), 'nameserver 127.0.0.53\n');
  assert.equal(resolvConf('nameserver 127.0.0.53\n', { ...h, NetworkMode: 'host' }), 'nameserver 127.0.0.53\n');
  assert.equal(resolvConf('nameserver 10.1.1.1\n', { ...h, Dns: ['1.1.1.1'], DnsSearch: ['a.b'] }), 'nameserver 1.1.1.1\nsearch a.b\n');
});

test('top: rows of the container pids, overhanging fields merged', () => {
  const out = 'UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init splash\nroot 42 1 0 10:00 ? 00:00:00 sleep 100\n';
  assert.deepEqual(parsePs(out, [42]), { Titles: ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'], Processes: [['root', '42', '1', '0', '10:00', '?', '00:00:00', 'sleep 100']] });
  assert.throws(() => parsePs('A B\n1 2\n', [1]), /Couldn't find PID/);
});

test('event bus: since replays history, until ends, filters apply', async () => {
  const bus = new EventBus(3);
  const t0 = Date.now() / 1000 - 1;
  bus.publish('container', 'create', 'a', { name: 'x' });
  bus.publish('container', 'start', 'a', { name: 'x' });
  bus.publish('image', 'tag', 'sha256:1', { name: 'b:latest' });
  const got: string[] = [];
  for await (const e of bus.subscribe({ since: t0, until: Date.now() / 1000 + 0.05, filters: parseFilters('{"type":["container"]}') }, new AbortController().signal)) got.push(e.Action);
  assert.deepEqual(got, ['create', 'start']);
  const ac = new AbortController();
  const live: string[] = [];
  const done = (async () => {
    for await (const e of bus.subscribe({ filters: new Map() }, ac.signal)) live.push(e.Action);
  })();
  await new Promise((r) => setTimeout(r, 5));
  bus.publish('container', 'die', 'a', { exitCode: '0' });
  await new Promise((r) => setTimeout(r, 5));
  ac.abort();
  await done;
  assert.deepEqual(live, ['die']);
});

test('hostsFile: --add-host NAME:host-gateway takes the host gateway address when there is one', () => {
  const h = { ExtraHosts: ['host.docker.internal:host-gateway', 'db:10.0.0.5'] };
  const text = hostsFile(h, '172.18.0.2', 'c1', '172.18.0.1');
  assert.ok(text.includes('172.18.0.1\thost.docker.internal\n'), text);
  assert.ok(text.includes('10.0.0.5\tdb\n'), text);
  assert.ok(text.endsWith('172.18.0.2\tc1\n'), text);
});
