/**
 * How the runtime starts berth-shim (posix_spawn through @berth/native, not node:child_process):
 * what the shim and the container get (session, signal state, fds), exit status and signals of
 * a foreground shim, no zombies after many starts, a shim that cannot run. Root only.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';
import { createCgroupManager } from '@berth/cgroups';
import { silentLogger } from '@berth/log';
import { nativePaths, realSyscalls } from '@berth/native';
import { Runtime, runtimeCgroups, defaultSpec, type OciSpec } from '../../src/index.js';
import { childProcesses as children, procStat as stat, procStatus as status } from '@berth/native/testing';

const uniq = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const work = mkdtempSync(join(tmpdir(), `berth-launch-${uniq}-`));
after(() => rmSync(work, { recursive: true, force: true }));

function bundle(name: string, args: string[]): string {
  const dir = join(work, name);
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  execFileSync('chmod', ['755', join(root, 'bin', 'busybox')]);
  for (const a of ['sh', 'sleep', 'true']) symlinkSync('busybox', join(root, 'bin', a));
  const s: OciSpec = defaultSpec();
  s.process!.terminal = false;
  s.process!.args = args;
  s.root!.readonly = false;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(s));
  return dir;
}

const manager = await createCgroupManager();
const rt = new Runtime({ root: join(work, 'state'), logger: silentLogger(), cgroups: runtimeCgroups(manager), syscalls: realSyscalls });
const sleepBundle = bundle('sleep', ['sleep', '100']);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


function fdLinks(pid: number | 'self'): string[] {
  const out: string[] = [];
  for (const n of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(readlinkSync(`/proc/${pid}/fd/${n}`));
    } catch {
      // readdir's own fd
    }
  }
  return out;
}

async function stopAndDelete(id: string): Promise<void> {
  try {
    await rt.kill(id, 'KILL');
  } catch {
    // stopped already
  }
  for (let i = 0; i < 400 && rt.state(id).status !== 'stopped'; i++) await sleep(5);
  await rt.delete(id, true);
}

test('a detached shim: its own session, re-parented, no fd of ours; the container has every signal at its default', async () => {
  const id = `ln-${uniq}`;
  const rec = await rt.create(id, sleepBundle, { stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    await rt.start(id);
    const shim = Number(status(rec.pid).PPid);
    assert.equal(readFileSync(`/proc/${shim}/comm`, 'utf8').trim(), 'berth-shim');
    assert.equal(Number(stat(shim)[3]), shim, 'the shim leads its own session');
    assert.notEqual(Number(stat(shim)[1]), process.pid, 'the shim is not our child');
    // Nothing of ours reached the shim: no pipe, socket or file we hold (besides /dev/null).
    const ours = new Set(fdLinks('self').filter((l) => l !== '/dev/null' && !l.startsWith('anon_inode:')));
    const leaked = fdLinks(shim).filter((l) => ours.has(l));
    assert.deepEqual(leaked, []);
    // Node ignores SIGPIPE and the addon's spawner thread blocks every signal: the container
    // (the shim's mask and dispositions passed down) must have neither.
    for (let i = 0; i < 200 && !readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').startsWith('sleep'); i++) await sleep(5);
    const st = status(rec.pid);
    assert.equal(BigInt(`0x${st.SigIgn}`), 0n, `SigIgn ${st.SigIgn}`);
    assert.equal(BigInt(`0x${st.SigBlk}`), 0n, `SigBlk ${st.SigBlk}`);
  } finally {
    await stopAndDelete(id);
  }
});

test('a foreground shim: its exit status is the container\'s (128+N when a signal killed it), forwarded signals reach the container', async () => {
  const exit3 = bundle('exit3', ['sh', '-c', 'exit 3']);
  assert.equal(await rt.run(`fg-${uniq}`, exit3, { stdio: ['ignore', 'ignore', 'ignore'] }), 3);
  const trap = bundle('trap', ['sh', '-c', 'trap "exit 42" TERM; echo > /tmp/up; while :; do sleep 0.02; done']);
  const started = async (id: string, b: string): Promise<{ forward: (s: NodeJS.Signals) => void; running: Promise<number> }> => {
    let forward: ((s: NodeJS.Signals) => void) | undefined;
    const running = rt.run(id, b, { stdio: ['ignore', 'ignore', 'ignore'], onStarted: (f) => (forward = f) });
    for (let i = 0; i < 400 && (forward === undefined || !existsSync(join(b, 'rootfs', 'tmp', 'up'))); i++) await sleep(5);
    assert.ok(forward, 'onStarted was called');
    assert.ok(existsSync(join(b, 'rootfs', 'tmp', 'up')), 'the container runs its trap');
    rmSync(join(b, 'rootfs', 'tmp', 'up'));
    return { forward, running };
  };
  const a = await started(`fg2-${uniq}`, trap);
  a.forward('SIGTERM'); // the shim forwards it; the container's trap exits 42
  assert.equal(await a.running, 42);
  const b = await started(`fg3-${uniq}`, trap);
  b.forward('SIGKILL'); // not forwardable: it kills the shim itself
  assert.equal(await b.running, 137);
});

test('no zombies after many starts, detached (also several at once) and foreground', async () => {
  const trueBundle = bundle('true', ['true']);
  for (let i = 0; i < 12; i++) {
    const id = `many-${uniq}-${i}`;
    await rt.create(id, sleepBundle, { stdio: ['ignore', 'ignore', 'ignore'] });
    await rt.start(id);
    await stopAndDelete(id);
    assert.equal(await rt.run(`manyfg-${uniq}-${i}`, trueBundle, { stdio: ['ignore', 'ignore', 'ignore'] }), 0);
  }
  // Several at once: the addon's spawner takes them one after the other.
  const ids = Array.from({ length: 6 }, (_, i) => `par-${uniq}-${i}`);
  const recs = await Promise.all(ids.map((id) => rt.create(id, sleepBundle, { stdio: ['ignore', 'ignore', 'ignore'] })));
  assert.equal(new Set(recs.map((r) => r.pid)).size, ids.length);
  for (const id of ids) await stopAndDelete(id);
  let left = children();
  for (let i = 0; i < 200 && left.length > 0; i++) {
    await sleep(10);
    left = children();
  }
  assert.deepEqual(left, [], 'no child of ours is left, zombie or not');
});

test('a shim that cannot run: BERTH_NATIVE_UNAVAILABLE naming it, nothing left behind', async () => {
  const paths = { ...nativePaths(), shim: join(work, 'no-such-shim') };
  const broken = new Runtime({ root: join(work, 'state2'), logger: silentLogger(), cgroups: runtimeCgroups(manager), syscalls: realSyscalls, paths });
  const fdsBefore = fdLinks('self').length;
  const id = `noshim-${uniq}`;
  await assert.rejects(broken.create(id, sleepBundle, { stdio: ['ignore', 'ignore', 'ignore'] }), (err: unknown) => {
    assert.ok(err instanceof BerthError);
    assert.equal(err.code, 'BERTH_NATIVE_UNAVAILABLE');
    assert.match(err.message, /cannot run .*no-such-shim: spawn .*no-such-shim: ENOENT/);
    return true;
  });
  await sleep(20);
  assert.equal(fdLinks('self').length, fdsBefore, 'no fd left open');
  assert.equal(existsSync(join(work, 'state2', id)), false, 'the container is rolled back');
  assert.deepEqual(Object.values(manager.open(`berth/${id}`)?.paths() ?? {}).filter((p) => existsSync(p)), []);
});
