import type { Readable } from 'node:stream';

/**
 * The storage-driver contract: one method per endpoint of Docker's GraphDriver plugin protocol
 * (`/GraphDriver.Create` <-> `create`), see specs/plugin-protocol.md §8. Ids are the driver's
 * layer ids (the layer store's cache ids); `parent` is `''` for "no parent", as on the wire.
 */

/** The logging surface a driver gets; @berth/log's Logger fits it. */
export interface DriverLogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}
export interface DriverLogger {
  error: DriverLogFn;
  warn: DriverLogFn;
  info: DriverLogFn;
  debug: DriverLogFn;
  trace: DriverLogFn;
  child(bindings: Record<string, unknown>): DriverLogger;
}

/** Options of Create / CreateReadWrite (wire: `MountLabel`, `StorageOpt`). */
export interface CreateOpts {
  mountLabel?: string;
  storageOpt?: Record<string, string>;
  /**
   * Berth's hint, never sent on the wire: the read-write layer is thrown away when its
   * container ends (`--rm`), so its writes need not survive a host crash. A driver may then
   * skip syncing it (overlayfs `volatile`: no sync of the upper filesystem at unmount, which
   * otherwise costs milliseconds to tens of milliseconds per container). Drivers may ignore it.
   */
  volatile?: boolean;
}

/** Kind of one change, numbered as on the wire. */
export const ChangeKind = { Modify: 0, Add: 1, Delete: 2 } as const;
export type ChangeKind = (typeof ChangeKind)[keyof typeof ChangeKind];

/** One entry of `/GraphDriver.Changes`: an absolute path inside the layer ("/etc/passwd"). */
export interface Change {
  path: string;
  kind: ChangeKind;
}

export interface GraphDriverCapabilities {
  /** The driver's diff of an applied layer is byte-identical to the applied tar. */
  reproducesExactDiffs: boolean;
}

export interface GraphDriver {
  /** The wire name (`vfs`, `overlay2`). */
  readonly name: string;
  /** A new read-only layer on top of `parent` (`''` = none). */
  create(id: string, parent: string, opts?: CreateOpts): Promise<void>;
  /** A new read-write (container) layer on top of `parent`. */
  createReadWrite(id: string, parent: string, opts?: CreateOpts): Promise<void>;
  remove(id: string): Promise<void>;
  /** Mounts the layer (counted) and answers its absolute path. */
  get(id: string, mountLabel?: string): Promise<string>;
  /** Releases one `get`. */
  put(id: string): Promise<void>;
  exists(id: string): Promise<boolean>;
  /** Key/value pairs for `docker info`'s DriverStatus. */
  status(): Promise<[string, string][]>;
  /** Shown as `GraphDriver.Data` in inspect. */
  getMetadata(id: string): Promise<Record<string, string>>;
  /** Daemon shutdown: release what the driver holds. */
  cleanup(): Promise<void>;
  /** A tar of the changes of `id` against `parent` (`''`: the whole layer). */
  diff(id: string, parent: string): Promise<Readable>;
  changes(id: string, parent: string): Promise<Change[]>;
  /** Extracts a layer tar (with `.wh.` whiteouts) into `id`; answers the bytes the layer now holds. */
  applyDiff(id: string, parent: string, diff: Readable): Promise<number>;
  diffSize(id: string, parent: string): Promise<number>;
  capabilities(): Promise<GraphDriverCapabilities>;
}

export interface GraphDriverDeps {
  /** The driver's home directory, e.g. /var/lib/berth/vfs (wire: Init's `Home`). */
  root: string;
  logger: DriverLogger;
  /** `--storage-opt` key=value pairs for this driver (wire: Init's `Opts`). */
  options?: Record<string, string>;
}

/** `create` answers this when the driver does not apply on this host (not a failure). */
export interface DriverSkip {
  skip: string;
}

export interface GraphDriverDescriptor {
  kind: 'graph';
  name: string;
  create(deps: GraphDriverDeps): Promise<GraphDriver | DriverSkip>;
}

export function isDriverSkip(x: unknown): x is DriverSkip {
  return typeof x === 'object' && x !== null && typeof (x as { skip?: unknown }).skip === 'string';
}

// ---- wire shapes (Docker's field names) ----

/** `graphDriverRequest`; all fields omitempty. */
export interface GraphDriverWireRequest {
  ID?: string;
  Parent?: string;
  MountLabel?: string;
  StorageOpt?: Record<string, string>;
}

/** `graphDriverResponse`. */
export interface GraphDriverWireResponse {
  Err?: string;
  Dir?: string;
  Exists?: boolean;
  Status?: [string, string][];
  Changes?: { Path: string; Kind: number }[] | null;
  Size?: number;
  Metadata?: Record<string, string> | null;
  Capabilities?: { ReproducesExactDiffs: boolean };
}

export interface GraphDriverWireInit {
  Home: string;
  Opts: string[] | null;
  UIDMaps: { container_id: number; host_id: number; size: number }[] | null;
  GIDMaps: { container_id: number; host_id: number; size: number }[] | null;
}

/** Wire method name <-> interface method. Diff answers a raw tar; ApplyDiff takes one as body. */
export const graphDriverMethods = {
  'GraphDriver.Create': 'create',
  'GraphDriver.CreateReadWrite': 'createReadWrite',
  'GraphDriver.Remove': 'remove',
  'GraphDriver.Get': 'get',
  'GraphDriver.Put': 'put',
  'GraphDriver.Exists': 'exists',
  'GraphDriver.Status': 'status',
  'GraphDriver.GetMetadata': 'getMetadata',
  'GraphDriver.Cleanup': 'cleanup',
  'GraphDriver.Diff': 'diff',
  'GraphDriver.Changes': 'changes',
  'GraphDriver.ApplyDiff': 'applyDiff',
  'GraphDriver.DiffSize': 'diffSize',
  'GraphDriver.Capabilities': 'capabilities',
} as const satisfies Record<string, keyof GraphDriver>;
