import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '@berth/errors';
import { jsonFileLogLimits, logRotation, normaliseHostConfig } from './config.js';

const host = (Config: Record<string, string>, Type?: string): ReturnType<typeof normaliseHostConfig> =>
  normaliseHostConfig({ LogConfig: { Type: Type ?? 'json-file', Config } } as never);

function refused(Config: Record<string, string>, message: string): void {
  assert.throws(
    () => host(Config),
    (e: unknown) => e instanceof BerthError && e.code === 'BERTH_INVALID_ARGUMENT' && e.message === message,
    JSON.stringify(Config),
  );
}

test('max-size as go-units RAMInBytes, max-file as Atoi, with dockerd 20.10 texts', () => {
  assert.deepEqual(jsonFileLogLimits({ 'max-size': '10m', 'max-file': '3' }), { maxSize: 10 * 1024 * 1024, maxFiles: 3 });
  assert.deepEqual(jsonFileLogLimits({ 'max-size': '1k' }), { maxSize: 1024, maxFiles: 1 });
  assert.deepEqual(jsonFileLogLimits({ 'max-size': '512' }), { maxSize: 512, maxFiles: 1 });
  assert.deepEqual(jsonFileLogLimits({ 'max-size': '1.5kb', 'max-file': '+2' }), { maxSize: 1536, maxFiles: 2 });
  assert.deepEqual(jsonFileLogLimits({ 'max-size': '2 GiB' }), { maxSize: 2 * 1024 ** 3, maxFiles: 1 });
  assert.deepEqual(jsonFileLogLimits({}), { maxSize: 0, maxFiles: 1 });
  refused({ 'max-size': '0' }, 'max-size must be a positive number');
  refused({ 'max-size': '-1' }, "invalid size: '-1'");
  refused({ 'max-size': 'abc' }, "invalid size: 'abc'");
  refused({ 'max-size': '1k', 'max-file': '0' }, 'max-file cannot be less than 1');
  refused({ 'max-size': '1k', 'max-file': '-1' }, 'max-file cannot be less than 1');
  refused({ 'max-file': 'abc' }, 'strconv.Atoi: parsing "abc": invalid syntax');
  refused({ 'max-size': '1k', compress: 'maybe' }, 'strconv.ParseBool: parsing "maybe": invalid syntax');
  refused({ foo: 'bar' }, "unknown log opt 'foo' for json-file log driver");
  assert.throws(() => host({ 'max-size': '1k', 'max-file': '3', compress: 'true' }), /Berth does not compress rotated logs/);
});

test('accepted options are stored as given; the attrs options are accepted; none ignores options', () => {
  const opts = { 'max-size': '1k', 'max-file': '3', compress: 'false', labels: 'a', 'labels-regex': 'a', env: 'X', 'env-regex': 'X', tag: 't' };
  assert.deepEqual(host(opts).LogConfig, { Type: 'json-file', Config: opts });
  assert.deepEqual(host({ 'max-file': '3' }).LogConfig.Config, { 'max-file': '3' }, 'max-file without max-size: accepted as dockerd does');
  assert.deepEqual(host({ 'max-size': 'x' }, 'none').LogConfig.Type, 'none');
  assert.deepEqual(normaliseHostConfig({} as never).LogConfig, { Type: 'json-file', Config: {} });
});

test('logRotation: the shim limits, none without max-size or for options that do not pass', () => {
  assert.deepEqual(logRotation({ 'max-size': '1k', 'max-file': '3' }), { logMaxSize: 1024, logMaxFiles: 3 });
  assert.deepEqual(logRotation({ 'max-size': '10m' }), { logMaxSize: 10 * 1024 * 1024, logMaxFiles: 1 });
  assert.deepEqual(logRotation({ 'max-file': '3' }), {});
  assert.deepEqual(logRotation({ 'max-size': 'junk' }), {});
});
