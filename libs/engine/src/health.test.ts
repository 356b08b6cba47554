import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerConfig, ContainerState } from '@berth/api';
import { BerthError } from '@berth/errors';
import { mergeImageConfig, normaliseConfig } from './config.js';
import {
  applyProbeResult,
  checkHealthFilter,
  FrameReader,
  goDuration,
  healthFilterValue,
  LimitedOutput,
  mergeHealthcheck,
  nextProbeDelayMs,
  probeCommand,
  validateHealthcheck,
  withHealthText,
  type HealthState,
} from './health.js';
import { rfc3339Nano } from './time.js';

const S = 1_000_000_000;

test('validation answers with Docker\'s texts: durations below 1ms (negative too), negative retries', () => {
  const cases: [object, string][] = [
    [{ Interval: -1 }, 'Interval in Healthcheck cannot be less than 1ms'],
    [{ Interval: 999_999 }, 'Interval in Healthcheck cannot be less than 1ms'],
    [{ Timeout: 5 }, 'Timeout in Healthcheck cannot be less than 1ms'],
    [{ Retries: -1 }, 'Retries in Healthcheck cannot be negative'],
    [{ StartPeriod: -5 }, 'StartPeriod in Healthcheck cannot be less than 1ms'],
    [{ StartInterval: 10 }, 'StartInterval in Healthcheck cannot be less than 1ms'],
  ];
  for (const [hc, message] of cases) {
    assert.throws(() => validateHealthcheck(hc), (err: unknown) => err instanceof BerthError && err.code === 'BERTH_INVALID_ARGUMENT' && err.message === message, JSON.stringify(hc));
    assert.throws(() => normaliseConfig({ Image: 'busybox', Healthcheck: hc }), { message });
  }
  validateHealthcheck({ Test: ['CMD', 'true'], Interval: 1_000_000, Timeout: 0, Retries: 0, StartPeriod: 0 });
});

test('the image\'s healthcheck fills what the container leaves unset; NONE disables', () => {
  const image = { Test: ['CMD-SHELL', 'curl -f localhost'], Interval: 5 * S, Timeout: 2 * S, Retries: 4, StartPeriod: 7 * S };
  assert.deepEqual(mergeHealthcheck(undefined, image), image);
  assert.deepEqual(mergeHealthcheck({ Interval: S }, image), { ...image, Interval: S });
  assert.deepEqual(mergeHealthcheck({ Test: ['CMD', 'true'], Retries: 1 }, image), { ...image, Test: ['CMD', 'true'], Retries: 1 });
  assert.deepEqual(mergeHealthcheck({ Test: ['NONE'] }, image), { ...image, Test: ['NONE'] });
  assert.deepEqual(mergeHealthcheck({ Test: ['CMD', 'x'] }, undefined), { Test: ['CMD', 'x'] });
  // Through the create path: the body's null fields are dropped before the merge.
  const cfg = normaliseConfig({ Image: 'busybox', Healthcheck: { Test: null, Interval: 2 * S, Timeout: 0 } as never });
  assert.deepEqual(mergeImageConfig(cfg, { Healthcheck: image }).Healthcheck, { ...image, Interval: 2 * S });
  const none = mergeImageConfig(normaliseConfig({ Image: 'busybox', Healthcheck: { Test: ['NONE'] } }), { Healthcheck: image });
  assert.equal(probeCommand(none), null);
});

test('probe commands: CMD as is, CMD-SHELL through the shell (the config\'s or /bin/sh -c); NONE, empty and unknown kinds have none', () => {
  const cfg = (Test: string[] | undefined, Shell?: string[]): ContainerConfig => ({ Healthcheck: Test ? { Test } : undefined, ...(Shell ? { Shell } : {}) }) as unknown as ContainerConfig;
  assert.deepEqual(probeCommand(cfg(['CMD', 'cat', '/x'])), ['cat', '/x']);
  assert.deepEqual(probeCommand(cfg(['CMD-SHELL', 'exit 1'])), ['/bin/sh', '-c', 'exit 1']);
  assert.deepEqual(probeCommand(cfg(['CMD-SHELL', 'exit 1'], ['/bin/ash', '-ec'])), ['/bin/ash', '-ec', 'exit 1']);
  for (const t of [['NONE'], [], ['BOGUS', 'x'], ['CMD']]) assert.equal(probeCommand(cfg(t)), null, JSON.stringify(t));
  assert.equal(probeCommand(cfg(undefined)), null);
});

const result = (startNs: bigint, code: number): { Start: string; End: string; ExitCode: number; Output: string } => ({
  Start: rfc3339Nano(startNs), End: rfc3339Nano(startNs + 1000n), ExitCode: code, Output: '',
});

test('results: healthy on 0, unhealthy after Retries failures in a row (default 3), a success resets the streak; five kept', () => {
  const started = 1_700_000_000n * 1_000_000_000n;
  const h: HealthState = { Status: 'starting', FailingStreak: 0, Log: [] };
  const seen: (string | null)[] = [];
  for (let i = 0; i < 3; i++) seen.push(applyProbeResult(h, result(started + BigInt(i + 1) * 1_000_000_000n, 1), {}, started));
  assert.deepEqual(seen, [null, null, 'unhealthy']);
  assert.equal(h.FailingStreak, 3);
  assert.equal(applyProbeResult(h, result(started + 10n * 1_000_000_000n, 0), {}, started), 'healthy');
  assert.equal(h.FailingStreak, 0);
  assert.equal(applyProbeResult(h, result(started + 11n * 1_000_000_000n, 2), { Retries: 2 }, started), null);
  assert.equal(applyProbeResult(h, result(started + 12n * 1_000_000_000n, -1), { Retries: 2 }, started), 'unhealthy');
  assert.equal(h.Log.length, 5);
  assert.equal(h.Log.at(-1)!.ExitCode, -1);
});

test('failures in the start period do not count while starting; after it, or once healthy, they do', () => {
  const started = 1_700_000_000n * 1_000_000_000n;
  const cfg = { StartPeriod: 10 * S, Retries: 1 };
  const h: HealthState = { Status: 'starting', FailingStreak: 0, Log: [] };
  assert.equal(applyProbeResult(h, result(started + 5n * 1_000_000_000n, 1), cfg, started), null);
  assert.deepEqual([h.Status, h.FailingStreak], ['starting', 0]);
  assert.equal(applyProbeResult(h, result(started + 11n * 1_000_000_000n, 1), cfg, started), 'unhealthy');
  const healthy: HealthState = { Status: 'healthy', FailingStreak: 0, Log: [] };
  assert.equal(applyProbeResult(healthy, result(started + 1n * 1_000_000_000n, 1), cfg, started), 'unhealthy');
});

test('the next probe: Interval (default 30s); StartInterval (default 5s) while starting within the start period', () => {
  assert.equal(nextProbeDelayMs({}, 'starting', 0), 30_000);
  assert.equal(nextProbeDelayMs({ Interval: S / 4 }, 'starting', 0), 250);
  assert.equal(nextProbeDelayMs({ Interval: S, StartPeriod: 60 * S }, 'starting', 5 * S), 5000);
  assert.equal(nextProbeDelayMs({ Interval: S, StartPeriod: 60 * S, StartInterval: S / 10 }, 'starting', 5 * S), 100);
  assert.equal(nextProbeDelayMs({ Interval: S, StartPeriod: 60 * S, StartInterval: S / 10 }, 'healthy', 5 * S), 1000);
  assert.equal(nextProbeDelayMs({ Interval: S, StartPeriod: 60 * S, StartInterval: S / 10 }, 'starting', 61 * S), 1000);
  assert.equal(nextProbeDelayMs({ Interval: 1_000_000 }, 'starting', 0), 1);
});

test('output: the first 4096 bytes, "..." when cut; frames of stdout and stderr joined, split anywhere', () => {
  const out = new LimitedOutput();
  out.write(Buffer.alloc(4000, 'a'));
  out.write(Buffer.alloc(200, 'b'));
  const text = out.toString();
  assert.equal(text.length, 4096 + 3);
  assert.ok(text.endsWith('b'.repeat(96) + '...'));
  const small = new LimitedOutput();
  small.write(Buffer.from('ok\n'));
  assert.equal(small.toString(), 'ok\n');

  const frame = (stream: number, s: string): Buffer => {
    const h = Buffer.alloc(8);
    h[0] = stream;
    h.writeUInt32BE(Buffer.byteLength(s), 4);
    return Buffer.concat([h, Buffer.from(s)]);
  };
  const all = Buffer.concat([frame(1, 'hello '), frame(2, 'world'), frame(1, '\n')]);
  for (let cut = 0; cut <= all.length; cut++) {
    const got: Buffer[] = [];
    const r = new FrameReader((p) => got.push(Buffer.from(p)));
    r.push(all.subarray(0, cut));
    r.push(all.subarray(cut));
    assert.equal(Buffer.concat(got).toString(), 'hello world\n', `cut at ${cut}`);
  }
});

test('Go durations as the timeout message shows them', () => {
  assert.equal(goDuration(200_000_000), '200ms');
  assert.equal(goDuration(30 * S), '30s');
  assert.equal(goDuration(1.5 * S), '1.5s');
  assert.equal(goDuration(120 * S), '2m0s');
  assert.equal(goDuration(3600 * S + 1), '1h0m0.000000001s');
  assert.equal(goDuration(1_000_000), '1ms');
  assert.equal(goDuration(1500), '1.5µs');
  assert.equal(goDuration(0), '0s');
});

test('ps: Status gets (health: starting)/(healthy)/(unhealthy) when running, not paused; the health filter', () => {
  const st = (extra: Partial<ContainerState>, Health?: HealthState): ContainerState =>
    ({ Status: 'running', Running: true, Paused: false, Restarting: false, ...extra, ...(Health ? { Health } : {}) }) as ContainerState;
  const h = (Status: HealthState['Status']): HealthState => ({ Status, FailingStreak: 0, Log: [] });
  assert.equal(withHealthText('Up 5 seconds', st({}, h('starting'))), 'Up 5 seconds (health: starting)');
  assert.equal(withHealthText('Up 5 seconds', st({}, h('healthy'))), 'Up 5 seconds (healthy)');
  assert.equal(withHealthText('Up 5 seconds', st({}, h('unhealthy'))), 'Up 5 seconds (unhealthy)');
  assert.equal(withHealthText('Up 5 seconds (Paused)', st({ Paused: true }, h('unhealthy'))), 'Up 5 seconds (Paused)');
  assert.equal(withHealthText('Exited (0) 1 second ago', st({ Running: false }, h('unhealthy'))), 'Exited (0) 1 second ago');
  assert.equal(withHealthText('Up 5 seconds', st({})), 'Up 5 seconds');
  assert.equal(healthFilterValue(st({})), 'none');
  assert.equal(healthFilterValue(st({}, h('healthy'))), 'healthy');
  checkHealthFilter(new Set(['starting', 'healthy', 'unhealthy', 'none']));
  assert.throws(() => checkHealthFilter(new Set(['bogus'])), { message: 'Unrecognised filter value for health: bogus' });
});
