import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DriverLogger } from '@berth/plugin-api';
import { randomVethName, withSteps } from './links.js';

function recordingLogger(warnings: string[]): DriverLogger {
  const l: DriverLogger = { error() {}, warn: (_o: unknown, msg?: string) => void warnings.push(String(msg)), info() {}, debug() {}, trace() {}, child: () => l };
  return l;
}

test('withSteps: a failure runs the registered undos in reverse, keeps going past a failing undo, and names the operation', async () => {
  const done: string[] = [];
  const warnings: string[] = [];
  const err = await withSteps(recordingLogger(warnings), 'create thing t1', async (s) => {
    await s.step('a', async () => done.push('a'), async () => void done.push('undo a'));
    await s.step('b', async () => done.push('b')); // nothing to undo
    await s.step('c', async () => done.push('c'), async () => {
      throw new Error('undo c broke');
    });
    await s.step('d', async () => {
      throw new Error('d failed');
    }, async () => void done.push('undo d (never: d did not run)'));
  }).catch((e: unknown) => e as Error);
  assert.ok(err instanceof Error);
  assert.equal(err.message, 'create thing t1: d failed');
  assert.deepEqual(done, ['a', 'b', 'c', 'undo a']);
  assert.deepEqual(warnings, ['undo of "c" failed']);
});

test('withSteps: success keeps everything and returns the result', async () => {
  const done: string[] = [];
  const r = await withSteps(recordingLogger([]), 'x', async (s) => {
    await s.step('a', async () => done.push('a'), async () => void done.push('undo a'));
    return 42;
  });
  assert.equal(r, 42);
  assert.deepEqual(done, ['a']);
});

test('randomVethName: prefix + 7 hex, unique enough', () => {
  const names = new Set(Array.from({ length: 200 }, () => randomVethName('veth')));
  for (const n of names) assert.match(n, /^veth[0-9a-f]{7}$/);
  assert.ok(names.size > 195);
  assert.match(randomVethName('vethc'), /^vethc[0-9a-f]{7}$/);
});
