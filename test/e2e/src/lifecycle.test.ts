/**
 * The berth CLI against a berthd on scratch roots, as a user drives it: the lifecycle verbs,
 * a daemon killed and restarted under running containers (live restore), restart policies
 * applied at daemon start, and bad input answered with Docker's statuses, leaving nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  berthCli,
  assertNoLeaksEventually,
  busyboxImageTar,
  restartDaemon,
  snapshotLeaks,
  startDaemon,
  type Daemon,
} from '@berth/test-support';


let daemon: Daemon;

const cli = berthCli(() => daemon.host, { timeoutMs: 30_000 });
const berth = cli.run;
const ok = cli.ok;

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const name = (what: string): string => `e2e-${what}-${process.pid}`;

describe('berth CLI and berthd: container lifecycle', { timeout: 180_000 }, () => {
  before(async () => {
    daemon = await startDaemon();
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    await daemon.cleanup();
  });

  test('run in the foreground passes output and the exit code', async () => {
    const r = await berth(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.code, 3);
  });

  test('SIGPIPE has its default action in the container: yes | head ends quietly', async () => {
    // berth-init ignores SIGPIPE for itself; an ignored signal would stay ignored across exec.
    const r = await berth(['run', '--rm', 'busybox', 'sh', '-c', 'yes | head -n 1; grep SigIgn /proc/self/status']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const ign = BigInt(`0x${/SigIgn:\s*([0-9a-f]+)/.exec(r.stdout)![1]}`);
    assert.equal(ign & (1n << 12n), 0n, `SIGPIPE (13) ignored: ${r.stdout}`);
  });

  test('the command is PID 1 and ps shows only the container', async () => {
    const out = await ok(['run', '--rm', 'busybox', 'ps', '-o', 'pid,comm']);
    assert.deepEqual(out.trim().split('\n').slice(1).map((l) => l.trim()), ['1 ps']);
  });

  test('--init puts a reaper at PID 1 with the command under it', async () => {
    const out = await ok(['run', '--rm', '--init', 'busybox', 'ps', '-o', 'pid,ppid,comm']);
    const rows = out.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    assert.equal(rows.length, 2, out);
    const ps = rows.find((r) => r[2] === 'ps');
    assert.ok(ps && ps[1] === '1' && ps[0] !== '1', out);
  });

  test('stop, start, restart, logs, rename and rm of a detached container', async () => {
    const n = name('life');
    const id = (await ok(['run', '-d', '--name', n, 'busybox', 'sh', '-c', 'echo started; trap "exit 0" TERM; while true; do sleep 0.1; done'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await until('the first log line', async () => ((await ok(['logs', n])) === 'started\n' ? true : undefined));
    assert.equal((await ok(['stop', n])).trim(), n);
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', n])).trim(), 'exited 0');
    await ok(['start', n]);
    await until('the second start', async () => ((await ok(['logs', n])) === 'started\nstarted\n' ? true : undefined));
    await ok(['restart', '-t', '1', n]);
    assert.equal((await ok(['inspect', '-f', '{{.State.Running}}', n])).trim(), 'true');
    await ok(['rename', n, `${n}-2`]);
    assert.equal((await ok(['ps', '--filter', `name=${n}-2`, '--format', '{{.Names}}'])).trim(), `${n}-2`);
    const rm = await berth(['rm', `${n}-2`]);
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /stop the container before removing or force remove/);
    await ok(['rm', '-f', `${n}-2`]);
    assert.equal((await ok(['ps', '-aq', '--filter', `id=${id}`])).trim(), '');
  });

  test('bad input: invalid name 400, name in use 409, unknown container 404', async () => {
    // docker's exit codes: 1 for create, 125 for run.
    const bad = await berth(['create', '--name', '-bad', 'busybox']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Invalid container name/i);
    const badRun = await berth(['run', '--name', '-bad', 'busybox']);
    assert.equal(badRun.code, 125);
    assert.match(bad.stderr, /Invalid container name/i);
    const n = name('dup');
    const first = (await ok(['create', '--name', n, 'busybox', 'true'])).trim();
    const dup = await berth(['run', '--name', n, 'busybox', 'true']);
    assert.equal(dup.code, 125);
    assert.match(dup.stderr, new RegExp(`is already in use by container "${first}"`));
    const missing = await berth(['stop', 'no-such-container-e2e']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such container: no-such-container-e2e/);
    await ok(['rm', n]);
  });

  test('a start that fails leaves the container created with the error and nothing behind', async () => {
    // Scoped to this daemon's roots and this container's cgroup (named by its id): other test
    // files run containers at the same time.
    const roots = (mp: string): boolean => mp.startsWith(daemon.dataRoot) || mp.startsWith(daemon.execRoot);
    const n = name('fail');
    const id = (await ok(['create', '--name', n, 'busybox', 'no-such-binary'])).trim();
    const before = await snapshotLeaks({ cgroupPrefix: id, processMarkers: [daemon.execRoot], mountFilter: roots });
    const r = await berth(['start', n]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /executable file not found/);
    const state = (await ok(['inspect', '-f', '{{.State.Status}}|{{.State.ExitCode}}|{{.State.Error}}', n])).trim().split('|');
    assert.equal(state[0], 'created');
    assert.equal(state[1], '127');
    assert.match(state[2]!, /executable file not found/);
    await ok(['rm', n]);
    await assertNoLeaksEventually(before);
  });

  test('berthd killed and restarted: the container keeps running, its log continues, its exit code is collected', async () => {
    const n = name('live');
    await ok(['run', '-d', '--name', n, 'busybox', 'sh', '-c', 'i=0; while [ $i -lt 30 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done; exit 42']);
    await until('a tick', async () => ((await ok(['logs', n])).includes('tick 1') ? true : undefined));
    await daemon.kill();
    await new Promise((r) => setTimeout(r, 500));
    daemon = await restartDaemon(daemon);
    const status = (await ok(['inspect', '-f', '{{.State.Status}}', n])).trim();
    assert.ok(status === 'running' || status === 'exited', status);
    const code = (await ok(['wait', n])).trim();
    assert.equal(code, '42');
    const logs = await ok(['logs', n]);
    assert.match(logs, /tick 29\n$/);
    assert.equal(logs.split('\n').filter(Boolean).length, 30);
    await ok(['rm', n]);
  });

  test('restart policies: on-failure retries up to its count; always comes back after a daemon restart', async () => {
    const f = name('onfail');
    await ok(['run', '-d', '--name', f, '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 1']);
    await until('two restarts', async () => {
      const [status, count] = (await ok(['inspect', '-f', '{{.State.Status}} {{.RestartCount}}', f])).trim().split(' ');
      return status === 'exited' && count === '2' ? true : undefined;
    }, 15_000);
    const a = name('always');
    await ok(['run', '-d', '--name', a, '--restart', 'always', 'busybox', 'sleep', '1000']);
    const pid = (await ok(['inspect', '-f', '{{.State.Pid}}', a])).trim();
    await daemon.stop();
    process.kill(Number(pid), 'SIGKILL');
    daemon = await restartDaemon(daemon);
    await until('the always container to run again', async () => {
      const [running, p] = (await ok(['inspect', '-f', '{{.State.Running}} {{.State.Pid}}', a])).trim().split(' ');
      return running === 'true' && p !== pid ? true : undefined;
    });
    await ok(['rm', '-f', f, a]);
  });

  test('a --rm container is removed after stop, as Docker does', async () => {
    const n = name('rmstop');
    await ok(['run', '-d', '--rm', '--name', n, 'busybox', 'sleep', '1000']);
    await ok(['stop', '-t', '1', n]);
    await until('the removal', async () => ((await ok(['ps', '-aq', '--filter', `name=${n}`])).trim() === '' ? true : undefined));
  });

  test('container and system prune remove the containers that are not running (by label when told) and unused networks', async () => {
    const exited = (await ok(['run', '-d', '--name', name('pr-a'), 'busybox', 'true'])).trim();
    const kept = (await ok(['run', '-d', '--name', name('pr-b'), '--label', 'keep=1', 'busybox', 'true'])).trim();
    const created = (await ok(['create', '--name', name('pr-c'), 'busybox', 'true'])).trim();
    const running = (await ok(['run', '-d', '--name', name('pr-d'), 'busybox', 'sleep', '60'])).trim();
    await until('both exited', async () => ((await ok(['ps', '-aq', '--no-trunc', '--filter', 'status=exited'])).includes(kept) && (await ok(['ps', '-aq', '--no-trunc', '--filter', 'status=exited'])).includes(exited) ? true : undefined));
    const out = await ok(['container', 'prune', '-f', '--filter', 'label!=keep']);
    assert.match(out, /^Deleted Containers:\n/);
    assert.ok(out.includes(exited) && out.includes(created), out);
    assert.ok(!out.includes(kept) && !out.includes(running), out);
    assert.match(out, /Total reclaimed space: \S+\n$/);
    const left = await ok(['ps', '-aq', '--no-trunc']);
    assert.ok(left.includes(kept) && left.includes(running) && !left.includes(exited) && !left.includes(created), left);
    assert.equal((await berth(['container', 'prune', '-f', '--filter', 'color=red'])).code, 1, 'an unknown filter is refused');
    // system prune: the kept one (stopped), and an unused network, go too; the running one stays
    await ok(['network', 'create', name('pr-net')]);
    const sys = await ok(['system', 'prune', '-f']);
    assert.ok(sys.includes(`Deleted Containers:\n${kept}\n`), sys);
    assert.ok(sys.includes(`Deleted Networks:\n${name('pr-net')}\n`), sys);
    assert.match(sys, /Total reclaimed space: /);
    assert.equal((await ok(['ps', '-aq', '--no-trunc'])).trim(), running);
    await ok(['rm', '-f', running]);
  });

  test('as Docker: -w a directory the image lacks is made; --add-host NAME:host-gateway is the default bridge', async () => {
    assert.equal(await ok(['run', '--rm', '-w', '/made/by/start', 'busybox', 'sh', '-c', 'pwd; stat -c "%u:%g %a" .']), '/made/by/start\n0:0 755\n');
    const notDir = await berth(['run', '--rm', '-w', '/etc/passwd', 'busybox', 'true']);
    assert.equal(notDir.code, 125, notDir.stderr);
    assert.match(notDir.stderr, /\/etc\/passwd.*not a directory/);
    const bridge = JSON.parse(await ok(['network', 'inspect', 'bridge'])) as { IPAM: { Config: { Gateway: string }[] } }[];
    const gw = bridge[0]!.IPAM.Config[0]!.Gateway;
    assert.equal(await ok(['run', '--rm', '--add-host', 'host.docker.internal:host-gateway', 'busybox', 'sh', '-c', 'grep host.docker.internal /etc/hosts']), `${gw}\thost.docker.internal\n`);
  });

  test('legacy links: the alias in /etc/hosts, ALIAS_* variables as Docker sets them; bad links refused', async () => {
    const target = name('lnk-x');
    await ok(['run', '-d', '--name', target, '-e', 'FOO=bar', '--expose', '80', '--expose', '53/udp', 'busybox', 'sleep', '60']);
    const ip = (JSON.parse(await ok(['inspect', target])) as { NetworkSettings: { IPAddress: string } }[])[0]!.NetworkSettings.IPAddress;
    const cur = name('lnk-cur');
    const out = await ok(['run', '--rm', '--name', cur, '--link', `${target}:db-1`, 'busybox', 'sh', '-c', 'env | grep ^DB_1_ | sort; grep db-1 /etc/hosts']);
    const lines = out.trim().split('\n');
    assert.deepEqual(lines.slice(0, -1), [
      'DB_1_ENV_FOO=bar', `DB_1_NAME=/${cur}/db-1`, `DB_1_PORT=udp://${ip}:53`,
      `DB_1_PORT_53_UDP=udp://${ip}:53`, `DB_1_PORT_53_UDP_ADDR=${ip}`, 'DB_1_PORT_53_UDP_PORT=53', 'DB_1_PORT_53_UDP_PROTO=udp',
      `DB_1_PORT_80_TCP=tcp://${ip}:80`, `DB_1_PORT_80_TCP_ADDR=${ip}`, 'DB_1_PORT_80_TCP_PORT=80', 'DB_1_PORT_80_TCP_PROTO=tcp',
    ]);
    assert.match(lines.at(-1)!, new RegExp(`^${ip.replace(/\./g, '\\.')}\tdb-1 [0-9a-f]{12} ${target}$`));
    const c2 = name('lnk-c2');
    await ok(['create', '--name', c2, '--link', target, 'busybox', 'true']);
    assert.equal(await ok(['inspect', '-f', '{{json .HostConfig.Links}}', c2]), `["/${target}:/${c2}/${target}"]\n`);
    await ok(['rm', c2]);
    const missing = await berth(['run', '--rm', '--link', 'no-such-ctr:y', 'busybox', 'true']);
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /could not get container for no-such-ctr: No such container: no-such-ctr/);
    const host = await berth(['run', '--rm', '--network', 'host', '--link', `${target}:y`, 'busybox', 'true']);
    assert.match(host.stderr, /host type networking can't be used with links/);
    await ok(['stop', '-t', '0', target]);
    const stopped = await berth(['run', '--rm', '--link', `${target}:y`, 'busybox', 'true']);
    assert.equal(stopped.code, 125);
    assert.match(stopped.stderr, new RegExp(`Cannot link to a non running container: /${target} AS /\\S+/y`));
    await ok(['rm', target]);
  });

  test("the user's primary group is a supplementary group too, as Docker sets it", async () => {
    assert.equal(await ok(['run', '--rm', '-u', '12345:12345', 'busybox', 'id']), 'uid=12345 gid=12345 groups=12345\n');
    assert.equal(await ok(['run', '--rm', '--group-add', '7', 'busybox', 'id']), 'uid=0(root) gid=0(root) groups=0(root),7\n');
    assert.equal(await ok(['run', '--rm', '-u', 'nobody', 'busybox', 'id']), 'uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)\n');
  });

  test("Docker's answers for a bad signal, stop signal, capability and logging driver; --log-driver none keeps no log", async () => {
    const bad = async (args: string[], code: number, text: RegExp): Promise<void> => {
      const r = await berth(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, text);
    };
    await bad(['kill', '-s', 'NOPE', 'no-such-container'], 1, /Invalid signal: NOPE/);
    await bad(['run', '--rm', '--stop-signal', 'NOPE', 'busybox', 'true'], 125, /Invalid signal: NOPE/);
    await bad(['run', '--rm', '--cap-add', 'NOPE', 'busybox', 'true'], 125, /invalid CapAdd: unknown capability: "CAP_NOPE"/);
    await bad(['run', '--rm', '--log-driver', 'nope', 'busybox', 'true'], 125, /error looking up logging plugin nope: plugin "nope" not found/);
    await bad(['run', '--rm', '--log-driver', 'syslog', 'busybox', 'true'], 125, /logging driver "syslog" is not supported/);
    assert.equal(await ok(['run', '--rm', '--log-driver', 'none', 'busybox', 'echo', 'hi']), 'hi\n', 'attach still gets the output');
    const n = name('nolog');
    const id = (await ok(['run', '-d', '--name', n, '--log-driver', 'none', 'busybox', 'echo', 'quiet'])).trim();
    await ok(['wait', id]);
    await bad(['logs', n], 1, /configured logging driver does not support reading/);
    assert.equal(existsSync(join(daemon.dataRoot, 'containers', id, `${id}-json.log`)), false, 'no log file');
    await ok(['rm', n]);
  });

  test('the json-file log is in Docker format on disk', async () => {
    const n = name('log');
    const id = (await ok(['run', '-d', '--name', n, 'busybox', 'sh', '-c', 'echo a; echo b >&2'])).trim();
    await ok(['wait', n]);
    const file = `${daemon.dataRoot}/containers/${id}/${id}-json.log`;
    assert.ok(existsSync(file), file);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { log: string; stream: string; time: string });
    assert.deepEqual(lines.map((l) => [l.log, l.stream]).sort(), [['a\n', 'stdout'], ['b\n', 'stderr']]);
    for (const l of lines) assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    await ok(['rm', n]);
  });
});
