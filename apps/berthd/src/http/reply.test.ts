import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { MESSAGE_BACKLOG_LIMIT, writeMessage } from './reply.js';

/** A response whose client never reads: everything written stays queued. */
function stalled() {
  const written: string[] = [];
  const res = {
    destroyed: false,
    writableLength: 0,
    writableNeedDrain: false,
    write(chunk: string) {
      written.push(chunk);
      this.writableLength += chunk.length;
      this.writableNeedDrain = true;
      return false;
    },
    destroy() {
      this.destroyed = true;
    },
  };
  return { res, written };
}

test('writeMessage: ticks are dropped while the client is behind; a client past the limit is cut off', () => {
  const { res, written } = stalled();
  const r = res as unknown as ServerResponse;
  writeMessage(r, { status: 'Downloading', id: 'a', progressDetail: { current: 1, total: 10 } });
  writeMessage(r, { status: 'Downloading', id: 'a', progressDetail: { current: 2, total: 10 } });
  writeMessage(r, { status: 'Download complete', id: 'a', progressDetail: {} });
  assert.deepEqual(written.map((w) => JSON.parse(w) as { progressDetail: { current?: number } }).map((m) => m.progressDetail.current), [1, undefined]);
  assert.ok(written.every((w) => w.endsWith('}\r\n')));
  res.writableLength = MESSAGE_BACKLOG_LIMIT + 1;
  writeMessage(r, { status: 'Pull complete', id: 'a' });
  assert.equal(res.destroyed, true);
  assert.equal(written.length, 2);
});
