export { ChangeKind, isDriverSkip, graphDriverMethods } from './graph.js';
export type {
  DriverLogFn,
  DriverLogger,
  CreateOpts,
  Change,
  GraphDriverCapabilities,
  GraphDriver,
  GraphDriverDeps,
  DriverSkip,
  GraphDriverDescriptor,
  GraphDriverWireRequest,
  GraphDriverWireResponse,
  GraphDriverWireInit,
} from './graph.js';
export { Proto, NetLabel, networkDriverMethods, optionalNetworkMethods, compressBindings, expandBindings } from './network.js';
export type {
  IPAMData,
  PortBinding,
  PortRun,
  TransportPort,
  NetworkCapabilities,
  CreateNetworkRequest,
  NetworkRef,
  EndpointRef,
  EndpointInterface,
  CreateEndpointRequest,
  CreateEndpointResponse,
  EndpointOperInfoResponse,
  JoinRequest,
  StaticRoute,
  JoinResponse,
  ExternalConnectivityRequest,
  AllocateNetworkRequest,
  DiscoveryNotification,
  NetworkDriver,
  NetworkDriverDeps,
  NetworkDriverDescriptor,
} from './network.js';
export { RequestAddressType, IpamSerialOption, ipamDriverMethods, optionalIpamMethods } from './ipam.js';
export type {
  IpamCapabilities,
  AddressSpaces,
  RequestPoolRequest,
  RequestPoolResponse,
  PoolRef,
  RequestAddressRequest,
  RequestAddressResponse,
  ReleaseAddressRequest,
  IpamDriver,
  IpamDriverDeps,
  IpamDriverDescriptor,
} from './ipam.js';
export { PLUGIN_MEDIA_TYPE, PLUGIN_MEDIA_TYPE_SDK, ACTIVATE_PATH, Subsystem, errorFieldOf, pluginSocketDirs, pluginSpecDirs, ERROR_CODE_FIELD, PLUGIN_UNIX_HOST } from './protocol.js';
export type { ActivateResponse } from './protocol.js';
export { volumeDriverMethods, optionalVolumeMethods } from './volume.js';
export type { VolumeDriver, VolumeInfo, VolumeCapabilities, VolumeCreateRequest as VolumeDriverCreateRequest, VolumeRef, VolumeMountRequest } from './volume.js';
export { authzPluginMethods, AUTHZ_MAX_BODY, authzHiddenHeaders } from './authz.js';
export type { AuthzPlugin, AuthzRequest, AuthzResponse } from './authz.js';
