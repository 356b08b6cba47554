/**
 * The container's process: who it is, what it sees of other processes, its environment,
 * exit statuses and signals. Each case runs under every runtime in BERTH_CONFORMANCE_RUNTIMES.
 */
import { openSync, closeSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import {
  describeRun,
  parseProbeOutput,
  runRuntime,
  startRuntime,
  type ProbeSignalReport,
} from '@berth/test-support';
import { assertExit, conformanceCase, describeRuntimes, MARKER } from '../../src/index.js';

describeRuntimes();

conformanceCase('PID 1 is the process and only its processes are visible', {
  spec: (s) => {
    s.process.args = ['/probe'];
  },
  observe: (r) => {
    assertExit(r, 0);
    const rep = parseProbeOutput(r.stdout);
    return { pid: rep.pid, ppid: rep.ppid, processes: rep.processes.map((p) => ({ pid: p.pid, ppid: p.ppid, comm: p.comm, cmdline: p.cmdline })) };
  },
  expect: (o) => {
    assert.equal(o.pid, 1);
    assert.equal(o.ppid, 0);
    assert.deepEqual(o.processes, [{ pid: 1, ppid: 0, comm: 'probe', cmdline: ['/probe'] }]);
  },
});

conformanceCase('ps under a shell shows the shell as PID 1 and its child, nothing of the host', {
  spec: (s) => {
    // `; true` keeps busybox sh from exec'ing the probe in its place.
    s.process.args = ['/bin/sh', '-c', '/probe; true'];
  },
  observe: (r) => {
    assertExit(r, 0);
    const rep = parseProbeOutput(r.stdout);
    return { pid: rep.pid, ppid: rep.ppid, processes: rep.processes.map((p) => [p.pid, p.ppid, p.comm] as const) };
  },
  expect: (o) => {
    assert.equal(o.ppid, 1);
    assert.deepEqual(o.processes, [
      [1, 0, 'sh'],
      [o.pid, 1, 'probe'],
    ]);
  },
  // The child's pid number is not part of the contract: runc's init forks helpers inside the
  // new pid namespace before the shell runs (the probe came out as pid 6), crun does not (pid 2).
  compare: (o) => o.processes.map(([pid, ppid, comm]) => [pid === 1 ? 1 : 'child', ppid, comm]),
});

conformanceCase('hostname is the spec\'s', {
  spec: (s) => {
    s.hostname = 'berth-conformance';
  },
  observe: (r) => {
    assertExit(r, 0);
    return parseProbeOutput(r.stdout).hostname;
  },
  expect: (h) => assert.equal(h, 'berth-conformance'),
});

conformanceCase('user 1000:1000 with additionalGids, in its home directory', {
  spec: (s) => {
    s.process.user = { uid: 1000, gid: 1000, additionalGids: [10, 65534] };
    s.process.cwd = '/home/user';
  },
  observe: (r) => {
    assertExit(r, 0);
    const rep = parseProbeOutput(r.stdout);
    return { uid: rep.uid, euid: rep.euid, gid: rep.gid, egid: rep.egid, groups: rep.groups, cwd: rep.cwd, status: rep.status };
  },
  expect: (o) => {
    assert.deepEqual([o.uid, o.euid, o.gid, o.egid], [1000, 1000, 1000, 1000]);
    assert.deepEqual([...o.groups].sort((a, b) => a - b), [10, 65534]);
    assert.equal(o.cwd, '/home/user');
    // A non-root user keeps no effective or permitted capabilities (ambient ones need inheritable).
    assert.equal(o.status.CapEff, '0000000000000000');
    assert.equal(o.status.CapPrm, '0000000000000000');
  },
});

conformanceCase('root user: uid/gid 0, no supplementary groups, cwd from the spec', {
  spec: (s) => {
    s.process.cwd = '/tmp';
  },
  observe: (r) => {
    assertExit(r, 0);
    const rep = parseProbeOutput(r.stdout);
    return { ids: [rep.uid, rep.euid, rep.gid, rep.egid], groups: rep.groups, cwd: rep.cwd, umask: rep.umask };
  },
  expect: (o) => {
    assert.deepEqual(o.ids, [0, 0, 0, 0]);
    assert.deepEqual(o.groups, []);
    assert.equal(o.cwd, '/tmp');
    assert.equal(o.umask, '0022');
  },
});

const SPEC_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm', 'FOO=bar', 'EMPTY=', 'WITH_EQUALS=a=b=c', 'SPACES=a b  c'];

conformanceCase('env is the spec\'s, in order', {
  spec: (s) => {
    s.process.env = [...SPEC_ENV, MARKER];
  },
  observe: (r) => {
    assertExit(r, 0);
    return parseProbeOutput(r.stdout).env;
  },
  expect: (env) => {
    const expected = [...SPEC_ENV, MARKER];
    // Runtimes may add HOME (from /etc/passwd) when the spec has none; nothing else.
    assert.deepEqual(env.filter((e) => !e.startsWith('HOME=')), expected);
    const home = env.filter((e) => e.startsWith('HOME='));
    assert.ok(home.length === 0 || (home.length === 1 && home[0] === 'HOME=/root'), `HOME: ${home.join(', ')}`);
  },
});

for (const code of [0, 3, 255]) {
  conformanceCase(`exit status ${code} is the runtime's exit status`, {
    spec: (s) => {
      s.process.args = ['/probe', 'exit', String(code)];
    },
    observe: (r) => ({ code: r.code, stdout: r.stdout }),
    expect: (o) => assert.deepEqual(o, { code, stdout: '' }),
  });
}

conformanceCase('a command the shell cannot find exits 127', {
  spec: (s) => {
    s.process.args = ['/bin/sh', '-c', 'no-such-command-here'];
  },
  observe: (r) => ({ code: r.code, stderr: r.stderr }),
  expect: (o) => {
    assert.equal(o.code, 127);
    assert.match(o.stderr, /no-such-command-here: not found/);
  },
});

conformanceCase('a missing executable fails the run, naming it', {
  spec: (s) => {
    s.process.args = ['/no/such/binary'];
  },
  observe: (r) => ({ failed: r.code !== 0 }),
  expect: (o, _ctx, r) => {
    assert.ok(o.failed, describeRun(r));
    assert.match(r.stderr, /\/no\/such\/binary/);
  },
});

conformanceCase('kill TERM reaches a sleeping PID 1 that handles it: status 143', {
  spec: (s) => {
    s.process.args = ['/probe', 'signal'];
  },
  run: async (ctx) => {
    const running = startRuntime(ctx.rt, ['run', '--bundle', ctx.bundle.dir, ctx.id]);
    await running.waitForStderr(/probe: ready/);
    // runc may still be saving its state when the probe already runs ("container does not
    // exist"): retry a refused kill for up to 3 s (a loaded 2-core CI machine needs more than 0.5 s).
    let k = await runRuntime(ctx.rt, ['kill', ctx.id, 'TERM']);
    for (const deadline = Date.now() + 3000; k.code !== 0 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 25));
      k = await runRuntime(ctx.rt, ['kill', ctx.id, 'TERM']);
    }
    assertExit(k, 0);
    return running.result;
  },
  observe: (r) => {
    const rep = parseProbeOutput<ProbeSignalReport>(r.stdout, 'signal');
    return { code: r.code, signal: rep.signal, name: rep.name, pid: rep.pid };
  },
  expect: (o) => assert.deepEqual(o, { code: 143, signal: 15, name: 'SIGTERM', pid: 1 }),
});

conformanceCase('lifecycle: create, state, start, kill KILL, state, delete', {
  spec: (s) => {
    s.process.args = ['/probe', 'sleep'];
  },
  run: async (ctx) => {
    const { rt, id, bundle } = ctx;
    const steps: Record<string, unknown> = {};
    const c = await runRuntime(rt, ['create', '--bundle', bundle.dir, id], { until: 'exit' });
    assertExit(c, 0);
    const state = async () => {
      const s = await runRuntime(rt, ['state', id]);
      assertExit(s, 0);
      return JSON.parse(s.stdout) as { id: string; status: string; pid: number; bundle: string; ociVersion: string };
    };
    const created = await state();
    steps.created = { id: created.id, status: created.status, bundle: created.bundle, hasPid: created.pid > 0 };
    assertExit(await runRuntime(rt, ['start', id]), 0);
    const running = await state();
    steps.running = { status: running.status, samePid: running.pid === created.pid };
    assertExit(await runRuntime(rt, ['kill', id, 'KILL']), 0);
    let stopped = await state();
    for (let i = 0; i < 50 && stopped.status !== 'stopped'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      stopped = await state();
    }
    steps.stopped = { status: stopped.status };
    assertExit(await runRuntime(rt, ['delete', id]), 0);
    const gone = await runRuntime(rt, ['state', id]);
    steps.afterDelete = { failed: gone.code !== 0 };
    return { ...c, stdout: JSON.stringify(steps) };
  },
  observe: (r) => JSON.parse(r.stdout) as { created: { id: string; bundle: string } },
  // The id and bundle path are per runtime by construction; the expectation checks them.
  compare: (o) => ({ ...o, created: { ...o.created, id: '<id>', bundle: '<bundle>' } }),
  expect: (o, ctx) =>
    assert.deepEqual(o, {
      created: { id: ctx.id, status: 'created', bundle: ctx.bundle.dir, hasPid: true },
      running: { status: 'running', samePid: true },
      stopped: { status: 'stopped' },
      afterDelete: { failed: true },
    }),
});

conformanceCase('no host fd reaches the container; stdio are the runtime\'s pipes', {
  run: async (ctx) => {
    // fd 3 of the runtime: a host file opened without O_CLOEXEC by the spawn.
    const secret = path.join(path.dirname(ctx.bundle.dir), 'host-secret');
    writeFileSync(secret, 'secret');
    const fd = openSync(secret, 'r');
    try {
      return await runRuntime(ctx.rt, ['run', '--bundle', ctx.bundle.dir, ctx.id], { extraFds: [fd] });
    } finally {
      closeSync(fd);
    }
  },
  observe: (r) => {
    assertExit(r, 0);
    const rep = parseProbeOutput(r.stdout);
    // A stream either way: runc (foreground, no terminal) copies through pipes of its own, crun
    // hands the caller's descriptors through, and node's spawn makes those socketpairs.
    const stream = (k: string) => (k === 'pipe' || k === 'socket' ? 'stream' : k);
    return { stdio: rep.stdio.map(stream), fds: rep.fds.map((f) => ({ fd: f.fd, kind: stream(f.kind) })) };
  },
  expect: (o) =>
    assert.deepEqual(o, {
      stdio: ['stream', 'stream', 'stream'],
      fds: [
        { fd: 0, kind: 'stream' },
        { fd: 1, kind: 'stream' },
        { fd: 2, kind: 'stream' },
      ],
    }),
});
