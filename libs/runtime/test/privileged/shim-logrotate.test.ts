/**
 * berth-shim rotating the json-file log (Docker's max-size / max-file) on the real kernel:
 * at most max-file files, each within max-size (one record of slack), holding the last lines.
 * Root only.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ShimClient } from '../../src/index.js';
import { setup, readLog } from './shim-helpers.js';

const env = await setup('rot');
const { rt, uniq } = env;
after(() => env.dispose());

/** The log files of logFile, oldest first (`<log>.{N-1}` ... `<log>.1`, `<log>`). */
function logFiles(logFile: string): string[] {
  const base = basename(logFile);
  const rotated = readdirSync(dirname(logFile))
    .filter((f) => f.startsWith(`${base}.`) && /^\d+$/.test(f.slice(base.length + 1)))
    .map((f) => Number(f.slice(base.length + 1)))
    .sort((a, b) => b - a)
    .map((n) => `${logFile}.${n}`);
  return [...rotated, logFile];
}

test('max-size 1k, max-file 3: three files, each within the limit, holding the last lines in order', async () => {
  const id = `rot3-${uniq}`;
  const io = env.io('rot3', { logMaxSize: 1024, logMaxFiles: 3 });
  await rt.create(id, env.bundle('rot3', 'i=1; while [ $i -le 500 ]; do echo line-$i; i=$((i+1)); done'), { io });
  await rt.start(id);
  assert.equal(await ShimClient.wait(io.socket, rt.exitFile(id)), 0);
  const files = logFiles(io.logFile);
  assert.deepEqual(files, [`${io.logFile}.2`, `${io.logFile}.1`, io.logFile], 'exactly <log>.2, <log>.1 and <log>');
  assert.equal(existsSync(`${io.logFile}.3`), false);
  const record = 100; // a line-NNN record is about 80 bytes
  for (const f of files) assert.ok(statSync(f).size <= 1024, `${f}: ${statSync(f).size} bytes`);
  for (const f of files.slice(0, 2)) assert.ok(statSync(f).size > 1024 - record, `${f} was filled before rotating`);
  const lines = files.flatMap((f) => readLog(f).map((e) => e.log));
  assert.ok(lines.length >= 25 && lines.length < 60, `${lines.length} lines kept`);
  const first = 500 - lines.length + 1;
  assert.deepEqual(lines, Array.from({ length: lines.length }, (_, i) => `line-${first + i}\n`), 'the last lines, in order, none lost between files');
  await rt.delete(id);
});

test('max-file 1: the one file is truncated and holds the newest lines', async () => {
  const id = `rot1-${uniq}`;
  const io = env.io('rot1', { logMaxSize: 1024, logMaxFiles: 1 });
  await rt.create(id, env.bundle('rot1', 'i=1; while [ $i -le 200 ]; do echo line-$i; i=$((i+1)); done'), { io });
  await rt.start(id);
  assert.equal(await ShimClient.wait(io.socket, rt.exitFile(id)), 0);
  assert.deepEqual(logFiles(io.logFile), [io.logFile]);
  assert.ok(statSync(io.logFile).size <= 1024);
  const lines = readLog(io.logFile).map((e) => e.log);
  assert.equal(lines.at(-1), 'line-200\n');
  assert.ok(lines.length > 5 && lines.length < 20, `${lines.length} lines`);
  const first = 200 - lines.length + 1;
  assert.deepEqual(lines, Array.from({ length: lines.length }, (_, i) => `line-${first + i}\n`));
  await rt.delete(id);
});

test('without limits the log is not rotated', async () => {
  const id = `rot0-${uniq}`;
  const io = env.io('rot0');
  await rt.create(id, env.bundle('rot0', 'i=1; while [ $i -le 200 ]; do echo line-$i; i=$((i+1)); done'), { io });
  await rt.start(id);
  assert.equal(await ShimClient.wait(io.socket, rt.exitFile(id)), 0);
  assert.deepEqual(logFiles(io.logFile), [io.logFile]);
  assert.equal(readLog(io.logFile).length, 200);
  await rt.delete(id);
});
