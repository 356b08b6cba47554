export { startEmbeddedDns, EMBEDDED_DNS_ADDRESS } from './server.js';
export type { EmbeddedDns, EmbeddedDnsOptions } from './server.js';
export type { DnsRecords } from './message.js';
