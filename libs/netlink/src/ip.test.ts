import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToIp, bytesToMac, ipToBytes, macToBytes, parseCidr } from './ip.js';
import { netlinkError } from './rtnetlink.js';
import { SystemError } from '@berth/errors';

test('IPv4 and IPv6 round-trip through bytes in canonical form', () => {
  assert.deepEqual([...ipToBytes('172.17.0.2')], [172, 17, 0, 2]);
  for (const [input, want] of [
    ['fd00::1', 'fd00::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['FD00:0:0:1::', 'fd00:0:0:1::'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ] as const) {
    const b = ipToBytes(input);
    assert.equal(b.length, 16);
    assert.equal(bytesToIp(b), want, input);
  }
});

test('parseCidr normalises and refuses bad input', () => {
  assert.deepEqual(parseCidr('10.0.0.1/8'), { ip: '10.0.0.1', prefix: 8, family: 4 });
  assert.deepEqual(parseCidr('fd00:0::1/64'), { ip: 'fd00::1', prefix: 64, family: 6 });
  assert.deepEqual(parseCidr('10.0.0.1'), { ip: '10.0.0.1', prefix: 32, family: 4 });
  for (const bad of ['10.0.0.1/33', '10.0.0/8', 'x/1', '10.0.0.1/', 'fd00::1/129']) assert.throws(() => parseCidr(bad), /invalid/, bad);
});

test('MAC text <-> bytes', () => {
  assert.equal(bytesToMac(macToBytes('02:42:AC:11:00:02')), '02:42:ac:11:00:02');
  assert.throws(() => macToBytes('02:42:ac:11:00'), /invalid MAC/);
});

test('a library rejection becomes a SystemError naming the operation and keeping the errno', () => {
  const e = netlinkError(new Error('Request rejected: EEXIST'), 'create veth vethab12 on berth0');
  assert.ok(e instanceof SystemError);
  assert.equal(e.message, 'create veth vethab12 on berth0: EEXIST');
  assert.equal(e.code, 'EEXIST');
  assert.equal(e.errno, 17);
  assert.equal(e.kind, 'AlreadyExists');
  const other = netlinkError(new TypeError('boom'), 'list links');
  assert.match(other.message, /^list links: boom$/);
});
