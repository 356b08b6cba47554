import { BerthError } from '@berth/errors';
import type {
  AllocateNetworkRequest,
  CreateEndpointRequest,
  CreateEndpointResponse,
  CreateNetworkRequest,
  EndpointOperInfoResponse,
  EndpointRef,
  ExternalConnectivityRequest,
  JoinRequest,
  JoinResponse,
  NetworkCapabilities,
  NetworkDriver,
  NetworkRef,
  PortBinding,
} from '@berth/plugin-api';

interface FakeEndpoint {
  id: string;
  address: string;
  mac: string;
  joined: string | undefined;
  ports: PortBinding[];
}
interface FakeNetwork {
  id: string;
  gateway: string | undefined;
  endpoints: Map<string, FakeEndpoint>;
}

/** 02:42 + the IPv4 address bytes, as Docker's bridge does; random when there is no IPv4. */
function macFor(address: string, seed: string): string {
  const ip = address.split('/')[0] ?? '';
  const bytes = /^\d+\.\d+\.\d+\.\d+$/.test(ip) ? ip.split('.').map(Number) : [0, 1, 2, 3].map((i) => parseInt(seed.slice(i * 2, i * 2 + 2), 16) || 0);
  return ['02', '42', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * A network driver in memory that follows the protocol's rules (and passes the network suite):
 * it refuses unknown networks and endpoints (NotFound), fills only the MAC when the engine left
 * it empty, answers a veth-like interface and the pool's gateway at Join, and records the
 * ports of ProgramExternalConnectivity. `calls` lists every wire method called, in order.
 */
export class FakeNetworkDriver implements NetworkDriver {
  readonly calls: string[] = [];
  readonly #networks = new Map<string, FakeNetwork>();

  constructor(readonly name = 'fake') {}

  /** Networks and their endpoints now (for assertions). */
  state(): { id: string; endpoints: { id: string; address: string; mac: string; joined: string | undefined; ports: PortBinding[] }[] }[] {
    return [...this.#networks.values()].map((n) => ({ id: n.id, endpoints: [...n.endpoints.values()].map((e) => ({ ...e })) }));
  }

  async getCapabilities(): Promise<NetworkCapabilities> {
    this.calls.push('GetCapabilities');
    return { Scope: 'local', ConnectivityScope: 'local' };
  }

  async createNetwork(req: CreateNetworkRequest): Promise<void> {
    this.calls.push('CreateNetwork');
    if (this.#networks.has(req.NetworkID)) throw new BerthError('BERTH_NETWORK_EXISTS', `network ${req.NetworkID} exists`);
    const gw = req.IPv4Data?.[0]?.Gateway;
    this.#networks.set(req.NetworkID, { id: req.NetworkID, gateway: gw === undefined ? undefined : gw.split('/')[0], endpoints: new Map() });
  }

  async deleteNetwork(req: NetworkRef): Promise<void> {
    this.calls.push('DeleteNetwork');
    this.#network(req.NetworkID);
    this.#networks.delete(req.NetworkID);
  }

  async createEndpoint(req: CreateEndpointRequest): Promise<CreateEndpointResponse> {
    this.calls.push('CreateEndpoint');
    const n = this.#network(req.NetworkID);
    if (n.endpoints.has(req.EndpointID)) throw new BerthError('BERTH_ENDPOINT_EXISTS', `endpoint ${req.EndpointID} already exists`);
    const given = req.Interface ?? { Address: '', AddressIPv6: '', MacAddress: '' };
    const mac = given.MacAddress !== '' ? given.MacAddress : macFor(given.Address, req.EndpointID);
    n.endpoints.set(req.EndpointID, { id: req.EndpointID, address: given.Address, mac, joined: undefined, ports: [] });
    return given.MacAddress === '' ? { Interface: { MacAddress: mac } } : {};
  }

  async endpointOperInfo(req: EndpointRef): Promise<EndpointOperInfoResponse> {
    this.calls.push('EndpointOperInfo');
    const e = this.#endpoint(req);
    return { Value: { 'com.docker.network.endpoint.macaddress': e.mac, 'com.docker.network.portmap': e.ports } };
  }

  async deleteEndpoint(req: EndpointRef): Promise<void> {
    this.calls.push('DeleteEndpoint');
    this.#endpoint(req);
    this.#network(req.NetworkID).endpoints.delete(req.EndpointID);
  }

  async join(req: JoinRequest): Promise<JoinResponse> {
    this.calls.push('Join');
    const e = this.#endpoint(req);
    const n = this.#network(req.NetworkID);
    e.joined = req.SandboxKey;
    return { InterfaceName: { SrcName: `veth${req.EndpointID.slice(0, 7)}`, DstPrefix: 'eth' }, ...(n.gateway === undefined ? {} : { Gateway: n.gateway }) };
  }

  async leave(req: EndpointRef): Promise<void> {
    this.calls.push('Leave');
    this.#endpoint(req).joined = undefined;
  }

  async programExternalConnectivity(req: ExternalConnectivityRequest): Promise<void> {
    this.calls.push('ProgramExternalConnectivity');
    const e = this.#endpoint(req);
    const map = req.Options?.['com.docker.network.portmap'];
    e.ports = Array.isArray(map) ? (map as PortBinding[]) : [];
  }

  async revokeExternalConnectivity(req: EndpointRef): Promise<void> {
    this.calls.push('RevokeExternalConnectivity');
    this.#endpoint(req).ports = [];
  }

  async allocateNetwork(req: AllocateNetworkRequest): Promise<{ Options: Record<string, string> }> {
    this.calls.push('AllocateNetwork');
    return { Options: req.Options ?? {} };
  }

  async freeNetwork(_req: NetworkRef): Promise<void> {
    this.calls.push('FreeNetwork');
  }

  async discoverNew(): Promise<void> {
    this.calls.push('DiscoverNew');
  }

  async discoverDelete(): Promise<void> {
    this.calls.push('DiscoverDelete');
  }

  #network(id: string): FakeNetwork {
    const n = this.#networks.get(id);
    if (n === undefined) throw new BerthError('BERTH_NETWORK_NOT_FOUND', `network ${id} not found`);
    return n;
  }

  #endpoint(ref: EndpointRef): FakeEndpoint {
    const e = this.#network(ref.NetworkID).endpoints.get(ref.EndpointID);
    if (e === undefined) throw new BerthError('BERTH_ENDPOINT_NOT_FOUND', `endpoint ${ref.EndpointID} not found`);
    return e;
  }
}

export const fakeNetworkDriver = (name?: string): FakeNetworkDriver => new FakeNetworkDriver(name);
