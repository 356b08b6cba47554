/**
 * The volume-driver contract: one method per endpoint of Docker's VolumeDriver plugin protocol,
 * requests and responses as on the wire (specs/plugin-protocol.md §7). A driver reports failure
 * by throwing; the plugin server answers `{"Err": ...}`.
 */

/** One volume as Get and List answer it. `CreatedAt` is RFC 3339 or absent; `Status` shows in inspect. */
export interface VolumeInfo {
  Name: string;
  Mountpoint?: string;
  CreatedAt?: string;
  Status?: Record<string, unknown>;
}

export interface VolumeCapabilities {
  /** `local` or `global`; anything else is taken as local. */
  Scope: string;
}

export interface VolumeCreateRequest {
  Name: string;
  /** `docker volume create -o`, a mount's `volume-opt`; null when none. */
  Opts: Record<string, string> | null;
}

export interface VolumeRef {
  Name: string;
}

/** Mount and Unmount: `ID` is a 64-hex id made per mount, the same for the matching Unmount. */
export interface VolumeMountRequest {
  Name: string;
  ID: string;
}

export interface VolumeDriver {
  /** The wire name (`-d <name>`). */
  readonly name: string;
  create(req: VolumeCreateRequest): Promise<void>;
  remove(req: VolumeRef): Promise<void>;
  /** A host path the engine binds into the container. */
  mount(req: VolumeMountRequest): Promise<{ Mountpoint: string }>;
  unmount(req: VolumeMountRequest): Promise<void>;
  path(req: VolumeRef): Promise<{ Mountpoint: string }>;
  /** `Volume` null (no error): no such volume. */
  get(req: VolumeRef): Promise<{ Volume: VolumeInfo | null }>;
  list(req?: Record<string, never>): Promise<{ Volumes: VolumeInfo[] }>;
  capabilities(req?: Record<string, never>): Promise<{ Capabilities: VolumeCapabilities }>;
}

export const volumeDriverMethods = {
  'VolumeDriver.Create': 'create',
  'VolumeDriver.Remove': 'remove',
  'VolumeDriver.Mount': 'mount',
  'VolumeDriver.Unmount': 'unmount',
  'VolumeDriver.Path': 'path',
  'VolumeDriver.Get': 'get',
  'VolumeDriver.List': 'list',
  'VolumeDriver.Capabilities': 'capabilities',
} as const satisfies Record<string, keyof VolumeDriver>;

/** A failure of Capabilities (404 included) means scope `local` (§7). */
export const optionalVolumeMethods: readonly string[] = ['VolumeDriver.Capabilities'];
