/**
 * berth-shim with a pty, exec under its own shim (hold, failures), the --init reaper, and the
 * shim's memory. Root only.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { ShimClient, type OciProcess } from '../../src/index.js';
import { setup, collect, demux, until, markedProcesses, mountsUnder, readLog } from './shim-helpers.js';

const env = await setup('ex');
const { rt, uniq, work } = env;
after(() => env.dispose());

function proc(args: string[], over: Partial<OciProcess> = {}): OciProcess {
  return {
    terminal: false, user: { uid: 0, gid: 0 }, cwd: '/', args,
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', `BERTH_TEST_MARK=${uniq}`], ...over,
  };
}

/** Reads the raw stream until text matches. */
function expectText(s: Socket, re: RegExp, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      s.off('data', onData);
      reject(new Error(`timed out waiting for ${re} in ${JSON.stringify(text)}`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      text += d.toString('utf8');
      if (re.test(text)) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve(text);
      }
    };
    s.on('data', onData);
    s.resume();
  });
}

function vmRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

test('tty: output comes through the pty, resize changes stty size inside, stdin reaches the process', async () => {
  const id = `tty-${uniq}`;
  const io = env.io('tty', { tty: true, stdin: true });
  await rt.create(id, env.bundle('tty', 'stty size; read x; stty size; echo "got $x"; exit 4'), { io });
  await ShimClient.resize(io.socket, 30, 100);
  const s = await ShimClient.attach(io.socket, { stdin: true, stdout: true, stderr: true });
  await rt.start(id);
  await expectText(s, /30 100\r\n/);
  await ShimClient.resize(io.socket, 40, 120);
  s.write('hello\r');
  const text = await expectText(s, /got hello\r\n/);
  assert.match(text, /40 120\r\n/);
  assert.equal(await ShimClient.wait(io.socket, rt.exitFile(id)), 4);
  const log = readLog(io.logFile);
  assert.ok(log.every((e) => e.stream === 'stdout'), 'with a tty everything is stdout');
  assert.match(log.map((e) => e.log).join(''), /30 100\r\n/);
  s.destroy();
  await rt.delete(id);
  assert.equal(existsSync(`${work}/state/${id}`), false);
});

test('exec with hold loses no output, gets its own exit code; a tty exec gets a pty', async () => {
  const id = `exh-${uniq}`;
  const io = env.io('exh');
  await rt.create(id, env.bundle('exh', ['sleep', '100']), { io });
  await rt.start(id);

  const eio = env.io('exh-e1', { hold: true });
  const started = await rt.execProcess(id, 'e1', proc(['sh', '-c', 'seq 1 500; echo to-err >&2; exit 9']), eio);
  assert.ok(started.pid > 0);
  // The process has long finished: with hold, its output waits for us.
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(await ShimClient.status(eio.socket), { status: 'exited', exitCode: 9 });
  const s = await ShimClient.attach(eio.socket, { stdin: false, stdout: true, stderr: true });
  const frames = demux(await collect(s));
  assert.equal(frames.stdout, Array.from({ length: 500 }, (_, i) => `${i + 1}\n`).join(''));
  assert.equal(frames.stderr, 'to-err\n');
  assert.equal(await ShimClient.wait(eio.socket, started.exitFile), 9);

  const tio = env.io('exh-t', { tty: true, hold: true });
  const t = await rt.execProcess(id, 't1', proc(['tty']), tio);
  const ts = await ShimClient.attach(tio.socket, { stdin: false, stdout: true, stderr: true });
  assert.match((await collect(ts)).toString('utf8'), /^\/dev\/pts\/\d+\r\n$/);
  assert.equal(await ShimClient.wait(tio.socket, t.exitFile), 0);

  // A background process keeps the pipes open: the shim stops draining 1 s after the exit.
  const bio = env.io('exh-bg');
  const bg = await rt.execProcess(id, 'bg', proc(['sh', '-c', 'sleep 30 & echo bg']), bio);
  const t0 = Date.now();
  assert.equal(await ShimClient.wait(bio.socket, bg.exitFile), 0);
  assert.ok(Date.now() - t0 < 3000, `waited ${Date.now() - t0} ms`);
  assert.deepEqual(readLog(bio.logFile).map((e) => e.log), ['bg\n']);

  // An exec id is one process.
  await assert.rejects(rt.execProcess(id, 'e1', proc(['true']), env.io('exh-dup')), /in use/);
  await rt.delete(id, true);
  assert.equal(existsSync(`${work}/state/${id}`), false);
  assert.equal(existsSync(eio.socket), false);
});

test('exec of a missing command rejects with exit code 127 and leaves nothing', async () => {
  const id = `exm-${uniq}`;
  const io = env.io('exm');
  await rt.create(id, env.bundle('exm', ['sleep', '100']), { io });
  await rt.start(id);
  const eio = env.io('exm-e', { hold: true });
  await assert.rejects(rt.execProcess(id, 'missing', proc(['no-such-command']), eio), (err: Error & { details?: { exitCode?: number } }) => {
    assert.match(err.message, /exec: "no-such-command": executable file not found in \$PATH/);
    assert.equal(err.details?.exitCode, 127);
    return true;
  });
  assert.equal(existsSync(eio.socket), false);
  assert.deepEqual(readdirSync(`${work}/state/${id}`).filter((n) => n.startsWith('exec-')), []);
  // An exec whose shim still holds its output when the container goes: delete releases it.
  await rt.execProcess(id, 'held', proc(['sleep', '100']), env.io('exm-held', { hold: true }));
  await rt.delete(id, true);
  assert.equal(existsSync(env.io('exm-held').socket), false);
  await until('no processes', () => markedProcesses(`exm-held`).length === 0);
});

test('--init: PID 1 is the reaper, the command is PID 2 under it, orphans are reaped, codes pass through', async () => {
  const id = `rp-${uniq}`;
  const io = env.io('rp');
  const b = env.bundle('rp', 'ps -o pid,ppid,comm; (sleep 0.2 &); sleep 0.6; ps -o pid,stat,comm; exit 3');
  await rt.create(id, b, { io, reaper: true });
  await rt.start(id);
  assert.equal(await ShimClient.wait(io.socket, rt.exitFile(id)), 3);
  const out = readLog(io.logFile).map((e) => e.log).join('');
  const [first, second] = out.split(/(?=PID\s+STAT)/);
  const rows = first!.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
  assert.deepEqual(rows[0], ['1', '0', 'berth-init'], out);
  assert.deepEqual(rows[1], ['2', '1', 'sh'], out);
  assert.doesNotMatch(second!, /\bZ\b/, `the orphaned sleep was reaped:\n${out}`);
  assert.equal(second!.trim().split('\n').length, 4, out); // header, reaper, sh, ps
  await rt.delete(id);

  // Signals to PID 1 reach the command; its death by signal is 128+N.
  const id2 = `rps-${uniq}`;
  const io2 = env.io('rps');
  await rt.create(id2, env.bundle('rps', ['sleep', '100']), { io: io2, reaper: true });
  await rt.start(id2);
  await new Promise((r) => setTimeout(r, 100));
  await rt.kill(id2, 'TERM');
  assert.equal(await ShimClient.wait(io2.socket, rt.exitFile(id2)), 143);
  await rt.delete(id2);
});

test('the shim of an idle container stays under 1 MiB of RSS', async () => {
  const id = `rss-${uniq}`;
  const io = env.io('rss', { stdin: true });
  await rt.create(id, env.bundle('rss', ['sleep', '100']), { io });
  await rt.start(id);
  const s = await ShimClient.attach(io.socket, { stdin: true, stdout: true, stderr: true });
  const shim = ppid(rt.state(id).pid);
  assert.match(readFileSync(`/proc/${shim}/cmdline`, 'utf8'), /berth-shim/);
  const rss = vmRss(shim);
  console.log(`berth-shim VmRSS of an idle container with a client attached: ${rss} KiB`);
  assert.ok(rss <= 1024, `${rss} KiB`);
  s.destroy();
  await rt.delete(id, true);
});

test('nothing is left after delete: processes, mounts, state', async () => {
  await until('no marked processes', () => markedProcesses(uniq).length === 0, 3000).catch(() => undefined);
  assert.deepEqual(markedProcesses(uniq), []);
  assert.deepEqual(mountsUnder(work), []);
  assert.deepEqual(rt.store.ids(), []);
  for (const id of ['tty', 'exh', 'exm', 'rp', 'rps', 'rss']) assert.deepEqual(env.cgroupDirs(`${id}-${uniq}`), []);
  assert.deepEqual(readdirSync(work).filter((n) => n.endsWith('.sock')), []);
});
