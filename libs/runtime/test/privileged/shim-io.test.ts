/**
 * berth-shim owning a container's stdio on the real kernel: json-file log, attach with Docker's
 * framing, stdin, stdin-once, wait/status, survival of its parent, no leftovers. Root only.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ShimClient } from '../../src/index.js';
import { setup, collect, demux, readLog, until, markedProcesses, mountsUnder } from './shim-helpers.js';

const env = await setup('io');
const { rt, uniq, work } = env;
const fdList = (): string => readdirSync('/proc/self/fd').map((f) => { try { return `${f}:${readlinkSync(`/proc/self/fd/${f}`)}`; } catch { return f; } }).join(' ');
after(() => env.dispose());

async function finished(id: string, socket: string): Promise<number> {
  return ShimClient.wait(socket, rt.exitFile(id));
}

test('the json-file log: stdout and stderr lines, a partial line, a 16 KiB split, parseable times', async () => {
  const id = `log-${uniq}`;
  const io = env.io('log');
  // 20000 x's without a newline: one 16384-byte partial entry and the rest at the end.
  const b = env.bundle('log', String.raw`echo out1; echo err1 >&2; printf 'a\tb"c\\\001\n'; printf "%20000s" | tr " " x; echo; printf tail`);
  const t0 = Date.now();
  await rt.create(id, b, { io });
  await rt.start(id);
  assert.equal(await finished(id, io.socket), 0);
  const entries = readLog(io.logFile);
  const out = entries.filter((e) => e.stream === 'stdout');
  const err = entries.filter((e) => e.stream === 'stderr');
  assert.deepEqual(err.map((e) => e.log), ['err1\n']);
  assert.equal(out[0]!.log, 'out1\n');
  assert.equal(out[1]!.log, 'a\tb"c\\\u0001\n');
  assert.equal(out[2]!.log, 'x'.repeat(16384), 'a line is cut at 16 KiB');
  assert.equal(out[3]!.log, `${'x'.repeat(20000 - 16384)}\n`);
  assert.equal(out[4]!.log, 'tail', 'the partial last line is flushed at the end');
  assert.equal(out.length, 5);
  const raw = readFileSync(io.logFile, 'utf8');
  assert.match(raw, /\\u0001/, 'control characters are escaped');
  for (const e of entries) {
    assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const t = Date.parse(e.time);
    assert.ok(t >= t0 - 1000 && t <= Date.now() + 1000, e.time);
  }
  assert.equal(existsSync(io.socket), false, 'the shim removed its socket');
  await rt.delete(id);
});

test('invalid UTF-8 becomes U+FFFD; valid multibyte text passes', async () => {
  const id = `utf-${uniq}`;
  const io = env.io('utf');
  await rt.create(id, env.bundle('utf', 'printf "\\377ok \\303\\251\\n"'), { io });
  await rt.start(id);
  assert.equal(await finished(id, io.socket), 0);
  assert.deepEqual(readLog(io.logFile).map((e) => e.log), ['\ufffdok é\n']);
  await rt.delete(id);
});

test('attach before start sees all output with correct framing; two clients both get it', async () => {
  const id = `att-${uniq}`;
  const io = env.io('att');
  await rt.create(id, env.bundle('att', 'for i in 1 2 3 4 5; do echo o$i; echo e$i >&2; done; seq 1 2000'), { io });
  const a = await ShimClient.attach(io.socket, { stdin: false, stdout: true, stderr: true });
  const onlyErr = await ShimClient.attach(io.socket, { stdin: false, stdout: false, stderr: true });
  const ga = collect(a);
  const gb = collect(onlyErr);
  await rt.start(id);
  const fa = demux(await ga);
  const fb = demux(await gb);
  const seq = Array.from({ length: 2000 }, (_, i) => `${i + 1}\n`).join('');
  assert.equal(fa.stdout, 'o1\no2\no3\no4\no5\n' + seq);
  assert.equal(fa.stderr, 'e1\ne2\ne3\ne4\ne5\n');
  assert.equal(fb.stdout, '');
  assert.equal(fb.stderr, 'e1\ne2\ne3\ne4\ne5\n');
  assert.equal(await finished(id, io.socket), 0);
  await rt.delete(id);
});

test('stdin round trip through cat, and close-stdin ends it', async () => {
  const id = `cat-${uniq}`;
  const io = env.io('cat', { stdin: true });
  await rt.create(id, env.bundle('cat', ['cat']), { io });
  await rt.start(id);
  const s = await ShimClient.attach(io.socket, { stdin: true, stdout: true, stderr: true });
  const got = collect(s);
  s.write('hello\n');
  s.write('world\n');
  // Without stdin-once, ending our side does not close the container's stdin.
  s.end();
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await ShimClient.status(io.socket), { status: 'running', pid: rt.state(id).pid });
  await ShimClient.closeStdin(io.socket);
  assert.equal(await finished(id, io.socket), 0);
  assert.equal(demux(await got).stdout, 'hello\nworld\n');
  await rt.delete(id);
});

test('stdin-once: the first stdin client ending its side closes the container stdin', async () => {
  const id = `once-${uniq}`;
  const io = env.io('once', { stdin: true, stdinOnce: true });
  await rt.create(id, env.bundle('once', 'cat; echo done'), { io });
  const s = await ShimClient.attach(io.socket, { stdin: true, stdout: true, stderr: false });
  const got = collect(s);
  await rt.start(id);
  s.end('piped\n');
  assert.equal(demux(await got).stdout, 'piped\ndone\n');
  assert.equal(await finished(id, io.socket), 0);
  await rt.delete(id);
});

test('wait answers the exit code, also 128+9 after SIGKILL, to two clients; status follows', async () => {
  const id = `wait-${uniq}`;
  const io = env.io('wait');
  await rt.create(id, env.bundle('wait', ['sleep', '100']), { io });
  await rt.start(id);
  const pid = rt.state(id).pid;
  assert.deepEqual(await ShimClient.status(io.socket), { status: 'running', pid });
  const w1 = finished(id, io.socket);
  const w2 = finished(id, io.socket);
  await rt.kill(id, 'KILL');
  assert.deepEqual(await Promise.all([w1, w2]), [137, 137]);
  assert.equal(readFileSync(rt.exitFile(id), 'utf8').trim(), '137');
  // The shim is gone: the exit file answers.
  await until('socket removed', () => !existsSync(io.socket));
  assert.equal(await finished(id, io.socket), 137);
  await assert.rejects(ShimClient.status(io.socket), { code: 'BERTH_SHIM_NOT_FOUND' });
  assert.equal(rt.state(id).status, 'stopped');
  await rt.delete(id);
  await assert.rejects(finished(id, io.socket), (err: Error & { code?: string; kind?: string }) => {
    assert.equal(err.code, 'BERTH_SHIM_NOT_FOUND');
    assert.equal(err.kind, 'NotFound');
    return true;
  });

  const id2 = `code-${uniq}`;
  const io2 = env.io('code');
  await rt.create(id2, env.bundle('code', 'exit 7'), { io: io2 });
  await rt.start(id2);
  assert.equal(await finished(id2, io2.socket), 7);
  await rt.delete(id2);
});

test('unknown requests and resize without a tty get errors', async () => {
  const id = `err-${uniq}`;
  const io = env.io('err');
  await rt.create(id, env.bundle('err', ['sleep', '100']), { io });
  await assert.rejects(ShimClient.resize(io.socket, 10, 20), { code: 'BERTH_SHIM_FAILED', message: /no terminal/ });
  await rt.delete(id, true);
  assert.equal(existsSync(io.socket), false);
});

test('the shim outlives the process that made it; a new client adopts the container', async () => {
  const id = `adopt-${uniq}`;
  const io = env.io('adopt', { stdin: true });
  const b = env.bundle('adopt', 'while read l; do echo "got $l"; done; exit 5');
  const index = fileURLToPath(new URL('../../src/index.js', import.meta.url));
  const script = join(work, 'adopt.mjs');
  const dep = (name: string): string => JSON.stringify(import.meta.resolve(name));
  writeFileSync(script, `
    import { Runtime, runtimeCgroups } from ${JSON.stringify(index)};
    import { createCgroupManager } from ${dep('@berth/cgroups')};
    import { silentLogger } from ${dep('@berth/log')};
    import { realSyscalls } from ${dep('@berth/native')};
    const rt = new Runtime({ root: ${JSON.stringify(join(work, 'state'))}, logger: silentLogger(), cgroups: runtimeCgroups(await createCgroupManager()), syscalls: realSyscalls });
    await rt.create(${JSON.stringify(id)}, ${JSON.stringify(b)}, { io: ${JSON.stringify(io)} });
    await rt.start(${JSON.stringify(id)});
  `);
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(rt.state(id).status, 'running');
  const s = await ShimClient.attach(io.socket, { stdin: true, stdout: true, stderr: true });
  const got = collect(s);
  s.write('one\n');
  await ShimClient.closeStdin(io.socket);
  assert.equal(await finished(id, io.socket), 5);
  assert.equal(demux(await got).stdout, 'got one\n');
  await rt.delete(id);
});

test('a client that never reads is dropped; the container, the log and other clients go on', async () => {
  const id = `slow-${uniq}`;
  const io = env.io('slow');
  await rt.create(id, env.bundle('slow', 'seq 1 200000; echo end'), { io });
  const slow = await ShimClient.attach(io.socket, { stdin: false, stdout: true, stderr: true });
  let slowClosed = false;
  slow.on('close', () => (slowClosed = true));
  slow.on('error', () => undefined);
  const good = await ShimClient.attach(io.socket, { stdin: false, stdout: true, stderr: false });
  const got = collect(good);
  await rt.start(id);
  assert.equal(await finished(id, io.socket), 0);
  const out = demux(await got).stdout;
  assert.equal(out.length, 1288895 + 4, 'the reading client got everything');
  const entries = readLog(io.logFile);
  assert.equal(entries.length, 200001);
  assert.equal(entries.at(-1)!.log, 'end\n');
  // The slow client's connection was closed by the shim: reading what was queued ends with EOF, short of the whole.
  const rest = await collect(slow);
  assert.ok(rest.length < out.length, `the slow client got ${rest.length} bytes`);
  await until('slow client closed', () => slowClosed);
  await rt.delete(id);
});

test('connections that never ask fill the slots (64); they are dropped after 10 s and requests work again', { timeout: 60_000 }, async () => {
  const id = `idle-${uniq}`;
  const io = env.io('idle');
  await rt.create(id, env.bundle('idle', ['sleep', '100']), { io });
  // Every socket reads (a paused one would not see the shim's close) and the timer keeps this
  // test's event loop alive while they only wait.
  const keep = setInterval(() => undefined, 1000);
  try {
    // One at a time, so the shim's listen backlog never overflows; a refused one may also see an error.
    const conns: { sock: Socket; got: () => string }[] = [];
    for (let i = 0; i < 70; i++) {
      conns.push(
        await new Promise<{ sock: Socket; got: () => string }>((resolve) => {
          const sock = createConnection(io.socket);
          let got = '';
          sock.on('data', (d: Buffer) => (got += d.toString()));
          sock.on('error', () => {
            got += 'error: too many clients (connect failed)';
            resolve({ sock, got: () => got });
          });
          sock.on('connect', () => resolve({ sock, got: () => got }));
        }),
      );
    }
    await until('the extra connections refused', () => conns.filter((c) => /too many clients/.test(c.got())).length >= 6, 5000);
    const waiting = conns.filter((c) => !/too many clients/.test(c.got()));
    assert.ok(waiting.length <= 64, `${waiting.length} connections hold a slot`);
    await until('idle connections dropped', () => conns.every((c) => c.sock.destroyed || c.sock.readableEnded), 15_000);
    // A request is served again: a raw status request gets an answer line, not an error.
    const line = await new Promise<string>((resolve) => {
      const c = createConnection(io.socket);
      let got = '';
      const t = setTimeout(() => c.destroy(), 5000);
      c.on('connect', () => c.write('status\n'));
      c.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.includes('\n')) c.destroy();
      });
      c.on('close', () => {
        clearTimeout(t);
        resolve(got);
      });
      c.on('error', () => undefined);
    });
    assert.match(line, /^\S+/, 'an answer');
    assert.doesNotMatch(line, /^error/, line);
  } finally {
    clearInterval(keep);
    // Also when an assertion failed: the container, its shim and cgroup go.
    await rt.delete(id, true).catch(() => undefined);
  }
});

test('nothing is left: processes, cgroups, mounts, state, sockets, fds', async () => {
  await until('no marked processes', () => markedProcesses(uniq).length === 0, 3000).catch(() => undefined);
  assert.deepEqual(markedProcesses(uniq), []);
  for (const id of ['log', 'utf', 'att', 'cat', 'once', 'wait', 'code', 'err', 'adopt', 'slow', 'idle']) assert.deepEqual(env.cgroupDirs(`${id}-${uniq}`), []);
  assert.deepEqual(mountsUnder(work), []);
  assert.deepEqual(rt.store.ids(), []);
  const sockets = spawnSync('sh', ['-c', `ls ${work} | grep -c '\\.sock$' || true`], { encoding: 'utf8' }).stdout.trim();
  assert.equal(sockets, '0');
  // The test runner and libuv open fds of their own: compare two identical container runs.
  const cycle = async (n: number): Promise<void> => {
    const io = env.io(`fd${n}`, { stdin: true });
    await rt.create(`fd${n}-${uniq}`, env.bundle('fd', 'echo hi'), { io });
    const s = await ShimClient.attach(io.socket, { stdin: true, stdout: true, stderr: true });
    const got = collect(s);
    await rt.start(`fd${n}-${uniq}`);
    assert.equal(await finished(`fd${n}-${uniq}`, io.socket), 0);
    assert.equal(demux(await got).stdout, 'hi\n');
    await rt.delete(`fd${n}-${uniq}`);
  };
  await cycle(1);
  const fdsBefore = fdList();
  await cycle(2);
  await cycle(3);
  assert.equal(fdList(), fdsBefore);
});
