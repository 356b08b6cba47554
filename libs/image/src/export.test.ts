import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tarTree } from './export.js';

/** A tree of many small files: a reader going away lands between two of them more often than not. */
function tree(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-export-${process.pid}-`));
  fs.mkdirSync(path.join(dir, 'd'));
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, 'd', `f${i}`), `file ${i}\n`);
  fs.symlinkSync('d/f0', path.join(dir, 'link'));
  return dir;
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

test('an export whose reader goes away at any moment ends quietly, closes its files and releases the mount once', async () => {
  const dir = tree();
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  const fdsBefore = openFds();
  try {
    for (let k = 0; k < 80; k++) {
      let releases = 0;
      let releasedOnce!: () => void;
      const released = new Promise<void>((r) => (releasedOnce = r));
      const out = tarTree(dir, async () => {
        releases++;
        releasedOnce();
      });
      out.resume();
      // The reader disconnects after k turns of the event loop: wherever the walk is then.
      await new Promise<void>((resolve) => {
        let spins = k * 3;
        const tick = (): void => {
          if (spins-- > 0) setImmediate(tick);
          else {
            out.destroy();
            resolve();
          }
        };
        tick();
      });
      await released;
      await new Promise((r) => setTimeout(r, 2));
      assert.equal(releases, 1, `after ${k * 3} turns`);
    }
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    process.off('uncaughtException', onUncaught);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(uncaught.map((e) => `${(e as Error & { code?: string }).code}: ${(e as Error).message}`), []);
  assert.equal(openFds(), fdsBefore, 'no file of the tree is left open');
});

test('a complete export lists every member, in order', async () => {
  const dir = tree();
  try {
    let released = 0;
    const chunks: Buffer[] = [];
    for await (const c of tarTree(dir, async () => void released++)) chunks.push(c as Buffer);
    const names = execFileSync('tar', ['-tf', '-'], { input: Buffer.concat(chunks) }).toString().trim().split('\n');
    assert.equal(names.length, 302);
    assert.deepEqual(names.slice(0, 3), ['d/', 'd/f0', 'd/f1']);
    assert.equal(names.at(-1), 'link');
    assert.equal(released, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
