export type { Firewall, FirewallDeps, FirewallNetwork, PortMapping, ProcFiles } from './types.js';
export { createFirewall } from './firewall.js';
export { procFiles } from './proc.js';
