import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Demuxer, frame, StreamType } from '@berth/api/wire';
import { parseArgs } from '../cli/args.js';
import { EscapeProxy, parseDetachKeys } from '../session.js';
import { toApiTimestamp } from './logs.js';
import { formatEvent } from './misc.js';
import { containerRow, displayPorts } from './ps.js';
import { buildCreateBody, commands as runCommands, parseBytes, parsePorts, securityOpt, splitReference, startErrorStatus } from './run.js';

test('run flags become docker\'s create body', () => {
  const spec = runCommands.run!.spec;
  const p = parseArgs(spec, [
    '-e', 'A=1', '-l', 'k=v', '-p', '127.0.0.1:8080:80/tcp', '-v', '/h:/c:ro', '-v', '/anon', '--tmpfs', '/t:size=1m',
    '-m', '256m', '--cpus', '1.5', '--ulimit', 'nofile=1024:2048', '--restart', 'on-failure:3', '--rm', '--init',
    '--cap-add', 'NET_ADMIN', '--network', 'host', '--stop-timeout', '5', '--entrypoint', '', 'busybox', 'sh', '-c', 'x',
  ]);
  const b = buildCreateBody(p, false);
  assert.equal(b.Image, 'busybox');
  assert.deepEqual(b.Cmd, ['sh', '-c', 'x']);
  assert.deepEqual(b.Entrypoint, ['']);
  assert.deepEqual(b.Env, ['A=1']);
  assert.deepEqual(b.Labels, { k: 'v' });
  assert.deepEqual(b.ExposedPorts, { '80/tcp': {} });
  assert.deepEqual(b.Volumes, { '/anon': {} });
  assert.equal(b.AttachStdout, true);
  assert.equal(b.AttachStdin, false);
  assert.equal(b.StopTimeout, 5);
  const h = b.HostConfig!;
  assert.deepEqual(h.PortBindings, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] });
  assert.deepEqual(h.Binds, ['/h:/c:ro']);
  assert.deepEqual(h.Tmpfs, { '/t': 'size=1m' });
  assert.equal(h.Memory, 256 * 1024 * 1024);
  assert.equal(h.NanoCpus, 1_500_000_000);
  assert.deepEqual(h.Ulimits, [{ Name: 'nofile', Soft: 1024, Hard: 2048 }]);
  assert.deepEqual(h.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.equal(h.AutoRemove, true);
  assert.equal(h.Init, true);
  assert.equal(h.NetworkMode, 'host');
  assert.deepEqual(Object.keys(b.NetworkingConfig!.EndpointsConfig!), ['host']);
  const d = buildCreateBody(parseArgs(spec, ['-d', '-it', 'img']), true);
  assert.equal(d.AttachStdout, false);
  assert.equal(d.OpenStdin, true);
  assert.equal(d.StdinOnce, false);
});

test('ports, bytes, references, start error statuses', () => {
  assert.deepEqual(parsePorts(['8000-8001:80-81', '53/udp']).bindings, {
    '80/tcp': [{ HostIp: '', HostPort: '8000' }],
    '81/tcp': [{ HostIp: '', HostPort: '8001' }],
    '53/udp': [{ HostIp: '', HostPort: '' }],
  });
  assert.equal(parseBytes('1g'), 1024 ** 3);
  assert.equal(parseBytes('100'), 100);
  assert.deepEqual(splitReference('localhost:5000/x'), { name: 'localhost:5000/x', tag: 'latest' });
  assert.deepEqual(splitReference('busybox:1.36'), { name: 'busybox', tag: '1.36' });
  assert.equal(startErrorStatus('exec: "x": executable file not found in $PATH'), 127);
  assert.equal(startErrorStatus('exec: "/etc": permission denied'), 126);
  assert.equal(startErrorStatus('boom'), 125);
});

test('ps rows: docker placeholders', () => {
  const row = containerRow(
    {
      Id: 'a'.repeat(64), Names: ['/web', '/other/link'], Image: 'busybox', ImageID: 'sha256:x', Command: "sh -c 'echo one; echo two'",
      Created: 1000, Ports: [{ IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }],
      Labels: { a: 'b' }, State: 'running', Status: 'Up 2 minutes', HostConfig: { NetworkMode: 'bridge' },
      NetworkSettings: { Networks: { bridge: {} as never } }, Mounts: [],
    },
    true,
    1000 * 1000 + 120_000,
  );
  assert.equal(row.ID, 'aaaaaaaaaaaa');
  assert.equal(row.Names, 'web');
  assert.equal(row.Command, `"sh -c 'echo one; ec…"`);
  assert.equal(row.Ports, '0.0.0.0:8080->80/tcp, [::]:8080->80/tcp');
  assert.equal(row.RunningFor, '2 minutes ago');
  assert.equal(row.Networks, 'bridge');
  assert.equal((row.Label as (k: string) => string)('a'), 'b');
  assert.equal(displayPorts([{ PrivatePort: 80, Type: 'tcp' }, { PrivatePort: 81, Type: 'tcp' }]), '80-81/tcp');
});

test('detach keys and the escape proxy', () => {
  assert.deepEqual(parseDetachKeys('ctrl-p,ctrl-q'), [16, 17]);
  assert.deepEqual(parseDetachKeys('a,ctrl-@'), [97, 0]);
  let detached = false;
  const proxy = new EscapeProxy([16, 17], () => (detached = true));
  assert.deepEqual([...proxy.feed(Buffer.from([1, 16]))], [1]);
  assert.deepEqual([...proxy.feed(Buffer.from([2]))], [16, 2], 'a broken sequence is forwarded');
  proxy.feed(Buffer.from([16]));
  proxy.feed(Buffer.from([17]));
  assert.equal(detached, true);
});

test('timestamps for --since/--until and the event line', () => {
  assert.equal(toApiTimestamp('1700000000'), '1700000000');
  assert.equal(toApiTimestamp('10m', 1_700_000_600_000), '1700000000.000000000');
  assert.equal(toApiTimestamp('2024-01-02T03:04:05.5Z'), '1704164645.500000000');
  const line = '{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"x","image":"busybox"}},"time":1700000000,"timeNano":1700000000123456789}';
  const s = formatEvent(line, JSON.parse(line));
  assert.match(s, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.123456789(Z|[+-]\d{2}:\d{2}) container start abc \(image=busybox, name=x\)$/);
});

test('the demuxer framing the session relies on', () => {
  const chunks = Buffer.concat([frame(StreamType.Stdout, 'out'), frame(StreamType.Stderr, 'err')]);
  const seen: string[] = [];
  // feed one byte at a time: frames must survive any chunking
  const d = new Demuxer((t, p) => seen.push(`${t}:${p.toString()}`));
  for (const byte of chunks) d.push(Buffer.from([byte]));
  assert.deepEqual(seen, ['1:out', '2:err']);
});

test('--security-opt seccomp=<file> sends the profile itself, compacted, as the docker CLI does', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-seccomp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'p.json'), '{\n  "defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": []\n}\n');
  writeFileSync(join(dir, 'bad.json'), '{ nope');
  assert.equal(securityOpt(`seccomp=${join(dir, 'p.json')}`), 'seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}');
  for (const kept of ['seccomp=unconfined', 'seccomp=builtin', 'no-new-privileges', 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']) assert.equal(securityOpt(kept), kept);
  assert.throws(() => securityOpt('seccomp=/no/such/profile.json'), (err: Error & { code?: number }) => err.code === 125 && err.message === 'opening seccomp profile (/no/such/profile.json) failed: open /no/such/profile.json: no such file or directory');
  assert.throws(() => securityOpt(`seccomp=${join(dir, 'bad.json')}`), /^CliError: compacting json for seccomp profile/);
});
