import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { changesSize, KeyedLock, ViewTable, withViews, type LayerViews } from './union-views.js';

describe('KeyedLock', () => {
  it('runs calls for one key in order, other keys alongside, and survives a failure', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    const a1 = lock.run('a', async () => {
      await sleep(30);
      log.push('a1');
      throw new Error('boom');
    });
    const a2 = lock.run('a', async () => {
      log.push('a2');
      return 2;
    });
    const b = lock.run('b', async () => {
      log.push('b');
    });
    await assert.rejects(a1, /boom/);
    assert.equal(await a2, 2);
    await b;
    assert.deepEqual(log, ['b', 'a1', 'a2']);
  });
});

describe('ViewTable', () => {
  it('opens on the first get, counts the rest, closes on the last put', async () => {
    const t = new ViewTable();
    let opens = 0;
    const closed: (number | undefined)[] = [];
    const open = async (): Promise<{ path: string; counted: boolean }> => {
      opens++;
      return { path: '/v', counted: true };
    };
    const [p1, p2] = await Promise.all([t.get('x', open), t.get('x', open)]);
    assert.equal(p1, '/v');
    assert.equal(p2, '/v');
    assert.equal(opens, 1);
    assert.equal(t.entries()[0]?.[1].count, 2);
    await t.put('x', async (h) => void closed.push(h?.count));
    assert.equal(closed.length, 0);
    await t.put('x', async (h) => void closed.push(h?.count));
    assert.deepEqual([...closed], [1]);
    assert.equal(t.has('x'), false);
    // Not counted (a base layer's own dir): every get opens, put closes with nothing held.
    assert.equal(await t.get('y', async () => ({ path: '/y', counted: false })), '/y');
    assert.equal(t.has('y'), false);
    await t.put('y', async (h) => void closed.push(h?.count));
    assert.deepEqual([...closed], [1, undefined]);
  });
});

describe('changesSize and withViews', () => {
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `union-views-${process.pid}-`));
    fs.mkdirSync(path.join(dir, 'lower'));
    fs.mkdirSync(path.join(dir, 'upper'));
    fs.writeFileSync(path.join(dir, 'lower', 'same'), 'aa');
    fs.copyFileSync(path.join(dir, 'lower', 'same'), path.join(dir, 'upper', 'same'));
    // Both copies get the same whole-second mtime: a Date carries only milliseconds, so copying
    // the lower file's nanosecond mtime through one would differ now and then.
    const t = 1_700_000_000;
    fs.utimesSync(path.join(dir, 'lower', 'same'), t, t);
    fs.utimesSync(path.join(dir, 'upper', 'same'), t, t);
    fs.writeFileSync(path.join(dir, 'lower', 'gone'), 'x');
    fs.writeFileSync(path.join(dir, 'upper', 'new'), '12345');
    fs.linkSync(path.join(dir, 'upper', 'new'), path.join(dir, 'upper', 'new-link'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('counts added files once per inode, not deletions or unchanged files', async () => {
    assert.equal(await changesSize(path.join(dir, 'lower'), path.join(dir, 'upper')), 5);
    assert.equal(await changesSize(null, path.join(dir, 'upper')), 7);
  });

  it('releases both views even when fn throws', async () => {
    const calls: string[] = [];
    const views: LayerViews = {
      get: async (id) => (calls.push(`get ${id}`), path.join(dir, id)),
      put: async (id) => void calls.push(`put ${id}`),
    };
    await assert.rejects(withViews(views, 'upper', 'lower', async () => Promise.reject(new Error('no'))), /no/);
    assert.deepEqual(calls, ['get upper', 'get lower', 'put lower', 'put upper']);
    assert.equal(await withViews(views, 'upper', '', async (v, p) => `${path.basename(v)} ${p}`), 'upper null');
  });
});
