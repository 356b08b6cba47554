/**
 * spawnProcess / makePipe (the addon's posix_spawn) on the real kernel: the fd map, the session,
 * signal state, no leaked fds, no zombies, start failures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readdirSync, readlinkSync, writeFileSync, writeSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { Socket } from 'node:net';
import { SystemError } from '@berth/errors';
import { makePipe, spawnProcess } from '../../src/index.js';
import { removeDir, tempDir } from './helpers.js';
import { childProcesses as children, procStat as stat, procStatus as status } from '../../src/testing.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


function fdLinks(pid: number | 'self'): Map<number, string> {
  const out = new Map<number, string>();
  for (const n of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.set(Number(n), readlinkSync(`/proc/${pid}/fd/${n}`));
    } catch {
      // the fd of readdir itself
    }
  }
  return out;
}

/** Spawns `sleep 30` with the options; `exited` resolves (code, signal). */
async function spawnSleep(fds: (number | null)[], setsid: boolean): Promise<{ pid: number; exited: Promise<[number | null, number | null]> }> {
  let onExit!: (c: number | null, s: number | null) => void;
  const exited = new Promise<[number | null, number | null]>((resolve) => {
    onExit = (c, s) => resolve([c, s]);
  });
  const pid = await spawnProcess({ path: '/bin/sleep', argv: ['sleep', '30'], fds, setsid, onExit });
  return { pid, exited };
}

test('the child gets exactly the fds of the map (sources that collide with targets included), nothing else', async (t) => {
  const dir = tempDir('berth-spawn');
  t.after(() => removeDir(dir));
  // Four files at fds below the map's length: the map swaps two of them, so that a source sits
  // where an earlier dup2 lands.
  const files = ['a', 'b', 'c', 'd'].map((n) => join(dir, n));
  for (const f of files) writeFileSync(f, '');
  const fd = files.map((f) => openSync(f, 'r'));
  const top = Math.max(...fd);
  const map: (number | null)[] = Array.from({ length: top + 1 }, () => null);
  map[fd[0]!] = fd[1]!; // swapped
  map[fd[1]!] = fd[0]!;
  map[fd[2]!] = fd[2]!; // in place (our copy is close-on-exec)
  map[fd[3]!] = fd[0]!; // one source twice
  map[1] = 1; // our stdout, inherited
  const child = await spawnSleep(map, false);
  try {
    const links = fdLinks(child.pid);
    const ours = fdLinks('self');
    const want = new Map<number, string>();
    map.forEach((src, i) => want.set(i, src === null ? '/dev/null' : ours.get(src)!));
    assert.deepEqual([...links.entries()].sort((a, b) => a[0] - b[0]), [...want.entries()].sort((a, b) => a[0] - b[0]));
    // Our fds 0 and 2 are not close-on-exec, yet the child has no fd beyond the map's.
    const short = await spawnSleep([null], false);
    assert.deepEqual([...fdLinks(short.pid).keys()], [0]);
    process.kill(short.pid, 'SIGKILL');
    await short.exited;
  } finally {
    process.kill(child.pid, 'SIGKILL');
    await child.exited;
    for (const f of fd) closeSync(f);
  }
  // The temporary copies of colliding sources are closed again.
  const after = fdLinks('self');
  for (const f of files) assert.equal([...after.values()].filter((l) => l === f).length, 0, `${f} still open`);
});

test('setsid: the child leads its own session; without it, it stays in ours', async () => {
  const a = await spawnSleep([null, null, null], true);
  const b = await spawnSleep([null, null, null], false);
  try {
    const [, , pgrpA, sidA] = stat(a.pid);
    assert.equal(Number(sidA), a.pid);
    assert.equal(Number(pgrpA), a.pid);
    assert.equal(Number(stat(b.pid)[3]), Number(stat(process.pid)[3]));
  } finally {
    process.kill(a.pid, 'SIGKILL');
    process.kill(b.pid, 'SIGKILL');
    await Promise.all([a.exited, b.exited]);
  }
});

test('signals in the child: none blocked, none ignored (node ignores SIGPIPE; glibc keeps 32 and 33 for itself)', async () => {
  // Node itself ignores SIGPIPE: what the child must not inherit.
  assert.notEqual(BigInt(`0x${status(process.pid).SigIgn}`) & (1n << 12n), 0n, 'the test process ignores SIGPIPE');
  const c = await spawnSleep([null, null, null], true);
  try {
    const st = status(c.pid);
    assert.equal(BigInt(`0x${st.SigIgn}`), 0n, `SigIgn ${st.SigIgn}`);
    assert.equal(BigInt(`0x${st.SigBlk}`), 0n, `SigBlk ${st.SigBlk}`);
  } finally {
    process.kill(c.pid, 'SIGKILL');
    await c.exited;
  }
});

test('onExit reports the exit code or the signal, after the child is reaped', async () => {
  let exit: [number | null, number | null] | undefined;
  const pid = await spawnProcess({
    path: '/bin/sh', argv: ['sh', '-c', 'exit 7'], fds: [null, null, null], setsid: false,
    onExit: (c, s) => {
      exit = [c, s];
    },
  });
  for (let i = 0; i < 500 && exit === undefined; i++) {
    // Until the callback the pid is ours (a zombie at worst), never reused.
    assert.equal(Number(stat(pid)[1]), process.pid);
    await sleep(2);
  }
  assert.deepEqual(exit, [7, null]);
  assert.throws(() => readFileSync(`/proc/${pid}/stat`), /ENOENT/, 'reaped before the callback');
  const c = await spawnSleep([null, null, null], false);
  process.kill(c.pid, 'SIGTERM');
  assert.deepEqual(await c.exited, [null, 15]);
});

test('no zombie and no extra thread is left after many spawns', async () => {
  const threads = (): number => readdirSync('/proc/self/task').length;
  await spawnProcess({ path: '/bin/true', argv: ['true'], fds: [], setsid: false }); // the spawner thread exists
  const before = threads();
  const pids: number[] = [];
  const started: Promise<number>[] = [];
  for (let i = 0; i < 60; i++) started.push(spawnProcess({ path: '/bin/true', argv: ['true'], fds: [null, null, null], setsid: i % 2 === 0 }));
  pids.push(...(await Promise.all(started)));
  let left = children().filter((c) => pids.includes(c.pid));
  for (let i = 0; i < 200 && (left.length > 0 || threads() > before); i++) {
    await sleep(10);
    left = children().filter((c) => pids.includes(c.pid));
  }
  assert.deepEqual(left, [], 'every child was reaped');
  assert.ok(threads() <= before, `threads ${threads()} > ${before}`);
});

test('a start failure rejects with a SystemError naming the executable and leaves no fd or child', async () => {
  const dir = tempDir('berth-spawn');
  try {
    const fdsBefore = fdLinks('self').size;
    const missing = join(dir, 'missing');
    await assert.rejects(
      spawnProcess({ path: missing, argv: ['x'], fds: [null, null, 1], setsid: true }),
      (e: unknown) => e instanceof SystemError && e.code === 'ENOENT' && e.syscall === 'spawn' && e.path === missing,
    );
    const notExec = join(dir, 'plain');
    writeFileSync(notExec, '#!/bin/sh\n');
    chmodSync(notExec, 0o644);
    await assert.rejects(
      spawnProcess({ path: notExec, argv: ['x'], fds: [null], setsid: false, onExit: () => assert.fail('no child') }),
      (e: unknown) => e instanceof SystemError && e.code === 'EACCES',
    );
    await sleep(20); // the spawner closes its copies of the fds right after the attempt
    assert.throws(() => spawnProcess({ path: '/bin/true', argv: ['true'], fds: [999], setsid: false }), (e: unknown) => e instanceof SystemError && e.code === 'EBADF');
    assert.equal(fdLinks('self').size, fdsBefore);
    assert.deepEqual(children().filter((c) => c.state === 'Z'), []);
  } finally {
    removeDir(dir);
  }
});

test('makePipe: close-on-exec ends, and room for minCapacity bytes written at once', async () => {
  const size = 300_000;
  const [r, w] = makePipe(size);
  const data = Buffer.alloc(size, 7);
  // A blocking write of more than the pipe holds would hang the test here.
  assert.equal(writeSync(w, data), size);
  closeSync(w);
  const sock = new Socket({ fd: r, readable: true, writable: false });
  let got = 0;
  for await (const chunk of sock) got += (chunk as Buffer).length;
  assert.equal(got, size);
  const [r2, w2] = makePipe();
  const c = await spawnSleep([null, null, null], false);
  try {
    const links = [...fdLinks(c.pid).values()];
    const mine = fdLinks('self');
    assert.ok(!links.includes(mine.get(r2)!) && !links.includes(mine.get(w2)!), 'pipe ends are not inherited');
  } finally {
    process.kill(c.pid, 'SIGKILL');
    await c.exited;
    closeSync(r2);
    closeSync(w2);
  }
});
