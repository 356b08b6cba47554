import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kindOf, type ErrorKind } from '@berth/errors';
import type { CreateNetworkRequest, EndpointInterface, JoinResponse, NetworkDriver } from '@berth/plugin-api';
import { networkOverSocket } from '../socket.js';

/** What a driver made for one case; `cleanup` must remove everything it made. */
export interface NetworkDriverHarness {
  driver: NetworkDriver;
  cleanup(): Promise<void>;
}

export interface NetworkDriverSuiteOptions {
  /**
   * `host`/`null`-like drivers: one network per driver (a second is refused with
   * PermissionDenied), which cannot be deleted, and endpoint calls that accept any id.
   */
  singleton?: boolean;
  /** The driver refuses endpoints and networks it does not hold (default: !singleton). */
  tracksIds?: boolean;
  /** Kind of the error for an unknown endpoint/network (default NotFound; undefined in the options = only "an error"). */
  unknownKind?: ErrorKind | null;
  /** CreateNetwork for the n-th network of a case (bridge: unique bridge name, pool and gateway). */
  networkRequest?: (id: string, n: number) => CreateNetworkRequest;
  /** The Interface the engine sends for the n-th endpoint of network n (addresses from that network's pool). */
  endpointInterface?: (n: number, e: number) => EndpointInterface;
  /** The SandboxKey sent with Join (default a path under /run/berth/netns that need not exist). */
  sandboxKey?: (endpointId: string) => string;
  /** Join must answer an interface to move (bridge: 'always'; host/null: 'never'). Default 'any'. */
  joinInterface?: 'always' | 'never' | 'any';
  /** Run in-process, over the plugin socket, or both (default both). */
  transports?: readonly ('in-process' | 'socket')[];
  /** Per-case timeout in ms; default 30 000. */
  timeout?: number;
}

const newId = (): string => randomBytes(32).toString('hex');

const defaultNetworkRequest = (id: string, n: number): CreateNetworkRequest => ({
  NetworkID: id,
  Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
  IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: `10.${200 + n}.0.0/24`, Gateway: `10.${200 + n}.0.1/24` }],
  IPv6Data: [],
});
const defaultInterface = (n: number, e: number): EndpointInterface => ({ Address: `10.${200 + n}.0.${e + 2}/24`, AddressIPv6: '', MacAddress: '' });
const emptyPorts = { 'com.docker.network.portmap': [], 'com.docker.network.endpoint.exposedports': [] };

const isCidr = (s: string): boolean => {
  const [ip, len, ...rest] = s.split('/');
  return rest.length === 0 && ip !== undefined && isIP(ip) !== 0 && len !== undefined && /^\d+$/.test(len) && Number(len) <= (isIP(ip) === 4 ? 32 : 128);
};
const isMac = (s: string): boolean => /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(s);

function checkJoin(r: JoinResponse, want: 'always' | 'never' | 'any'): void {
  assert.equal(typeof r, 'object');
  const ifn = r.InterfaceName;
  if (ifn !== undefined && ifn !== null) {
    assert.equal(typeof ifn.SrcName, 'string');
    assert.ok(ifn.SrcName.length > 0 && ifn.SrcName.length <= 15, `SrcName ${ifn.SrcName} is a Linux interface name`);
    assert.ok(typeof ifn.DstPrefix === 'string' && ifn.DstPrefix.length > 0, 'DstPrefix is set');
  }
  if (want === 'always') assert.ok(ifn !== undefined && ifn !== null, 'Join answers an interface');
  if (want === 'never') assert.ok(ifn === undefined || ifn === null, 'Join answers no interface');
  if (r.Gateway !== undefined && r.Gateway !== '') assert.equal(isIP(r.Gateway), 4, `Gateway ${r.Gateway} is a plain IPv4 address`);
  if (r.GatewayIPv6 !== undefined && r.GatewayIPv6 !== '') assert.equal(isIP(r.GatewayIPv6), 6, `GatewayIPv6 ${r.GatewayIPv6} is a plain IPv6 address`);
  for (const route of r.StaticRoutes ?? []) {
    assert.ok(isCidr(route.Destination), `route destination ${route.Destination}`);
    assert.ok(route.RouteType === 0 || route.RouteType === 1);
    if (route.RouteType === 0) assert.ok(route.NextHop !== undefined && isIP(route.NextHop) !== 0, 'a RouteType 0 route has a NextHop');
  }
}

/**
 * Registers the NetworkDriver contract as node:test cases under `describe(name)`, once
 * in-process and once over the plugin socket (serve() + connect()). `makeDriver` is called
 * once per case; its `cleanup` runs after the case.
 */
export function networkDriverSuite(name: string, makeDriver: () => Promise<NetworkDriverHarness>, opts: NetworkDriverSuiteOptions = {}): void {
  const singleton = opts.singleton === true;
  const tracks = opts.tracksIds ?? !singleton;
  const unknownKind = opts.unknownKind === undefined ? 'NotFound' : opts.unknownKind;
  const netReq = opts.networkRequest ?? defaultNetworkRequest;
  const iface = opts.endpointInterface ?? defaultInterface;
  const sandboxKey = opts.sandboxKey ?? ((eid: string) => `/run/berth/netns/suite-${eid.slice(0, 12)}`);
  const joinWant = opts.joinInterface ?? 'any';
  const timeout = opts.timeout ?? 30_000;

  for (const transport of opts.transports ?? ['in-process', 'socket']) {
    const make = transport === 'socket' ? networkOverSocket(makeDriver) : makeDriver;
    const withDriver = (fn: (d: NetworkDriver) => Promise<void>) => async () => {
      const h = await make();
      try {
        await fn(h.driver);
      } finally {
        await h.cleanup();
      }
    };
    const track = (title: string, fn: (d: NetworkDriver) => Promise<void>) =>
      tracks ? it(title, { timeout }, withDriver(fn)) : it(title, { skip: 'the driver accepts ids it does not hold (tracksIds: false)' }, () => {});
    const many = (title: string, fn: (d: NetworkDriver) => Promise<void>) =>
      singleton ? it(title, { skip: 'one network per driver (singleton)' }, () => {}) : it(title, { timeout }, withDriver(fn));
    const rejectsUnknown = async (p: Promise<unknown>, what: string) => {
      const err = await p.then(() => undefined, (e: unknown) => e as Error);
      assert.ok(err instanceof Error, `${what} must fail`);
      assert.ok(err.message.length > 0, `${what}: the error has a message`);
      if (unknownKind !== null) assert.equal(kindOf(err), unknownKind, `${what}: kind of "${err.message}"`);
    };

    describe(`${name} network driver contract (${transport})`, () => {
      it('GetCapabilities answers a valid scope', { timeout }, withDriver(async (d) => {
        const caps = await d.getCapabilities();
        assert.ok(caps.Scope === 'local' || caps.Scope === 'global', `Scope ${caps.Scope}`);
        if (caps.ConnectivityScope !== undefined && (caps.ConnectivityScope as string) !== '') {
          assert.ok(caps.ConnectivityScope === 'local' || caps.ConnectivityScope === 'global', `ConnectivityScope ${caps.ConnectivityScope}`);
        }
        assert.equal(typeof d.name, 'string');
        assert.ok(d.name.length > 0);
      }));

      it('a full endpoint lifecycle: create network, endpoint, join, publish, revoke, leave, delete', { timeout }, withDriver(async (d) => {
        const nid = newId();
        const eid = newId();
        await d.createNetwork(netReq(nid, 0));
        const want = iface(0, 0);
        const created = await d.createEndpoint({ NetworkID: nid, EndpointID: eid, Interface: want, Options: { ...emptyPorts } });
        assert.equal(typeof created, 'object');
        const got = created.Interface ?? {};
        for (const [k, v] of Object.entries(got)) {
          if (v === undefined || v === '') continue;
          assert.equal(want[k as keyof EndpointInterface], '', `CreateEndpoint may only fill empty fields; it answered ${k}=${String(v)}`);
          if (k === 'MacAddress') assert.ok(isMac(String(v)), `MacAddress ${String(v)}`);
          else assert.ok(isCidr(String(v)), `${k} ${String(v)} is a CIDR`);
        }
        const info = await d.endpointOperInfo({ NetworkID: nid, EndpointID: eid });
        assert.ok(typeof info === 'object' && info !== null && typeof info.Value === 'object' && info.Value !== null, 'EndpointOperInfo answers {Value: {...}}');
        const joined = await d.join({ NetworkID: nid, EndpointID: eid, SandboxKey: sandboxKey(eid), Options: { ...emptyPorts } });
        checkJoin(joined, joinWant);
        await d.programExternalConnectivity({ NetworkID: nid, EndpointID: eid, Options: { ...emptyPorts } });
        await d.revokeExternalConnectivity({ NetworkID: nid, EndpointID: eid });
        await d.leave({ NetworkID: nid, EndpointID: eid });
        await d.deleteEndpoint({ NetworkID: nid, EndpointID: eid });
        if (!singleton) await d.deleteNetwork({ NetworkID: nid });
      }));

      it('CreateEndpoint leaves the fields the engine set alone (MAC given)', { timeout }, withDriver(async (d) => {
        const nid = newId();
        const eid = newId();
        await d.createNetwork(netReq(nid, 0));
        const want = { ...iface(0, 1), MacAddress: '02:42:0a:c8:00:63' };
        const created = await d.createEndpoint({ NetworkID: nid, EndpointID: eid, Interface: want, Options: {} });
        for (const [k, v] of Object.entries(created.Interface ?? {})) {
          if (v !== undefined && v !== '') assert.equal(want[k as keyof EndpointInterface], '', `the driver answered ${k} although the engine set it`);
        }
        await d.deleteEndpoint({ NetworkID: nid, EndpointID: eid });
        if (!singleton) await d.deleteNetwork({ NetworkID: nid });
      }));

      it('rollback paths: an endpoint deleted without a join, a revoke without a program', { timeout }, withDriver(async (d) => {
        const nid = newId();
        const eid = newId();
        await d.createNetwork(netReq(nid, 0));
        await d.createEndpoint({ NetworkID: nid, EndpointID: eid, Interface: iface(0, 2), Options: { ...emptyPorts } });
        await d.deleteEndpoint({ NetworkID: nid, EndpointID: eid });
        const e2 = newId();
        await d.createEndpoint({ NetworkID: nid, EndpointID: e2, Interface: iface(0, 3), Options: {} });
        await d.join({ NetworkID: nid, EndpointID: e2, SandboxKey: sandboxKey(e2), Options: { ...emptyPorts } });
        await d.revokeExternalConnectivity({ NetworkID: nid, EndpointID: e2 });
        await d.leave({ NetworkID: nid, EndpointID: e2 });
        await d.deleteEndpoint({ NetworkID: nid, EndpointID: e2 });
        if (!singleton) await d.deleteNetwork({ NetworkID: nid });
      }));

      it('endpoints of one network live independently', { timeout }, withDriver(async (d) => {
        const nid = newId();
        const [a, b] = [newId(), newId()];
        await d.createNetwork(netReq(nid, 0));
        await d.createEndpoint({ NetworkID: nid, EndpointID: a, Interface: iface(0, 4), Options: {} });
        await d.createEndpoint({ NetworkID: nid, EndpointID: b, Interface: iface(0, 5), Options: {} });
        const ja = await d.join({ NetworkID: nid, EndpointID: a, SandboxKey: sandboxKey(a), Options: { ...emptyPorts } });
        await d.leave({ NetworkID: nid, EndpointID: a });
        await d.deleteEndpoint({ NetworkID: nid, EndpointID: a });
        const jb = await d.join({ NetworkID: nid, EndpointID: b, SandboxKey: sandboxKey(b), Options: { ...emptyPorts } });
        checkJoin(jb, joinWant);
        if (ja.InterfaceName && jb.InterfaceName) assert.notEqual(ja.InterfaceName.SrcName, jb.InterfaceName.SrcName, 'each endpoint gets its own interface');
        await d.leave({ NetworkID: nid, EndpointID: b });
        await d.deleteEndpoint({ NetworkID: nid, EndpointID: b });
        if (!singleton) await d.deleteNetwork({ NetworkID: nid });
      }));

      many('several networks side by side, each deleted on its own', async (d) => {
        const ids = [newId(), newId()];
        for (const [n, id] of ids.entries()) await d.createNetwork(netReq(id, n));
        const eid = newId();
        await d.createEndpoint({ NetworkID: ids[1]!, EndpointID: eid, Interface: iface(1, 0), Options: {} });
        await d.deleteNetwork({ NetworkID: ids[0]! });
        checkJoin(await d.join({ NetworkID: ids[1]!, EndpointID: eid, SandboxKey: sandboxKey(eid), Options: { ...emptyPorts } }), joinWant);
        await d.leave({ NetworkID: ids[1]!, EndpointID: eid });
        await d.deleteEndpoint({ NetworkID: ids[1]!, EndpointID: eid });
        await d.deleteNetwork({ NetworkID: ids[1]! });
      });

      if (singleton) {
        it('one network only: a second is refused (403) with a message; the one network cannot be deleted', { timeout }, withDriver(async (d) => {
          const nid = newId();
          await d.createNetwork(netReq(nid, 0));
          const second = await d.createNetwork(netReq(newId(), 1)).then(() => undefined, (e: unknown) => e as Error);
          assert.ok(second instanceof Error, 'a second network is refused');
          assert.match(second.message, /only one instance of "[^"]+" network is allowed/);
          assert.equal(kindOf(second), 'PermissionDenied');
          const del = await d.deleteNetwork({ NetworkID: nid }).then(() => undefined, (e: unknown) => e as Error);
          assert.ok(del instanceof Error, 'the network cannot be deleted');
          assert.equal(kindOf(del), 'PermissionDenied');
          // Made again by the controller after a restart: same id is fine.
          await d.createNetwork(netReq(nid, 0));
        }));
      }

      track('unknown ids are errors with a message: endpoint on an unknown network, unknown endpoints', async (d) => {
        const nid = newId();
        await d.createNetwork(netReq(nid, 0));
        const ghost = { NetworkID: nid, EndpointID: newId() };
        await rejectsUnknown(d.createEndpoint({ NetworkID: newId(), EndpointID: newId(), Interface: iface(0, 6), Options: {} }), 'CreateEndpoint on an unknown network');
        await rejectsUnknown(d.join({ ...ghost, SandboxKey: sandboxKey(ghost.EndpointID), Options: { ...emptyPorts } }), 'Join of an unknown endpoint');
        await rejectsUnknown(d.endpointOperInfo(ghost), 'EndpointOperInfo of an unknown endpoint');
        await rejectsUnknown(d.deleteEndpoint(ghost), 'DeleteEndpoint of an unknown endpoint');
        await rejectsUnknown(d.deleteNetwork({ NetworkID: newId() }), 'DeleteNetwork of an unknown network');
        // The failures changed nothing: the real network is still usable and removable.
        const eid = newId();
        await d.createEndpoint({ NetworkID: nid, EndpointID: eid, Interface: iface(0, 7), Options: {} });
        await d.deleteEndpoint({ NetworkID: nid, EndpointID: eid });
        if (!singleton) await d.deleteNetwork({ NetworkID: nid });
      });

      track('an endpoint id is used once; a deleted network is gone', async (d) => {
        const nid = newId();
        const eid = newId();
        await d.createNetwork(netReq(nid, 0));
        await d.createEndpoint({ NetworkID: nid, EndpointID: eid, Interface: iface(0, 8), Options: {} });
        const dup = await d.createEndpoint({ NetworkID: nid, EndpointID: eid, Interface: iface(0, 9), Options: {} }).then(() => undefined, (e: unknown) => e as Error);
        assert.ok(dup instanceof Error && dup.message.length > 0, 'a second CreateEndpoint with the same id is refused');
        await d.deleteEndpoint({ NetworkID: nid, EndpointID: eid });
        await rejectsUnknown(d.deleteEndpoint({ NetworkID: nid, EndpointID: eid }), 'DeleteEndpoint twice');
        if (!singleton) {
          await d.deleteNetwork({ NetworkID: nid });
          await rejectsUnknown(d.createEndpoint({ NetworkID: nid, EndpointID: newId(), Interface: iface(0, 10), Options: {} }), 'CreateEndpoint on a deleted network');
        }
      });

      it('AllocateNetwork (swarm only) answers the options; FreeNetwork and discovery calls are accepted', { timeout }, withDriver(async (d) => {
        const r = await d.allocateNetwork({ NetworkID: newId(), Options: { 'com.example': 'x' }, IPv4Data: [], IPv6Data: [] });
        assert.deepEqual(r.Options ?? {}, { 'com.example': 'x' });
        await d.freeNetwork({ NetworkID: newId() });
        await d.discoverNew({ DiscoveryType: 1, DiscoveryData: { Address: '127.0.0.1', BindAddress: '127.0.0.1', Self: true } });
        await d.discoverDelete({ DiscoveryType: 1, DiscoveryData: { Address: '127.0.0.1', BindAddress: '127.0.0.1', Self: true } });
      }));
    });
  }
}
