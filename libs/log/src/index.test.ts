import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Component, componentLogger, createCliLogger, createRootLogger } from './index.js';

test('the CLI logger writes pino-shaped JSON lines at or above its level, with component bindings', () => {
  const lines: string[] = [];
  const log = componentLogger(createCliLogger('info', (l) => lines.push(l)), Component.Runtime, { containerId: 'c1' });
  log.debug('hidden');
  log.warn({ err: new Error('boom') }, 'rollback failed');
  assert.equal(lines.length, 1);
  const rec = JSON.parse(lines[0]!);
  assert.equal(rec.level, 'warn');
  assert.equal(rec.component, 'runtime');
  assert.equal(rec.containerId, 'c1');
  assert.equal(rec.msg, 'rollback failed');
  assert.equal(rec.err.message, 'boom');
});

test('the root logger is pino with label levels and the component binding', () => {
  const chunks: string[] = [];
  const stream = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
  const log = componentLogger(createRootLogger('info', stream as never), Component.Daemon);
  log.info({ reqId: 'r1' }, 'hello');
  const rec = JSON.parse(chunks.join(''));
  assert.equal(rec.level, 'info');
  assert.equal(rec.component, 'daemon');
  assert.equal(rec.msg, 'hello');
});
