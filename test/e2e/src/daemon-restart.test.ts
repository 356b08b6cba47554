/**
 * berthd restarted on its own roots: records it cannot read (torn, or missing fields) are left
 * on disk and skipped while every other container stays usable; a shim killed under a running
 * container; live restore switched off; --rm containers and restart policies across a restart.
 * Each test makes uniquely named containers and checks that nothing of them is left.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertNoLeaksEventually,
  berthCli,
  busyboxImageTar,
  restartDaemon,
  snapshotLeaks,
  startDaemon,
  type Daemon,
  type LeakSnapshot,
} from '@berth/test-support';

let daemon: Daemon;

const cli = berthCli(() => daemon.host, { timeoutMs: 30_000 });
const berth = cli.run;
const ok = cli.ok;
const tag = `${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
const name = (what: string): string => `dr-${what}-${tag}`;

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function inspect(ref: string, format: string): Promise<string> {
  return (await ok(['inspect', '-f', format, ref])).trim();
}

const alive = (pid: number): boolean => {
  try {
    // A zombie is as good as gone: its parent has not reaped it yet.
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** The cgroup directories of a container in every mounted hierarchy (berth/<id>). */
function cgroupsOf(id: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) if (existsSync(`/sys/fs/cgroup/${h}/berth/${id}`)) out.push(`${h}/berth/${id}`);
  return out;
}

/** The graph driver's id of a container's writable layer (image/<driver>/layerdb/mounts/<id>/mount-id). */
function mountIdOf(id: string): string | undefined {
  const image = join(daemon.dataRoot, 'image');
  for (const driver of existsSync(image) ? readdirSync(image) : []) {
    const f = join(image, driver, 'layerdb', 'mounts', id, 'mount-id');
    if (existsSync(f)) return readFileSync(f, 'utf8').trim();
  }
  return undefined;
}

const mountIds = new Map<string, string>();

/** Host mounts naming the container or its layer (the rootfs itself is mounted in the container's namespace). */
function mountsOf(id: string): string[] {
  const m = mountIds.get(id);
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(id) || (m !== undefined && l.includes(m)));
}

/** The berth-shim of a container: its command line names the container's runtime state dir. */
function shimPidOf(id: string): number | undefined {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('berth-shim') && cmd.includes(`/runtime/${id}/`)) return Number(p);
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

/**
 * Every file and directory of the data root whose path names the container, with its size and
 * a hash of its content; mounts (the rootfs of a running container) are not entered.
 */
function fingerprint(id: string): string[] {
  const out: string[] = [];
  const rootDev = statSync(daemon.dataRoot).dev;
  const walk = (dir: string, depth: number, named: boolean): void => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      const st = lstatSync(p);
      if (st.dev !== rootDev) continue;
      const mine = named || e.includes(id);
      if (mine) out.push(st.isFile() ? `${p} ${st.size} ${createHash('sha1').update(readFileSync(p)).digest('hex')}` : `${p}/`);
      if (st.isDirectory() && depth > 0) walk(p, depth - 1, mine);
    }
  };
  walk(daemon.dataRoot, 6, false);
  // The layer's own directory: <dataRoot>/<driver>/<mount id>, its entries and those of its diff.
  const m = mountIds.get(id);
  if (m) {
    for (const d of readdirSync(daemon.dataRoot)) {
      const layer = join(daemon.dataRoot, d, m);
      if (!existsSync(layer)) continue;
      for (const e of readdirSync(layer)) out.push(join(layer, e));
      if (existsSync(join(layer, 'diff'))) for (const e of readdirSync(join(layer, 'diff'))) out.push(join(layer, 'diff', e));
    }
  }
  return out.sort();
}

/** Notes a container's layer id, for mountsOf and fingerprint once the container is gone. */
function track(id: string): string {
  const m = mountIdOf(id);
  if (m) mountIds.set(id, m);
  created.add(id);
  return id;
}

const created = new Set<string>();

/** The daemon's log lines (pino JSON) at error level. */
function errorLines(): { msg: string; [k: string]: unknown }[] {
  return daemon
    .output()
    .split('\n')
    .flatMap((l) => {
      try {
        const o = JSON.parse(l) as { level: string | number; msg: string };
        return o.level === 'error' || o.level === 'fatal' || (typeof o.level === 'number' && o.level >= 50) ? [o] : [];
      } catch {
        return [];
      }
    });
}

/** A test that failed half way may have left the daemon stopped: the next one gets it back. */
async function ensureDaemon(): Promise<void> {
  if (daemon.process.exitCode !== null || daemon.process.signalCode !== null) daemon = await restartDaemon(daemon);
}

const scope = (): Parameters<typeof snapshotLeaks>[0] => ({
  // The shims (berthd itself is a new process after each restart).
  processMarkers: [`${daemon.execRoot}/runtime/`],
  mountFilter: (mp) => mp.startsWith(daemon.dataRoot) || mp.startsWith(daemon.execRoot),
  // Network namespaces, shim sockets, runtime state and bundles of the daemon's containers.
  stateDirs: ['netns', 's', 'runtime', 'containers'].map((d) => join(daemon.execRoot, d)),
});

async function noLeaks(before: LeakSnapshot, ids: string[], context: string): Promise<void> {
  await assertNoLeaksEventually(before, context, 5000);
  for (const id of ids) {
    assert.deepEqual(cgroupsOf(id), [], `${context}: cgroups of ${id}`);
    assert.deepEqual(mountsOf(id), [], `${context}: mounts of ${id}`);
    assert.deepEqual(fingerprint(id), [], `${context}: files of ${id}`);
  }
}

describe('berthd restarted on its roots', { timeout: 120_000 }, () => {
  before(async () => {
    daemon = await startDaemon();
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    try {
      await ensureDaemon();
      const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
      if (ids.length) await berth(['rm', '-f', ...ids]);
    } catch {
      // A daemon that cannot start (the defect these tests look for) leaves the runs to end here.
      for (const id of created) {
        try {
          process.kill(Number(readFileSync(join(daemon.execRoot, 'runtime', id, 'init.pid'), 'utf8')), 'SIGKILL');
        } catch {
          // not running
        }
      }
    }
    await daemon.cleanup();
    await sleep(200);
    for (const id of created) for (const cg of cgroupsOf(id)) rmdirSync(`/sys/fs/cgroup/${cg}`);
  });

  test('records it cannot read are left on disk and skipped; berthd starts and the other containers stay usable', async () => {
    await ensureDaemon();
    const before = await snapshotLeaks(scope());
    const torn = track((await ok(['create', '--name', name('torn'), 'busybox', 'true'])).trim());
    const tornRunning = track((await ok(['run', '-d', '--name', name('tornrun'), 'busybox', 'sleep', '1000'])).trim());
    const noState = track((await ok(['run', '-d', '--name', name('nostate'), 'busybox', 'true'])).trim());
    await ok(['wait', noState]);
    const good = track((await ok(['run', '-d', '--name', name('good'), 'busybox', 'sh', '-c', 'echo hello; trap "exit 0" TERM; while true; do sleep 0.1; done'])).trim());
    const goodStopped = track((await ok(['create', '--name', name('goodstopped'), 'busybox', 'sh', '-c', 'echo again'])).trim());
    const bad = [torn, tornRunning, noState];
    const runningPid = Number(await inspect(tornRunning, '{{.State.Pid}}'));
    const goodPid = Number(await inspect(good, '{{.State.Pid}}'));
    await daemon.stop();

    const cfg = (id: string): string => join(daemon.dataRoot, 'containers', id, 'config.v2.json');
    const originals = new Map(bad.map((id) => [id, readFileSync(cfg(id))]));
    // Torn: the first half of the JSON (a crash on a file system that lost the rename's data).
    writeFileSync(cfg(torn), originals.get(torn)!.subarray(0, originals.get(torn)!.length >> 1));
    writeFileSync(cfg(tornRunning), originals.get(tornRunning)!.subarray(0, 40));
    const parsed = JSON.parse(originals.get(noState)!.toString()) as Record<string, unknown>;
    delete parsed['State'];
    writeFileSync(cfg(noState), JSON.stringify(parsed));
    const prints = new Map(bad.map((id) => [id, fingerprint(id)]));
    for (const id of bad) assert.ok(prints.get(id)!.length > 3, `${id}: ${prints.get(id)!.join('\n')}`);
    const mountsBefore = mountsOf(tornRunning);
    const rootOf = (pid: number): string | undefined => readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/');
    assert.match(rootOf(runningPid) ?? '', new RegExp(`overlay .*${mountIds.get(tornRunning)}`), 'the running container has its layer as root');

    daemon = await restartDaemon(daemon);
    // Skipped: not listed, not found; their files, layer and mounts untouched, their process alive.
    const listed = (await ok(['ps', '-aq', '--no-trunc'])).trim().split('\n');
    for (const id of bad) {
      assert.ok(!listed.includes(id), `${id} is listed`);
      assert.match((await berth(['inspect', id])).stderr, /No such (container|object)/);
      assert.deepEqual(fingerprint(id), prints.get(id), `files of ${id} changed`);
    }
    assert.deepEqual(mountsOf(tornRunning), mountsBefore);
    assert.match(rootOf(runningPid) ?? '', new RegExp(`overlay .*${mountIds.get(tornRunning)}`));
    assert.ok(alive(runningPid), 'the process of the container with a torn record was killed');
    assert.ok(cgroupsOf(tornRunning).length > 0, 'its cgroups were removed');
    const links = execNetLinks(runningPid);
    assert.match(links, /eth0/, `its network was torn down: ${links}`);
    // Each is logged at error level with the record's path and why it could not be used.
    const errors = errorLines();
    for (const [id, why] of [[torn, /JSON|Unexpected end|Unterminated/i], [tornRunning, /JSON|Unexpected end|Unterminated/i], [noState, /State/]] as const) {
      const line = errors.find((l) => JSON.stringify(l).includes(cfg(id)));
      assert.ok(line, `no error line names ${cfg(id)}:\n${daemon.output()}`);
      assert.match(JSON.stringify(line), why);
    }

    // The others: inspect, logs, stop, start, rm.
    assert.equal(await inspect(good, '{{.State.Status}} {{.State.Pid}}'), `running ${goodPid}`);
    assert.equal(await ok(['logs', good]), 'hello\n');
    await ok(['stop', '-t', '5', good]);
    assert.equal(await inspect(good, '{{.State.Status}} {{.State.ExitCode}}'), 'exited 0');
    await ok(['start', '-a', goodStopped]);
    assert.equal(await ok(['logs', goodStopped]), 'again\n');
    await ok(['rm', good, goodStopped]);
    // A new container may even take a skipped one's name (Docker does not know it either).
    await ok(['run', '--rm', '--name', name('torn'), 'busybox', 'true']);

    // Repaired by hand, the records are read again at the next start: the running one is re-adopted.
    await daemon.stop();
    for (const [id, data] of originals) writeFileSync(cfg(id), data);
    daemon = await restartDaemon(daemon);
    assert.equal(await inspect(tornRunning, '{{.State.Status}} {{.State.Pid}}'), `running ${runningPid}`);
    assert.equal(await inspect(noState, '{{.State.Status}}'), 'exited');
    assert.equal(await inspect(torn, '{{.State.Status}}'), 'created');
    await ok(['rm', '-f', ...bad]);
    await until('the process to end', () => (alive(runningPid) ? undefined : true));
    await noLeaks(before, [...bad, good, goodStopped], 'after rm');
  });

  test('a half-made create (a layer without a directory, a directory without a record, a record without its HostConfig) is cleaned up', async () => {
    await ensureDaemon();
    const before = await snapshotLeaks(scope());
    const a = track((await ok(['create', '--name', name('halfa'), 'busybox', 'true'])).trim());
    const b = track((await ok(['create', '--name', name('halfb'), 'busybox', 'true'])).trim());
    const c = track((await ok(['create', '--name', name('halfc'), 'busybox', 'true'])).trim());
    await daemon.stop();
    const dir = (id: string): string => join(daemon.dataRoot, 'containers', id);
    // A crash after the host files and before the record's rename: the temp file is there too.
    const { rmSync, renameSync } = await import('node:fs');
    renameSync(join(dir(a), 'config.v2.json'), join(dir(a), `config.v2.json.tmp-1-abc`));
    rmSync(join(dir(a), 'hostconfig.json'));
    // A crash between the record's rename and the HostConfig's.
    rmSync(join(dir(b), 'hostconfig.json'));
    // A crash after the layer and before the directory (create makes them in this order).
    rmSync(dir(c), { recursive: true });
    assert.ok(fingerprint(c).length > 0, 'the layer is there');
    daemon = await restartDaemon(daemon);
    for (const id of [a, b, c]) assert.match((await berth(['inspect', id])).stderr, /No such (container|object)/);
    await noLeaks(before, [a, b, c], 'half-made creates');
  });

  test('SIGKILL of the shim under a running container: it shows exited and nothing of its run is left', async () => {
    await ensureDaemon();
    const before = await snapshotLeaks(scope());
    const n = name('shimkill');
    const id = track((await ok(['run', '-d', '--name', n, 'busybox', 'sleep', '1000'])).trim());
    const pid = Number(await inspect(id, '{{.State.Pid}}'));
    const shim = shimPidOf(id);
    assert.ok(shim, 'no berth-shim names the container');
    const socket = join(daemon.execRoot, 's', `${id.slice(0, 32)}.sock`);
    const state = join(daemon.execRoot, 'runtime', id);
    assert.ok(existsSync(socket) && existsSync(state) && cgroupsOf(id).length > 0 && mountsOf(id).length > 0);
    process.kill(shim, 'SIGKILL');
    const status = await until('the exit', async () => {
      const s = await inspect(id, '{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}');
      return s.startsWith('exited') ? s : undefined;
    });
    // Docker (containerd's runc shim) reports 137: the process is killed with the lost shim.
    assert.equal(status, 'exited 137 0');
    await until('the process to end', () => (alive(pid) ? undefined : true), 3000);
    assert.deepEqual(cgroupsOf(id), []);
    assert.deepEqual(mountsOf(id), []);
    assert.ok(!existsSync(socket), socket);
    assert.ok(!existsSync(state), state);
    assert.equal(await ok(['wait', id]), '137\n');
    // Usable afterwards: it starts again and is removed.
    await ok(['start', id]);
    assert.equal(await inspect(id, '{{.State.Running}}'), 'true');
    await ok(['rm', '-f', id]);
    await noLeaks(before, [id], 'after the lost shim');
  });

  test('SIGKILL of the shim while berthd is down: at its start the container shows exited 137 and nothing of its run is left', async () => {
    await ensureDaemon();
    const before = await snapshotLeaks(scope());
    const id = track((await ok(['run', '-d', '--name', name('shimdown'), 'busybox', 'sleep', '1000'])).trim());
    const pid = Number(await inspect(id, '{{.State.Pid}}'));
    const shim = shimPidOf(id);
    assert.ok(shim, 'no berth-shim names the container');
    await daemon.stop();
    process.kill(shim, 'SIGKILL');
    await until('the shim to go', () => (alive(shim) ? undefined : true), 3000);
    assert.ok(alive(pid), 'the process outlives its shim');
    daemon = await restartDaemon(daemon);
    assert.equal(await inspect(id, '{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}'), 'exited 137 0');
    await until('the process to end', () => (alive(pid) ? undefined : true), 3000);
    assert.deepEqual(cgroupsOf(id), []);
    assert.ok(!existsSync(join(daemon.execRoot, 'runtime', id)));
    await ok(['rm', id]);
    await noLeaks(before, [id], 'after the shim lost while berthd was down');
  });

  test('live restore off: berthd kills the running containers at start; only --restart always runs again', async () => {
    await ensureDaemon();
    const before = await snapshotLeaks(scope());
    const plain = track((await ok(['run', '-d', '--name', name('lroff'), 'busybox', 'sleep', '1000'])).trim());
    const always = track((await ok(['run', '-d', '--name', name('lralways'), '--restart', 'always', 'busybox', 'sleep', '1000'])).trim());
    const plainPid = Number(await inspect(plain, '{{.State.Pid}}'));
    const alwaysPid = Number(await inspect(always, '{{.State.Pid}}'));
    await daemon.stop();
    assert.ok(alive(plainPid) && alive(alwaysPid), 'live restore kept them running while berthd was down');
    // berthd's flag can only turn it on (--live-restore takes no value): the config file turns it off.
    const conf = join(daemon.execRoot, 'live-restore-off.json');
    writeFileSync(conf, JSON.stringify({ 'live-restore': false }));
    daemon = await restartDaemon(daemon, { args: ['--config-file', conf] });
    assert.ok(!alive(plainPid), 'the plain container still runs');
    assert.ok(!alive(alwaysPid), 'the always container still runs its first process');
    assert.equal(await inspect(plain, '{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}'), 'exited 137 0');
    assert.deepEqual(cgroupsOf(plain), []);
    assert.deepEqual(mountsOf(plain), []);
    const again = await until('the always container to run again', async () => {
      const [s, p] = (await inspect(always, '{{.State.Status}} {{.State.Pid}}')).split(' ');
      return s === 'running' && Number(p) !== alwaysPid && Number(p) > 0 ? Number(p) : undefined;
    });
    assert.ok(alive(again));
    await sleep(300);
    assert.equal(await inspect(plain, '{{.State.Status}}'), 'exited');
    await ok(['rm', '-f', plain, always]);
    // Back to the default for the other tests.
    await daemon.stop();
    daemon = await restartDaemon(daemon);
    await noLeaks(before, [plain, always], 'live restore off');
  });

  test('--rm containers across a restart: one that exited meanwhile is removed, one still running is re-adopted and removed at its exit', async () => {
    await ensureDaemon();
    const before = await snapshotLeaks(scope());
    const gone = track((await ok(['run', '-d', '--rm', '--name', name('rmgone'), 'busybox', 'sleep', '1'])).trim());
    const kept = track((await ok(['run', '-d', '--rm', '--name', name('rmkept'), 'busybox', 'sleep', '1000'])).trim());
    const gonePid = Number(await inspect(gone, '{{.State.Pid}}'));
    const keptPid = Number(await inspect(kept, '{{.State.Pid}}'));
    await daemon.stop();
    await until('the short one to exit while berthd is down', () => (alive(gonePid) ? undefined : true), 5000);
    assert.ok(existsSync(join(daemon.dataRoot, 'containers', gone)), 'its record is still there while berthd is down');
    daemon = await restartDaemon(daemon);
    assert.match((await berth(['inspect', gone])).stderr, /No such (container|object)/);
    assert.deepEqual(fingerprint(gone), []);
    assert.deepEqual(mountsOf(gone), []);
    assert.equal(await inspect(kept, '{{.State.Status}} {{.State.Pid}}'), `running ${keptPid}`);
    process.kill(keptPid, 'SIGKILL');
    await until('its removal', async () => ((await berth(['inspect', kept])).code !== 0 ? true : undefined));
    await noLeaks(before, [gone, kept], '--rm across a restart');
  });

  test('on-failure:2 ends with RestartCount 2 and exit code 3, and a daemon restart adds no restart', async () => {
    await ensureDaemon();
    const before = await snapshotLeaks(scope());
    const n = name('onfail');
    const id = track((await ok(['run', '-d', '--name', n, '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 3'])).trim());
    const fmt = '{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}';
    await until('two restarts', async () => ((await inspect(id, fmt)) === 'exited 2 3' ? true : undefined), 15_000);
    const startedAt = await inspect(id, '{{.State.StartedAt}}');
    await sleep(500);
    assert.equal(await inspect(id, fmt), 'exited 2 3');
    await daemon.stop();
    daemon = await restartDaemon(daemon);
    await sleep(1000);
    assert.equal(await inspect(id, fmt), 'exited 2 3');
    assert.equal(await inspect(id, '{{.State.StartedAt}}'), startedAt);
    await ok(['rm', id]);
    await noLeaks(before, [id], 'on-failure');
  });
});

/** The interfaces in a process's network namespace. */
function execNetLinks(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/net/dev`, 'utf8');
  } catch (err) {
    return String(err);
  }
}
