export { createServer } from './server.js';
export type { ServerOptions, UpgradeHandler } from './server.js';
export { listen, parseHost } from './http/listen.js';
export type { Listener, HostAddress } from './http/listen.js';
