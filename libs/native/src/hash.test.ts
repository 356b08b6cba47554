import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createStreamHash } from './hash.js';

const sha = (bufs: Buffer[]): string => {
  const h = createHash('sha256');
  for (const b of bufs) h.update(b);
  return h.digest('hex');
};

test('createStreamHash gives node:crypto digest for pieces of every size, in order', async () => {
  const pieces = [1, 0, 63, 64, 65, 4096, 65536, 1 << 20, 3, 700_000].map((n) => randomBytes(n));
  const h = createStreamHash();
  for (const p of pieces) await h.update(p);
  assert.equal(await h.digest(), sha(pieces));
});

test('the empty stream hashes to the empty digest', async () => {
  assert.equal(await createStreamHash().digest(), sha([]));
});

test('updates that outrun the hashing are queued, backpressure resolves, order is kept (80 MiB without awaiting)', async () => {
  const piece = (i: number): Buffer => Buffer.alloc(1 << 20, i & 0xff);
  const h = createStreamHash();
  const waits: Promise<void>[] = [];
  for (let i = 0; i < 80; i++) {
    const w = h.update(piece(i));
    if (w !== undefined) waits.push(w);
  }
  await Promise.all(waits);
  assert.equal(await h.digest(), sha(Array.from({ length: 80 }, (_, i) => piece(i))));
});

test('the JS thread runs while a large update is hashed', async () => {
  const big = randomBytes(64 << 20);
  const h = createStreamHash();
  h.update(big);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const d = await h.digest();
  clearInterval(timer);
  assert.equal(d, sha([big]));
  assert.ok(ticks > 0, 'timers ran while hashing');
});
