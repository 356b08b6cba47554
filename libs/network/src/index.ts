export { NetworkController } from './controller.js';
export type { NetworkControllerOptions, AttachRequest, SandboxRequest, EndpointView, SandboxView } from './controller.js';
export { wirePorts, portsView, parsePortKey, protoName, compressBindings, expandBindings } from './ports.js';
export type { PortRun } from './ports.js';
export { prefixOf, cidrOf, addressOf, overlaps, contains, ipOfCidr, bitsOfCidr } from './cidr.js';
export type { Prefix } from './cidr.js';
export type { NetworkRecord, EndpointRecord, SandboxRecord, PoolLease } from './types.js';
export { startEmbeddedDns, EMBEDDED_DNS_ADDRESS } from './dns/index.js';
export type { DnsRecords, EmbeddedDns } from './dns/index.js';
