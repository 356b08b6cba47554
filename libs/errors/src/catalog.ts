import { ErrorKind } from './kinds.js';

/**
 * Every error code Berth raises. docs/errors.md lists the same codes; a test keeps the two
 * equal. Adding a code: a row here and a row there.
 */
export const catalog = {
  BERTH_INVALID_ARGUMENT: { kind: ErrorKind.InvalidArgument, summary: 'A request or argument is malformed.' },
  BERTH_SPEC_INVALID: { kind: ErrorKind.InvalidArgument, summary: 'An OCI runtime spec (config.json) is missing, malformed or names an invalid value.' },
  BERTH_PATH_ESCAPES_ROOT: { kind: ErrorKind.InvalidArgument, summary: 'A path in the spec resolves outside the container root.' },
  BERTH_BUNDLE_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'The bundle directory does not exist.' },
  BERTH_CONTAINER_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'No container has that id.' },
  BERTH_CONTAINER_EXISTS: { kind: ErrorKind.AlreadyExists, summary: 'A container with that id already exists.' },
  BERTH_CONTAINER_STATE: { kind: ErrorKind.Conflict, summary: 'The container is not in a state that allows the operation.' },
  BERTH_SIGNAL_INVALID: { kind: ErrorKind.InvalidArgument, summary: 'The signal name or number is not valid.' },
  BERTH_CONTAINER_START_FAILED: { kind: ErrorKind.Internal, summary: 'The container init failed before the process ran.' },
  BERTH_NATIVE_UNAVAILABLE: { kind: ErrorKind.Unavailable, summary: 'The native addon or executables are not built.' },
  BERTH_CGROUP: { kind: ErrorKind.Internal, summary: 'A cgroup could not be created, configured or removed.' },
  BERTH_SECCOMP_PROFILE: { kind: ErrorKind.InvalidArgument, summary: 'A seccomp profile names an unknown syscall, action or architecture.' },
  BERTH_FIXTURE_UNAVAILABLE: { kind: ErrorKind.FailedPrecondition, summary: 'A test fixture cannot be built on this host: a host binary it needs is missing or failed.' },
  BERTH_INTERNAL: { kind: ErrorKind.Internal, summary: 'An unexpected failure; the message says where.' },
  BERTH_IMAGE_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'No image matches the reference or id.' },
  BERTH_REFERENCE_INVALID: { kind: ErrorKind.InvalidArgument, summary: 'An image reference (name, tag or digest) is malformed.' },
  BERTH_IMAGE_CONFLICT: { kind: ErrorKind.Conflict, summary: 'The image cannot be removed or tagged as asked (in use, referenced, or must be forced).' },
  BERTH_ARCHIVE_INVALID: { kind: ErrorKind.InvalidArgument, summary: 'A tar archive or layer is malformed or tries to leave its layer (.., writes through symlinks, hardlinks outside).' },
  BERTH_LAYER_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'No layer or container layer has that id.' },
  BERTH_STORAGE: { kind: ErrorKind.Internal, summary: 'A storage driver or the image/layer store failed on disk.' },
  BERTH_NOT_IMPLEMENTED: { kind: ErrorKind.NotImplemented, summary: 'The operation is not implemented (yet) by this daemon; the message names it.' },
  BERTH_EXEC_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'No exec instance has that id.' },
  BERTH_SHIM_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'Neither the shim control socket nor the exit file of a container process exists.' },
  BERTH_SHIM_FAILED: { kind: ErrorKind.Internal, summary: 'The container shim refused a request or answered outside its protocol.' },
  BERTH_DAEMON_RUNNING: { kind: ErrorKind.Conflict, summary: 'Another live berthd holds the pid file or serves the socket.' },
  BERTH_REGISTRY_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'The registry does not have the repository, tag, manifest or blob, or denies that it exists (pull access denied).' },
  BERTH_REGISTRY_UNAUTHORIZED: { kind: ErrorKind.PermissionDenied, summary: 'The registry wants credentials that were not given or refuses the ones given.' },
  BERTH_REGISTRY_PROTOCOL: { kind: ErrorKind.Internal, summary: 'The registry answered outside the distribution protocol: garbage, an unsupported manifest, or content whose digest does not match.' },
  BERTH_REGISTRY_UNAVAILABLE: { kind: ErrorKind.Unavailable, summary: 'The registry cannot be reached or answered with a server error.' },
  BERTH_CONTAINER_PATH_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'A path asked for in a container\'s filesystem (cp, archive) does not exist there.' },
  BERTH_NETWORK_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'No network matches the name, id or id prefix.' },
  BERTH_NETWORK_EXISTS: { kind: ErrorKind.Conflict, summary: 'A network with that name already exists.' },
  BERTH_NETWORK_FORBIDDEN: { kind: ErrorKind.PermissionDenied, summary: 'The network operation is not allowed: a pre-defined network, a network with active endpoints, or a mode that cannot be combined.' },
  BERTH_NETWORK: { kind: ErrorKind.Internal, summary: 'A network driver, IPAM driver or the kernel failed while setting up or tearing down a network, endpoint or sandbox.' },
  BERTH_ENDPOINT_EXISTS: { kind: ErrorKind.Conflict, summary: 'The container is already attached to that network.' },
  BERTH_DRIVER_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'No network or IPAM driver (built-in or plugin) has that name.' },
  BERTH_IPAM_POOL_OVERLAP: { kind: ErrorKind.PermissionDenied, summary: 'An IPAM pool request overlaps a pool already allocated in that address space (Docker: "Pool overlaps with other one on this address space").' },
  BERTH_IPAM_NO_POOL: { kind: ErrorKind.InvalidArgument, summary: 'Every predefined address pool is allocated or overlaps a host route (Docker: "all predefined address pools have been fully subnetted").' },
  BERTH_IPAM_POOL_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'No IPAM pool has that pool id.' },
  BERTH_IPAM_ADDRESS_IN_USE: { kind: ErrorKind.PermissionDenied, summary: 'The requested address (--ip, --gateway, aux address) is already allocated or reserved (Docker: "Address already in use").' },
  BERTH_IPAM_NO_ADDRESS: { kind: ErrorKind.Unavailable, summary: 'Every address of the pool (or its --ip-range) is allocated (Docker: "no available addresses on this pool").' },
  BERTH_PLUGIN_NOT_FOUND: { kind: ErrorKind.NotFound, summary: 'No plugin socket, .spec or .json file has that name in the plugin directories, or it does not implement the requested driver kind.' },
  BERTH_PLUGIN: { kind: ErrorKind.Internal, summary: 'A plugin could not be reached, answered outside the protocol, or reported an error of its own; the message names the call (Subsystem.Method).' },
} as const satisfies Record<string, { kind: ErrorKind; summary: string }>;

export type ErrorCode = keyof typeof catalog;
