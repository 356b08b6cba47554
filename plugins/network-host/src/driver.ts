/**
 * The `host` and `null` network drivers. Neither makes anything in the kernel: a container
 * on `host` shares the daemon's network namespace, one on `none` (driver `null`) gets a
 * namespace with only `lo` (the controller makes that sandbox). Like Docker's, each driver
 * holds exactly one network (the predefined `host` / `none`), which cannot be deleted, and
 * accepts every endpoint call: after a daemon restart the controller re-creates the network
 * but not the endpoints of running containers, so an endpoint it does not know is not an error.
 */
import { BerthError } from '@berth/errors';
import type {
  AllocateNetworkRequest,
  CreateEndpointRequest,
  CreateEndpointResponse,
  CreateNetworkRequest,
  DiscoveryNotification,
  DriverLogger,
  EndpointOperInfoResponse,
  EndpointRef,
  ExternalConnectivityRequest,
  JoinRequest,
  JoinResponse,
  NetworkCapabilities,
  NetworkDriver,
  NetworkRef,
} from '@berth/plugin-api';

export class SingletonNetworkDriver implements NetworkDriver {
  #network: string | undefined;

  constructor(
    readonly name: 'host' | 'null',
    private readonly joinAnswer: () => JoinResponse,
    private readonly log?: DriverLogger,
  ) {}

  /** The id of the one network, once made. */
  get networkId(): string | undefined {
    return this.#network;
  }

  async getCapabilities(): Promise<NetworkCapabilities> {
    return { Scope: 'local', ConnectivityScope: 'local' };
  }

  async createNetwork(req: CreateNetworkRequest): Promise<void> {
    if (this.#network !== undefined && this.#network !== req.NetworkID) {
      throw new BerthError('BERTH_NETWORK_FORBIDDEN', `only one instance of "${this.name}" network is allowed`, { details: { existing: this.#network } });
    }
    this.#network = req.NetworkID;
    this.log?.debug({ networkId: req.NetworkID }, 'network created');
  }

  async deleteNetwork(_req: NetworkRef): Promise<void> {
    throw new BerthError('BERTH_NETWORK_FORBIDDEN', `network of type "${this.name}" cannot be deleted`);
  }

  async createEndpoint(_req: CreateEndpointRequest): Promise<CreateEndpointResponse> {
    return {};
  }

  async endpointOperInfo(_req: EndpointRef): Promise<EndpointOperInfoResponse> {
    return { Value: {} };
  }

  async deleteEndpoint(_req: EndpointRef): Promise<void> {}

  async join(_req: JoinRequest): Promise<JoinResponse> {
    return this.joinAnswer();
  }

  async leave(_req: EndpointRef): Promise<void> {}

  async programExternalConnectivity(_req: ExternalConnectivityRequest): Promise<void> {}

  async revokeExternalConnectivity(_req: EndpointRef): Promise<void> {}

  async allocateNetwork(req: AllocateNetworkRequest): Promise<{ Options: Record<string, string> }> {
    return { Options: req.Options ?? {} };
  }

  async freeNetwork(_req: NetworkRef): Promise<void> {}

  async discoverNew(_req: DiscoveryNotification): Promise<void> {}

  async discoverDelete(_req: DiscoveryNotification): Promise<void> {}
}

/** `host`: Join moves no interface in (there is no sandbox of its own) and needs no gateway service. */
export const createHostDriver = (log?: DriverLogger): SingletonNetworkDriver =>
  new SingletonNetworkDriver('host', () => ({ DisableGatewayService: true }), log);

/** `null`: Join answers nothing; the sandbox keeps only `lo`. */
export const createNullDriver = (log?: DriverLogger): SingletonNetworkDriver => new SingletonNetworkDriver('null', () => ({}), log);
