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

test('checkBody: strslice, fixed-length arrays, required keys and records', () => {
  const field = (schema: Parameters<typeof checkBody>[0], v: unknown): string => {
    try {
      checkBody(schema, v);
    } catch (err) {
      return `${(err as { details: { field: string } }).details.field}: ${(err as Error).message}`;
    }
    return 'accepted';
  };
  assert.equal(field(ContainerCreateBodySchema, { Cmd: ['sh', '-c', 'true'], Entrypoint: 'sh', Shell: null }), 'accepted');
  assert.match(field(ContainerCreateBodySchema, { Cmd: 5 }), /^Cmd: invalid request body: field Cmd: expected string or array of strings, got number 5$/);
  assert.match(field(ContainerCreateBodySchema, { Cmd: ['sh', null] }), /^Cmd\.1: .*expected string, got null$/);
  assert.equal(field(ExecStartBodySchema, { ConsoleSize: [24, 80] }), 'accepted');
  assert.match(field(ExecStartBodySchema, { ConsoleSize: [24] }), /^ConsoleSize: .*expected array of 2 items, got an array$/);
  assert.match(field(ExecStartBodySchema, { ConsoleSize: [24, 'x'] }), /^ConsoleSize\.1: .*expected integer/);
  assert.equal(field(ContainerCreateBodySchema, { HostConfig: { Ulimits: [{ Name: 'nofile', Soft: 1, Hard: 2 }] } }), 'accepted');
  assert.match(field(ContainerCreateBodySchema, { HostConfig: { Ulimits: [{ Name: 'nofile', Soft: 1 }] } }), /^HostConfig\.Ulimits\.0\.Hard: .*expected required property, got nothing$/);
  assert.match(field(ContainerCreateBodySchema, { Labels: { a: 'b', c: 1 } }), /^Labels\.c: .*expected string, got number 1$/);
  assert.match(field(ContainerCreateBodySchema, { Labels: ['a'] }), /^Labels: .*expected object, got an array$/);
  assert.equal(field(ContainerCreateBodySchema, { Volumes: { '/data': {} }, ExposedPorts: { '80/tcp': {} }, NetworkingConfig: { EndpointsConfig: { n1: null, n2: { Aliases: ['a'] } } } }), 'accepted');
  assert.match(field(ContainerCreateBodySchema, { NetworkingConfig: { EndpointsConfig: { n1: { Aliases: 'a' } } } }), /^NetworkingConfig\.EndpointsConfig\.n1\.Aliases: .*expected array/);
  assert.match(field(ContainerCreateBodySchema, 'x'), /^: invalid request body: expected a JSON object$/);
});
