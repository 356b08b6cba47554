/**
 * What every kind shares on the plugin wire (specs/plugin-protocol.md §2, §3): the handshake,
 * the content type, the subsystem names and where each kind puts its error text.
 */

/** The engine's Accept header; the Go SDK answers with v1.1. Both are accepted. */
export const PLUGIN_MEDIA_TYPE = 'application/vnd.docker.plugins.v1.2+json';
export const PLUGIN_MEDIA_TYPE_SDK = 'application/vnd.docker.plugins.v1.1+json';

export const ACTIVATE_PATH = '/Plugin.Activate';

export interface ActivateResponse {
  Implements: string[];
}

export const Subsystem = {
  network: 'NetworkDriver',
  ipam: 'IpamDriver',
  graph: 'GraphDriver',
  volume: 'VolumeDriver',
  /** Authorization plugins: Docker spells this one in lower case. */
  authz: 'authz',
} as const;
export type Subsystem = (typeof Subsystem)[keyof typeof Subsystem];

/** The field of a 200 answer that carries an application error: IPAM says `Error`, the rest `Err`. */
export function errorFieldOf(subsystem: string): 'Err' | 'Error' {
  return subsystem === Subsystem.ipam ? 'Error' : 'Err';
}

/** Plugin directories searched for `<name>.sock|.spec|.json`, Berth's first, then Docker's. */
export const pluginSocketDirs: readonly string[] = ['/run/berth/plugins', '/run/docker/plugins'];
export const pluginSpecDirs: readonly string[] = ['/etc/berth/plugins', '/etc/docker/plugins', '/usr/lib/docker/plugins'];

/**
 * Berth's extension of the error envelope: next to `Err`/`Error`, a Berth plugin server puts
 * the catalog code of the error (`BERTH_IPAM_POOL_OVERLAP`) so a Berth client raises the same
 * code (and kind, and HTTP status) as the in-process driver. Docker ignores unknown fields.
 */
export const ERROR_CODE_FIELD = 'BerthCode';

/** The Host header the engine sends over unix sockets (Go's dummy name, v27). */
export const PLUGIN_UNIX_HOST = 'plugin.moby.localhost';
