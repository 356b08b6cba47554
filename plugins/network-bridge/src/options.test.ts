import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultBridgeName, macFromIPv4, parseNetworkOptions } from './options.js';

const generic = (o: Record<string, string>) => ({ 'com.docker.network.generic': o });

test('options: defaults of a user-defined bridge network (icc and masquerade on, kernel MTU, eth)', () => {
  assert.deepEqual(parseNetworkOptions({ 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} }), {
    icc: true,
    masquerade: true,
    hostIp: '0.0.0.0',
    inhibitIpv4: false,
    defaultBridge: false,
    mtu: 0,
    ifacePrefix: 'eth',
    enableIPv6: false,
    internal: false,
  });
});

test('options: Docker keys and Berth short names mean the same; disagreeing values are refused', () => {
  const d = parseNetworkOptions({
    ...generic({
      'com.docker.network.bridge.name': 'br-test',
      'com.docker.network.bridge.enable_icc': 'false',
      'com.docker.network.bridge.enable_ip_masquerade': 'False',
      'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1',
      'com.docker.network.driver.mtu': '1400',
      'com.docker.network.container_iface_prefix': 'ens',
      'com.docker.network.bridge.default_bridge': 'true',
      'com.docker.network.bridge.inhibit_ipv4': '1',
    }),
    'com.docker.network.internal': true,
    'com.docker.network.enable_ipv6': true,
  });
  const b = parseNetworkOptions({
    ...generic({
      'berth.bridge.name': 'br-test',
      'berth.bridge.icc': 'f',
      'berth.bridge.masquerade': '0',
      'berth.bridge.host_ip': '127.0.0.1',
      'berth.bridge.mtu': '1400',
      'berth.bridge.iface_prefix': 'ens',
      'berth.bridge.default': 'TRUE',
      'berth.bridge.inhibit_ipv4': 't',
      'berth.bridge.ipv6': 'true',
    }),
    'com.docker.network.internal': true,
  });
  assert.deepEqual(d, b);
  assert.equal(d.bridgeName, 'br-test');
  assert.equal(d.mtu, 1400);
  assert.equal(d.internal, true);
  assert.throws(() => parseNetworkOptions(generic({ 'com.docker.network.bridge.name': 'a', 'berth.bridge.name': 'b' })), /disagree/);
  // the same value under both names is fine
  assert.equal(parseNetworkOptions(generic({ 'com.docker.network.bridge.name': 'a', 'berth.bridge.name': 'a' })).bridgeName, 'a');
});

test('options: bad values are InvalidArgument naming the key', () => {
  for (const [k, v, re] of [
    ['com.docker.network.bridge.enable_icc', 'yes', /enable_icc.*not a boolean/],
    ['com.docker.network.driver.mtu', '12', /invalid MTU/],
    ['berth.bridge.mtu', 'abc', /invalid MTU/],
    ['com.docker.network.bridge.name', 'this-name-is-too-long', /invalid bridge name/],
    ['com.docker.network.bridge.name', 'a/b', /invalid bridge name/],
    ['com.docker.network.bridge.host_binding_ipv4', '1.2.3', /invalid IP address/],
  ] as const) {
    assert.throws(() => parseNetworkOptions(generic({ [k]: v })), (err: Error & { kind?: string }) => re.test(err.message) && err.kind === 'InvalidArgument', `${k}=${v}`);
  }
});

test('options: daemon mtu is the default; a network option overrides it', () => {
  assert.equal(parseNetworkOptions(generic({}), { mtu: '1450' }).mtu, 1450);
  assert.equal(parseNetworkOptions(generic({ 'com.docker.network.driver.mtu': '1300' }), { mtu: '1450' }).mtu, 1300);
});

test('naming: br-<id12> and the MAC from an IPv4 address (Docker v27)', () => {
  assert.equal(defaultBridgeName('0123456789abcdef0123'), 'br-0123456789ab');
  assert.equal(macFromIPv4('172.17.0.2'), '02:42:ac:11:00:02');
  assert.equal(macFromIPv4('10.255.1.254'), '02:42:0a:ff:01:fe');
});
