/** The controller's records on disk: sandbox records rewritten in place, read back whole. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRootLogger } from '@berth/log';
import { NetworkStore } from './store.js';
import type { SandboxRecord } from './types.js';

const log = createRootLogger('silent');

function sandbox(containerId: string, name: string): SandboxRecord {
  return { id: 'a'.repeat(64), containerId, containerName: name, key: `/run/x/netns/${containerId.slice(0, 12)}`, endpoints: [], nextIf: 0, portBindings: [], exposed: [] };
}

describe('NetworkStore sandbox records', () => {
  test('rewrites that shrink, grow past a page and shrink again always read back as the last record; the inode is kept while in place', () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-netstore-'));
    try {
      const store = new NetworkStore(root, log);
      const file = join(root, 'sandboxes', 'c1.json');
      const s = sandbox('c1', 'x'.repeat(2000));
      store.saveSandbox(s);
      const ino = statSync(file).ino;
      for (const len of [1500, 10, 3000, 1]) {
        s.containerName = 'n'.repeat(len);
        store.saveSandbox(s);
        assert.deepEqual(store.sandboxes(), [s]);
        assert.equal(statSync(file).ino, ino, 'written in place');
      }
      assert.match(readFileSync(file, 'utf8'), /^\{.*\} +$/s, 'padding is whitespace after the JSON');
      // Past a page: written atomically (a new file), then in place again.
      s.containerName = 'b'.repeat(5000);
      store.saveSandbox(s);
      assert.deepEqual(store.sandboxes(), [s]);
      s.containerName = 'small';
      store.saveSandbox(s);
      assert.deepEqual(store.sandboxes(), [s]);
      const ino2 = statSync(file).ino;
      s.containerName = 'smaller';
      store.saveSandbox(s);
      assert.equal(statSync(file).ino, ino2);
      assert.deepEqual(store.sandboxes(), [s]);

      // A restarted daemon (a new store) reads them, and rewrites the same files in place.
      const again = new NetworkStore(root, log);
      assert.deepEqual(again.sandboxes(), [s]);
      s.containerName = 'z';
      again.saveSandbox(s);
      assert.deepEqual(again.sandboxes(), [s]);
      assert.equal(statSync(file).ino, ino2);

      again.deleteSandbox('c1');
      store.deleteSandbox('c1');
      assert.equal(existsSync(file), false);
      assert.deepEqual(readdirSync(join(root, 'sandboxes')), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('reaping records come and go the same way; many sandboxes at once keep each its own record', () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-netstore-'));
    try {
      const store = new NetworkStore(root, log);
      const all = Array.from({ length: 300 }, (_, i) => sandbox(`c${i}`, `name-${i}`)); // more than are kept open
      for (const s of all) store.saveSandbox(s);
      for (const s of all) {
        s.nextIf = 7;
        store.saveSandbox(s);
      }
      const read = store.sandboxes().sort((a, b) => Number(a.containerId.slice(1)) - Number(b.containerId.slice(1)));
      assert.deepEqual(read, all);
      store.saveReaping(all[0]!);
      all[0]!.endpoints = [];
      all[0]!.containerName = 'r';
      store.saveReaping(all[0]!);
      assert.deepEqual(store.reaping(), [all[0]]);
      store.deleteReaping(all[0]!.id);
      assert.deepEqual(store.reaping(), []);
      for (const s of all) store.deleteSandbox(s.containerId);
      assert.deepEqual(store.sandboxes(), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
