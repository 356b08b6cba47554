import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { nativePaths } from './paths.js';

const built = existsSync(nativePaths().addon);

test('trimMallocHeap gives the free middle of the malloc heap back (RSS drops), which neither free nor a GC does', { skip: built ? false : 'addon not built' }, () => {
  // A child with its own heap: 160 MiB in 64 KiB buffers (malloc'd, below the mmap threshold),
  // every 8th kept so the heap's top stays in use; the rest freed by a GC. glibc keeps those
  // holes until malloc_trim.
  const memory = fileURLToPath(new URL('./memory.js', import.meta.url));
  const script = `
    const { trimMallocHeap } = await import(${JSON.stringify(memory)});
    const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
    let bufs = [];
    for (let i = 0; i < 2560; i++) bufs.push(Buffer.alloc(64 * 1024, 1));
    const kept = bufs.filter((_, i) => i % 8 === 7);
    bufs = null;
    gc(); gc();
    const before = rss();
    const released = trimMallocHeap();
    const after = rss();
    console.log(JSON.stringify({ before, after, released, kept: kept.length }));
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=commonjs', '-e', `(async () => { ${script} })()`], {
    encoding: 'utf8',
    env: { ...process.env, MALLOC_ARENA_MAX: '1' },
  });
  const r = JSON.parse(out) as { before: number; after: number; released: boolean; kept: number };
  assert.equal(r.kept, 320);
  assert.equal(r.released, true);
  assert.ok(r.before - r.after > 80, `RSS ${r.before.toFixed(0)} -> ${r.after.toFixed(0)} MiB: expected over 80 MiB back`);
});
