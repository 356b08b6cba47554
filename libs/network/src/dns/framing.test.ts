import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader, frame } from './framing.js';

test('frames split across chunks and several in one chunk come out whole', () => {
  const a = Buffer.from('first message');
  const b = Buffer.alloc(3000, 7);
  const stream = Buffer.concat([frame(a), frame(b), frame(Buffer.alloc(0)), frame(a)]);
  for (const step of [1, 2, 5, 100, stream.length]) {
    const r = new FrameReader();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += step) out.push(...r.push(stream.subarray(i, i + step)));
    assert.deepEqual(out, [a, b, a], `step ${step}`);
    assert.equal(r.buffered, 0);
  }
});

test('a partial frame holds at most its own bytes', () => {
  const r = new FrameReader();
  assert.deepEqual(r.push(Buffer.from([0xff, 0xff, 1, 2, 3])), []);
  assert.equal(r.buffered, 5);
  assert.throws(() => frame(Buffer.alloc(70000)), RangeError);
});

test('a 64 KiB message trickled a byte at a time is cheap', () => {
  const msg = Buffer.alloc(65535, 1);
  const stream = frame(msg);
  const r = new FrameReader();
  const started = performance.now();
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) out.push(...r.push(stream.subarray(i, i + 1)));
  assert.deepEqual(out, [msg]);
  assert.ok(performance.now() - started < 1000, `${performance.now() - started} ms`);
});
