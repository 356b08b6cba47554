import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerCreateBodySchema, ExecStartBodySchema, checkBody } from './schemas.js';

test('checkBody: null, empty collections and unknown keys pass', () => {
  assert.deepEqual(checkBody(ExecStartBodySchema, null), {});
  assert.deepEqual(checkBody(ExecStartBodySchema, undefined), {});
  const body = { Image: 'busybox', Env: null, Cmd: 'sh', Volumes: {}, Labels: null, HostConfig: { Binds: [], Dns: null, MemorySwappiness: -1, PidsLimit: null }, NewField: 1 };
  assert.equal(checkBody(ContainerCreateBodySchema, body), body);
});

test('checkBody: the error names the deepest offending field', () => {
  const bad = (v: unknown): string => {
    try {
      checkBody(ContainerCreateBodySchema, v);
    } catch (err) {
      return (err as { details: { field: string } }).details.field;
    }
    return 'accepted';
  };
  assert.equal(bad({ HostConfig: { Memory: '1g' } }), 'HostConfig.Memory');
  assert.equal(bad({ HostConfig: { PortBindings: { '80/tcp': [{ HostPort: 80 }] } } }), 'HostConfig.PortBindings.80/tcp.0.HostPort');
  assert.equal(bad({ Tty: 'yes' }), 'Tty');
  assert.equal(bad({ Env: ['A=1', 2] }), 'Env.1');
  assert.equal(bad({ HostConfig: { Memory: 1.5 } }), 'HostConfig.Memory');
  assert.equal(bad([]), '');
  assert.throws(() => checkBody(ContainerCreateBodySchema, { StopTimeout: 'x' }), /invalid request body: field StopTimeout: expected integer, got string "x"/);
});
