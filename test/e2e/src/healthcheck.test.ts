/**
 * Healthchecks through the berth CLI against a scratch berthd, as Docker runs them: the probe
 * runs as an exec every interval, State.Health keeps the status, the failing streak and the
 * last five results, ps shows and filters the health, events tell the changes; a timeout kills
 * the probe; the start period forgives failures; pause, stop and a daemon restart stop and
 * resume the monitor; probes leave no exec records, processes or runtime files behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { assertNoLeaksEventually, berthCli, busyboxImageTar, restartDaemon, snapshotLeaks, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
const cli = berthCli(() => daemon.host, { timeoutMs: 30_000 });
const berth = cli.run;
const ok = cli.ok;

const name = (what: string): string => `e2e-hc-${what}-${process.pid}`;

interface Health {
  Status: string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

async function health(n: string): Promise<Health | null> {
  return JSON.parse(await ok(['inspect', '-f', '{{json .State.Health}}', n])) as Health | null;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const statusIs = (n: string, status: string) => async (): Promise<Health | undefined> => {
  const h = await health(n);
  return h?.Status === status ? h : undefined;
};

/** exec-* files the runtime keeps in the container's state dir. */
function execFiles(id: string): string[] {
  try {
    return readdirSync(join(daemon.execRoot, 'runtime', id)).filter((f) => f.startsWith('exec-'));
  } catch {
    return [];
  }
}

/** A raw Engine API call on the daemon's socket (forms the CLI cannot send). */
function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: daemon.socket, method, path, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('healthchecks', { timeout: 60_000 }, () => {
  before(async () => {
    daemon = await startDaemon({ network: false });
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    await daemon.stop();
    await daemon.cleanup();
  });

  test('a passing probe: starting, then healthy in inspect, ps and its filter; probes leave nothing behind', async () => {
    // Before the first probe (an interval of a minute): starting, with an empty log.
    const s = name('starting');
    await ok(['run', '-d', '--name', s, '--health-cmd', 'true', '--health-interval', '1m', 'busybox', 'sleep', '60']);
    assert.deepEqual(await health(s), { Status: 'starting', FailingStreak: 0, Log: [] });
    assert.match(await ok(['ps', '--filter', `name=${s}`, '--format', '{{.Status}}']), /^Up .* \(health: starting\)\n$/);
    assert.equal(await ok(['ps', '--filter', 'health=starting', '--format', '{{.Names}}']), `${s}\n`);
    await ok(['rm', '-f', s]);
    const n = name('ok');
    const since = Math.floor(Date.now() / 1000);
    const id = (await ok(['run', '-d', '--name', n, '--health-cmd', 'echo hi', '--health-interval', '200ms', '--health-retries', '2', 'busybox', 'sleep', '60'])).trim();
    assert.deepEqual(JSON.parse(await ok(['inspect', '-f', '{{json .Config.Healthcheck}}', n])), { Test: ['CMD-SHELL', 'echo hi'], Interval: 200_000_000, Retries: 2 });
    const h = await until('healthy', statusIs(n, 'healthy'));
    assert.equal(h.FailingStreak, 0);
    assert.deepEqual(h.Log.at(-1) && { code: h.Log.at(-1)!.ExitCode, out: h.Log.at(-1)!.Output }, { code: 0, out: 'hi\n' });
    assert.match(await ok(['ps', '--filter', `name=${n}`, '--format', '{{.Status}}']), /^Up .* \(healthy\)\n$/);
    assert.equal(await ok(['ps', '-q', '--no-trunc', '--filter', 'health=healthy']), `${id}\n`);
    assert.equal(await ok(['ps', '-q', '--filter', `name=${n}`, '--filter', 'health=none']), '');
    const bad = await berth(['ps', '--filter', 'health=bogus']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /Unrecognised filter value for health: bogus/);
    // Seven or more probes later: five log entries, no exec in ExecIDs, no exec files kept.
    await until('7 probes', async () => ((await ok(['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000)), '--filter', `container=${n}`, '--filter', 'event=exec_die', '--format', '{{.Action}}'])).split('\n').filter(Boolean).length >= 7 ? true : undefined), 15_000);
    const later = await health(n);
    assert.equal(later?.Log.length, 5);
    assert.equal((await ok(['inspect', '-f', '{{json .ExecIDs}}', n])).trim(), 'null');
    // At most the probe in flight has its exec files and shim socket.
    assert.ok(execFiles(id).length <= 3, `exec files left: ${execFiles(id).join(' ')}`);
    const sockets = readdirSync(join(daemon.execRoot, 's'));
    assert.ok(sockets.length <= 2, `shim sockets: ${sockets.join(' ')}`);
    const events = (await ok(['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000)), '--filter', `container=${n}`, '--format', '{{.Action}}'])).split('\n');
    assert.deepEqual(events.filter((e) => e.startsWith('health_status')), ['health_status: healthy']);
    assert.ok(events.includes('exec_start: /bin/sh -c echo hi'), events.join('\n'));
    await ok(['rm', '-f', n]);
  });

  test('a failing probe turns unhealthy after Retries failures, with the event and the output', async () => {
    const n = name('bad');
    const since = Math.floor(Date.now() / 1000);
    await ok(['run', '-d', '--name', n, '--health-cmd', 'echo oops >&2; exit 3', '--health-interval', '100ms', '--health-retries', '2', 'busybox', 'sleep', '60']);
    const h = await until('unhealthy', statusIs(n, 'unhealthy'));
    assert.ok(h.FailingStreak >= 2, String(h.FailingStreak));
    assert.deepEqual({ code: h.Log.at(-1)!.ExitCode, out: h.Log.at(-1)!.Output }, { code: 3, out: 'oops\n' });
    assert.match(await ok(['ps', '--filter', `name=${n}`, '--format', '{{.Status}}']), /^Up .* \(unhealthy\)\n$/);
    assert.match(await ok(['ps', '--filter', 'health=unhealthy', '--format', '{{.Names}}']), new RegExp(n));
    const events = (await ok(['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000)), '--filter', `container=${n}`, '--filter', 'event=health_status', '--format', '{{.Action}}'])).trim();
    assert.equal(events, 'health_status: unhealthy');
    await ok(['rm', '-f', n]);
  });

  test('a probe past its timeout is killed and counts as a failure; no probe process is left', async () => {
    const n = name('slow');
    const leaks = await snapshotLeaks({
      processMarkers: [daemon.execRoot], stateDirs: [join(daemon.execRoot, 's'), join(daemon.execRoot, 'runtime')], netnsDirs: [],
      mountFilter: (mp) => mp.startsWith(daemon.dataRoot) || mp.startsWith(daemon.execRoot),
    });
    await ok(['run', '-d', '--name', n, '--health-cmd', 'sleep 7', '--health-interval', '100ms', '--health-timeout', '200ms', '--health-retries', '1', 'busybox', 'sleep', '60']);
    const h = await until('unhealthy', statusIs(n, 'unhealthy'));
    assert.deepEqual({ code: h.Log[0]!.ExitCode, out: h.Log[0]!.Output }, { code: -1, out: 'Health check exceeded timeout (200ms)' });
    const ms = Date.parse(h.Log[0]!.End) - Date.parse(h.Log[0]!.Start);
    assert.ok(ms >= 150 && ms < 3000, `probe took ${ms} ms`);
    // Killed: the container holds its own sleep and at most the probe in flight.
    const top = await ok(['top', n]);
    assert.ok(top.split('\n').filter((l) => l.includes('sleep 7')).length <= 1, top);
    await ok(['rm', '-f', n]);
    // No shim, probe process, socket or runtime file of the probes outlives the container.
    await assertNoLeaksEventually(leaks, 'probes of a removed container', 5000);
  });

  test('failures within the start period do not count', async () => {
    const n = name('grace');
    await ok(['run', '-d', '--name', n, '--health-cmd', 'false', '--health-interval', '100ms', '--health-start-period', '30s', '--health-start-interval', '100ms', '--health-retries', '1', 'busybox', 'sleep', '60']);
    const h = await until('3 results', async () => {
      const v = await health(n);
      return v && v.Log.length >= 3 ? v : undefined;
    });
    assert.equal(h.Status, 'starting');
    assert.equal(h.FailingStreak, 0);
    await ok(['rm', '-f', n]);
  });

  test('the CMD form runs without a shell; a command that cannot start is a failure with exit code -1 and the reason', async () => {
    const n = name('cmd');
    const made = await api('POST', `/v1.47/containers/create?name=${n}`, {
      Image: 'busybox', Cmd: ['sleep', '60'], Healthcheck: { Test: ['CMD', 'cat', '/etc/hostname'], Interval: 100_000_000 },
    });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    await ok(['start', n]);
    const h = await until('healthy', statusIs(n, 'healthy'));
    assert.equal(h.Log.at(-1)!.Output.trim(), (await ok(['inspect', '-f', '{{.Config.Hostname}}', n])).trim());
    const m = name('cmdbad');
    await api('POST', `/v1.47/containers/create?name=${m}`, {
      Image: 'busybox', Cmd: ['sleep', '60'], Healthcheck: { Test: ['CMD', 'no-such-probe'], Interval: 100_000_000, Retries: 1 },
    });
    await ok(['start', m]);
    const bad = await until('unhealthy', statusIs(m, 'unhealthy'));
    assert.equal(bad.Log[0]!.ExitCode, -1);
    assert.match(bad.Log[0]!.Output, /^OCI runtime exec failed: exec failed: unable to start container process: exec: "no-such-probe": executable file not found in \$PATH: unknown$/);
    for (const [hc, message] of [
      [{ Test: ['CMD', 'true'], Timeout: -1 }, 'Timeout in Healthcheck cannot be less than 1ms'],
      [{ Test: ['CMD', 'true'], Retries: -1 }, 'Retries in Healthcheck cannot be negative'],
    ] as const) {
      const r = await api('POST', '/v1.47/containers/create', { Image: 'busybox', Healthcheck: hc });
      assert.deepEqual([r.status, r.json], [400, { message }]);
    }
    await ok(['rm', '-f', n, m]);
  });

  test('--no-healthcheck and bad values: no State.Health; Docker\'s messages', async () => {
    const n = name('none');
    await ok(['run', '-d', '--name', n, '--no-healthcheck', 'busybox', 'sleep', '60']);
    assert.equal((await ok(['inspect', '-f', '{{json .State.Health}} {{json .Config.Healthcheck}}', n])).trim(), 'null {"Test":["NONE"]}');
    assert.match(await ok(['ps', '--filter', `name=${n}`, '--format', '{{.Status}}']), /^Up [^(]*\n$/);
    assert.equal((await ok(['ps', '-q', '--filter', `name=${n}`, '--filter', 'health=none'])).length > 0, true);
    await ok(['rm', '-f', n]);
    const tooShort = await berth(['create', '--health-cmd', 'true', '--health-interval', '500us', 'busybox']);
    assert.equal(tooShort.code, 1);
    assert.match(tooShort.stderr, /Interval in Healthcheck cannot be less than 1ms/);
    const negative = await berth(['create', '--health-timeout', '-1s', 'busybox']);
    assert.equal(negative.code, 125);
    assert.match(negative.stderr, /--health-timeout cannot be negative/);
    const both = await berth(['create', '--no-healthcheck', '--health-cmd', 'true', 'busybox']);
    assert.match(both.stderr, /--no-healthcheck conflicts with --health-\* options/);
    const garbage = await berth(['create', '--health-interval', '5', 'busybox']);
    assert.match(garbage.stderr, /invalid argument "5" for "--health-interval" flag: time: missing unit in duration "5"/);
  });

  test('an image\'s healthcheck applies; the container\'s fields override it one by one; --no-healthcheck disables it', async () => {
    const src = name('src');
    const img = `e2e-hc-img-${process.pid}`;
    await ok(['create', '--name', src, '--health-cmd', 'echo from-image', '--health-interval', '100ms', '--health-retries', '5', 'busybox', 'sleep', '60']);
    await ok(['commit', src, img]);
    await ok(['rm', src]);
    const a = name('img');
    await ok(['run', '-d', '--name', a, img]);
    const h = await until('healthy', statusIs(a, 'healthy'));
    assert.equal(h.Log.at(-1)!.Output, 'from-image\n');
    const b = name('imgover');
    await ok(['create', '--name', b, '--health-retries', '1', img]);
    assert.deepEqual(JSON.parse(await ok(['inspect', '-f', '{{json .Config.Healthcheck}}', b])), { Test: ['CMD-SHELL', 'echo from-image'], Interval: 100_000_000, Retries: 1 });
    const c = name('imgnone');
    await ok(['run', '-d', '--name', c, '--no-healthcheck', img]);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await ok(['inspect', '-f', '{{json .State.Health}}', c])).trim(), 'null');
    await ok(['rm', '-f', a, b, c]);
    await ok(['rmi', img]);
  });

  test('pause stops probing (unhealthy, as Docker); unpause, stop and start resume it; a daemon restart resumes it', async () => {
    const n = name('cycle');
    await ok(['run', '-d', '--name', n, '--health-cmd', 'true', '--health-interval', '100ms', 'busybox', 'sleep', '60']);
    await until('healthy', statusIs(n, 'healthy'));
    await ok(['pause', n]);
    const paused = await health(n);
    assert.equal(paused?.Status, 'unhealthy');
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual((await health(n))?.Log.map((l) => l.Start), paused.Log.map((l) => l.Start), 'no probe while paused');
    await ok(['unpause', n]);
    await until('healthy after unpause', statusIs(n, 'healthy'));
    await ok(['stop', '-t', '0', n]);
    assert.equal((await health(n))?.Status, 'unhealthy');
    assert.match(await ok(['ps', '-a', '--filter', `name=${n}`, '--format', '{{.Status}}']), /^Exited \(137\)/);
    await ok(['start', n]);
    const restarted = await health(n);
    assert.equal(restarted?.Status, 'starting');
    assert.equal(restarted.FailingStreak, 0);
    await until('healthy after start', statusIs(n, 'healthy'));
    await daemon.kill();
    daemon = await restartDaemon(daemon, { network: false });
    const before = (await health(n))!;
    assert.equal(before.Status, 'healthy');
    await until('a probe after the daemon restart', async () => {
      const h = await health(n);
      return h && h.Log.at(-1)!.Start > before.Log.at(-1)!.Start ? true : undefined;
    });
    await ok(['rm', '-f', n]);
  });
});
