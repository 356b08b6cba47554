export { startEmbeddedDns, serveDns, EMBEDDED_DNS_ADDRESS, DEFAULT_DNS_LIMITS, DEFAULT_FORWARD_TIMEOUT_MS } from './server.js';
export type { EmbeddedDns, EmbeddedDnsOptions, DnsLimits, DnsServer } from './server.js';
export type { DnsRecords } from './message.js';
