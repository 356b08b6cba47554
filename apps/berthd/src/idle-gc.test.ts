import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { idleCompactor, type HeapSample } from './idle-gc.js';

function fakeHeap(): { sample: HeapSample; heap: () => HeapSample } {
  const sample = { used: 10 << 20, total: 12 << 20 };
  return { sample, heap: () => ({ ...sample }) };
}

test('idle compaction: one GC once the quiet time has passed after activity, none while requests keep coming', async () => {
  const h = fakeHeap();
  let gcs = 0;
  const c = idleCompactor({ gc: () => void (gcs++, (h.sample.used = 10 << 20), (h.sample.total = 12 << 20)), idleMs: 60, heap: h.heap });
  h.sample.used += 4 << 20;
  h.sample.total += 6 << 20;
  for (let i = 0; i < 6; i++) {
    c.touch();
    await sleep(20);
  }
  assert.equal(gcs, 0, 'a GC while requests arrive every 20 ms');
  await sleep(120);
  assert.equal(gcs, 1);
  await sleep(120);
  assert.equal(gcs, 1, 'the timer fires once per quiet period');
  c.stop();
});

test('idle compaction: no GC when the heap did not grow by the slack since the last one', async () => {
  const h = fakeHeap();
  let gcs = 0;
  const c = idleCompactor({ gc: () => void gcs++, idleMs: 20, heap: h.heap, slackBytes: 1 << 20 });
  h.sample.used += 512 << 10;
  c.touch();
  await sleep(80);
  assert.equal(gcs, 0);
  h.sample.total += 2 << 20;
  c.touch();
  await sleep(80);
  assert.equal(gcs, 1, 'the heap held 2 MiB more');
  c.stop();
});

test('idle compaction: now() collects at once and becomes the new base', async () => {
  const h = fakeHeap();
  let gcs = 0;
  const c = idleCompactor({ gc: () => void gcs++, idleMs: 20, heap: h.heap });
  c.now();
  assert.equal(gcs, 1);
  h.sample.used += 512 << 10;
  c.touch();
  await sleep(80);
  assert.equal(gcs, 1, 'no growth since now()');
  c.stop();
});

test('idle compaction: without --expose-gc (no gc function) touch is a no-op', () => {
  const c = idleCompactor({ gc: undefined, idleMs: 1 });
  c.touch();
  c.now();
  c.stop();
});
