/**
 * json-file log rotation through the berth CLI (Docker's --log-opt max-size / max-file): at most
 * max-file files on disk, each within max-size, `logs` (with --tail, and -f across rotations)
 * gives the last lines in order, bad options are 400s with dockerd's words, rm leaves no file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { berthCli, busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
const cli = berthCli(() => daemon.host, { timeoutMs: 30_000 });
const berth = cli.run;
const ok = cli.ok;
const name = (what: string): string => `e2e-rot-${what}-${process.pid}`;
const seq = (from: number, to: number): string => Array.from({ length: to - from + 1 }, (_, i) => `line-${from + i}\n`).join('');

function logFiles(logPath: string): string[] {
  const base = basename(logPath);
  return readdirSync(dirname(logPath)).filter((f) => f === base || (f.startsWith(`${base}.`) && /^\d+$/.test(f.slice(base.length + 1)))).sort();
}

describe('json-file log rotation', { timeout: 120_000 }, () => {
  before(async () => {
    daemon = await startDaemon();
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    await daemon.cleanup();
  });

  test('max-size=1k max-file=3: three files within the limit, logs and --tail give the last lines in order; rm removes them', async () => {
    const n = name('three');
    const r = await berth(['run', '--name', n, '--log-opt', 'max-size=1k', '--log-opt', 'max-file=3', 'busybox', 'sh', '-c', 'for i in $(seq 500); do echo line-$i; done']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, seq(1, 500), 'the attached output is whole');
    const logPath = (await ok(['inspect', '-f', '{{.LogPath}}', n])).trim();
    const base = basename(logPath);
    assert.deepEqual(logFiles(logPath), [base, `${base}.1`, `${base}.2`]);
    for (const f of logFiles(logPath)) assert.ok(statSync(`${dirname(logPath)}/${f}`).size <= 1024, f);
    const logs = await ok(['logs', n]);
    const count = logs.split('\n').filter(Boolean).length;
    assert.ok(count > 25 && count < 60, `${count} lines`);
    assert.equal(logs, seq(500 - count + 1, 500), 'the last lines, in order, across the three files');
    assert.equal(await ok(['logs', '--tail', '5', n]), seq(496, 500));
    assert.equal(await ok(['logs', '--tail', String(count - 2), n]), seq(500 - count + 3, 500));
    await ok(['rm', n]);
    assert.equal(existsSync(logPath), false);
    assert.equal(existsSync(`${logPath}.1`), false);
    assert.equal(existsSync(dirname(logPath)), false, 'the container directory is gone with the rotated files');
  });

  test('logs -f follows across rotations without losing or repeating lines', async () => {
    const n = name('follow');
    await ok(['run', '-d', '--name', n, '--log-opt', 'max-size=1k', '--log-opt', 'max-file=2', 'busybox', 'sh', '-c',
      // A rotation every ~12 lines, ~250 ms apart: the reader (polling every 50 ms) sees each one.
      'sleep 1; for i in $(seq 200); do echo line-$i; [ $((i % 5)) = 0 ] && sleep 0.1; done; true']);
    const follow = await berth(['logs', '-f', n]);
    assert.equal(follow.code, 0, follow.stderr);
    assert.equal(follow.stdout, seq(1, 200));
    const logPath = (await ok(['inspect', '-f', '{{.LogPath}}', n])).trim();
    assert.ok(logFiles(logPath).length <= 2);
    await ok(['rm', n]);
  });

  test('max-file 1 truncates: only the newest lines remain', async () => {
    const n = name('one');
    await ok(['run', '--name', n, '--log-opt', 'max-size=1k', 'busybox', 'sh', '-c', 'for i in $(seq 200); do echo line-$i; done']);
    const logPath = (await ok(['inspect', '-f', '{{.LogPath}}', n])).trim();
    assert.deepEqual(logFiles(logPath), [basename(logPath)]);
    const logs = await ok(['logs', n]);
    const count = logs.split('\n').filter(Boolean).length;
    assert.ok(count > 5 && count < 20, `${count}`);
    assert.equal(logs, seq(200 - count + 1, 200));
    await ok(['rm', n]);
  });

  test('bad options are refused at create with 400s in dockerd words', async () => {
    const cases: [string[], RegExp][] = [
      [['max-size=0'], /max-size must be a positive number/],
      [['max-size=-1'], /invalid size: '-1'/],
      [['max-size=abc'], /invalid size: 'abc'/],
      [['max-size=1k', 'max-file=0'], /max-file cannot be less than 1/],
      [['max-file=abc'], /strconv.Atoi: parsing "abc": invalid syntax/],
      [['max-size=1k', 'max-file=3', 'compress=true'], /Berth does not compress rotated logs/],
      [['foo=bar'], /unknown log opt 'foo' for json-file log driver/],
    ];
    for (const [opts, re] of cases) {
      const r = await berth(['create', ...opts.flatMap((o) => ['--log-opt', o]), 'busybox', 'true']);
      assert.notEqual(r.code, 0, opts.join(' '));
      assert.match(r.stderr, re);
    }
    const created = (await ok(['create', '--log-opt', 'max-size=10m', '--log-opt', 'max-file=3', '--log-opt', 'compress=false', '--log-opt', 'tag=x', '--log-opt', 'labels=a', 'busybox', 'true'])).trim();
    assert.equal((await ok(['inspect', '-f', '{{index .HostConfig.LogConfig.Config "max-size"}}', created])).trim(), '10m');
    await ok(['rm', created]);
  });
});
