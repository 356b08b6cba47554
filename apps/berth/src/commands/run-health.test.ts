import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs } from '../cli/args.js';
import { buildCreateBody, commands as runCommands, parseGoDuration } from './run.js';

const body = (args: string[]) => buildCreateBody(parseArgs(runCommands.run!.spec, [...args, 'busybox']), true);

test('healthcheck flags become Config.Healthcheck as docker sends it: only what was set, durations in nanoseconds', () => {
  assert.equal(body([]).Healthcheck, undefined);
  assert.deepEqual(body(['--health-cmd', 'curl -f localhost', '--health-interval', '1s', '--health-timeout', '500ms', '--health-retries', '2', '--health-start-period', '1m30s', '--health-start-interval', '2s']).Healthcheck, {
    Test: ['CMD-SHELL', 'curl -f localhost'], Interval: 1e9, Timeout: 5e8, StartPeriod: 90e9, StartInterval: 2e9, Retries: 2,
  });
  assert.deepEqual(body(['--health-interval', '2s']).Healthcheck, { Interval: 2e9 });
  assert.deepEqual(body(['--no-healthcheck']).Healthcheck, { Test: ['NONE'] });
  assert.deepEqual(buildCreateBody(parseArgs(runCommands.create!.spec, ['--health-cmd', 'true', 'busybox']), true).Healthcheck, { Test: ['CMD-SHELL', 'true'] });
});

test('healthcheck flags refused as docker refuses them', () => {
  assert.throws(() => body(['--no-healthcheck', '--health-cmd', 'true']), { message: '--no-healthcheck conflicts with --health-* options' });
  assert.throws(() => body(['--health-interval', '-1s']), { message: '--health-interval cannot be negative' });
  assert.throws(() => body(['--health-timeout', '-1s']), { message: '--health-timeout cannot be negative' });
  assert.throws(() => body(['--health-retries', '-1']), { message: '--health-retries cannot be negative' });
  assert.throws(() => body(['--health-start-period', '-1s']), { message: '--health-start-period cannot be negative' });
  assert.throws(() => body(['--health-interval', '5']), { message: 'invalid argument "5" for "--health-interval" flag: time: missing unit in duration "5"' });
  assert.throws(() => body(['--health-interval', 'soon']), { message: 'invalid argument "soon" for "--health-interval" flag: time: invalid duration "soon"' });
  assert.throws(() => body(['--health-interval', '5d']), { message: 'invalid argument "5d" for "--health-interval" flag: time: unknown unit "d" in duration "5d"' });
});

test('Go durations', () => {
  const cases: [string, number][] = [['0', 0], ['1ns', 1], ['1.5s', 1.5e9], ['-2m', -120e9], ['1h2m3s', 3723e9], ['300ms', 3e8], ['10us', 1e4], ['10µs', 1e4], ['.5s', 5e8], ['+1s', 1e9]];
  for (const [text, ns] of cases) assert.equal(parseGoDuration(text), ns, text);
  for (const bad of ['', '-', 's', '.s', '1', '1x']) assert.equal(typeof parseGoDuration(bad), 'object', bad);
});
