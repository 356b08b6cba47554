import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kindOf } from '@berth/errors';
import type { NetworkDriver } from '@berth/plugin-api';
import { hostDriver, nullDriver } from './index.js';

const silent = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silent };
const make = async (d: typeof hostDriver): Promise<NetworkDriver> => (await d.create({ stateDir: '/nonexistent', logger: silent })) as NetworkDriver;
const net = (NetworkID: string) => ({ NetworkID, Options: {}, IPv4Data: [], IPv6Data: [] });
const ep = { NetworkID: 'n1', EndpointID: 'e1' };

for (const [desc, join] of [[hostDriver, { DisableGatewayService: true }], [nullDriver, {}]] as const) {
  test(`${desc.name}: one network only (403), never deleted, trivial endpoints`, async () => {
    const d = await make(desc);
    assert.equal(d.name, desc.name);
    assert.deepEqual(await d.getCapabilities(), { Scope: 'local', ConnectivityScope: 'local' });
    await d.createNetwork(net('n1'));
    await d.createNetwork(net('n1')); // the controller re-creating it after a restart
    const second = await d.createNetwork(net('n2')).catch((e: unknown) => e as Error);
    assert.ok(second instanceof Error);
    assert.equal(second.message, `only one instance of "${desc.name}" network is allowed`);
    assert.equal(kindOf(second), 'PermissionDenied');
    const del = await d.deleteNetwork({ NetworkID: 'n1' }).catch((e: unknown) => e as Error);
    assert.equal((del as Error).message, `network of type "${desc.name}" cannot be deleted`);
    assert.equal(kindOf(del), 'PermissionDenied');
    assert.deepEqual(await d.createEndpoint({ ...ep, Interface: { Address: '', AddressIPv6: '', MacAddress: '' }, Options: {} }), {});
    assert.deepEqual(await d.join({ ...ep, SandboxKey: '/run/berth/netns/x', Options: {} }), join);
    assert.deepEqual(await d.endpointOperInfo(ep), { Value: {} });
    await d.programExternalConnectivity({ ...ep, Options: {} });
    await d.revokeExternalConnectivity(ep);
    await d.leave(ep);
    await d.deleteEndpoint(ep);
    // Endpoints the driver never saw (after a daemon restart) are fine too.
    await d.leave({ NetworkID: 'n1', EndpointID: 'unknown' });
    await d.deleteEndpoint({ NetworkID: 'n1', EndpointID: 'unknown' });
    assert.deepEqual(await d.allocateNetwork({ NetworkID: 'n1', Options: { a: 'b' }, IPv4Data: [], IPv6Data: [] }), { Options: { a: 'b' } });
  });
}

test('host and null are separate drivers: each holds its own one network', async () => {
  const h = await make(hostDriver);
  const n = await make(nullDriver);
  await h.createNetwork(net('host-id'));
  await n.createNetwork(net('none-id'));
});
