import { Type, type TSchema, type Static } from '@sinclair/typebox';
import { Value, type ValueError } from '@sinclair/typebox/value';
import { BerthError } from '@berth/errors';

/**
 * Request body schemas (typebox) for the bodies berthd reads. They check types only: clients
 * send every key, often as null or an empty collection, so every collection is nullable and
 * unknown keys are allowed (newer clients add fields). Normalising values is the engine's job.
 */
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Opt = <T extends TSchema>(t: T) => Type.Optional(Nullable(t));
const Int = Type.Integer();
const StringList = Type.Array(Type.String());
const StringMapSchema = Type.Record(Type.String(), Type.String());
const EmptyObjectMap = Type.Record(Type.String(), Type.Unknown());
/** `Cmd`, `Entrypoint`, `Shell`: the daemon also accepts a single string. */
const StrSlice = Type.Union([StringList, Type.String()]);
const ConsoleSize = Type.Array(Int, { minItems: 2, maxItems: 2 });
const Open = { additionalProperties: true } as const;

export const HealthConfigSchema = Type.Object(
  {
    Test: Opt(StringList),
    Interval: Opt(Int),
    Timeout: Opt(Int),
    StartPeriod: Opt(Int),
    StartInterval: Opt(Int),
    Retries: Opt(Int),
  },
  Open,
);

const PortBindingSchema = Type.Object({ HostIp: Opt(Type.String()), HostPort: Opt(Type.String()) }, Open);

export const HostConfigBodySchema = Type.Object(
  {
    Binds: Opt(StringList),
    ContainerIDFile: Opt(Type.String()),
    LogConfig: Opt(Type.Object({ Type: Opt(Type.String()), Config: Opt(StringMapSchema) }, Open)),
    NetworkMode: Opt(Type.String()),
    PortBindings: Opt(Type.Record(Type.String(), Nullable(Type.Array(PortBindingSchema)))),
    RestartPolicy: Opt(Type.Object({ Name: Opt(Type.String()), MaximumRetryCount: Opt(Int) }, Open)),
    AutoRemove: Opt(Type.Boolean()),
    VolumeDriver: Opt(Type.String()),
    VolumesFrom: Opt(StringList),
    ConsoleSize: Opt(ConsoleSize),
    Annotations: Opt(StringMapSchema),
    CapAdd: Opt(StringList),
    CapDrop: Opt(StringList),
    CgroupnsMode: Opt(Type.String()),
    Dns: Opt(StringList),
    DnsOptions: Opt(StringList),
    DnsSearch: Opt(StringList),
    ExtraHosts: Opt(StringList),
    GroupAdd: Opt(StringList),
    IpcMode: Opt(Type.String()),
    Cgroup: Opt(Type.String()),
    Links: Opt(StringList),
    OomScoreAdj: Opt(Int),
    PidMode: Opt(Type.String()),
    Privileged: Opt(Type.Boolean()),
    PublishAllPorts: Opt(Type.Boolean()),
    ReadonlyRootfs: Opt(Type.Boolean()),
    SecurityOpt: Opt(StringList),
    StorageOpt: Opt(StringMapSchema),
    Tmpfs: Opt(StringMapSchema),
    UTSMode: Opt(Type.String()),
    UsernsMode: Opt(Type.String()),
    ShmSize: Opt(Int),
    Sysctls: Opt(StringMapSchema),
    Runtime: Opt(Type.String()),
    Isolation: Opt(Type.String()),
    MaskedPaths: Opt(StringList),
    ReadonlyPaths: Opt(StringList),
    Init: Opt(Type.Boolean()),
    CpuShares: Opt(Int),
    Memory: Opt(Int),
    NanoCpus: Opt(Int),
    CgroupParent: Opt(Type.String()),
    BlkioWeight: Opt(Int),
    CpuPeriod: Opt(Int),
    CpuQuota: Opt(Int),
    CpuRealtimePeriod: Opt(Int),
    CpuRealtimeRuntime: Opt(Int),
    CpusetCpus: Opt(Type.String()),
    CpusetMems: Opt(Type.String()),
    Devices: Opt(
      Type.Array(
        Type.Object({ PathOnHost: Opt(Type.String()), PathInContainer: Opt(Type.String()), CgroupPermissions: Opt(Type.String()) }, Open),
      ),
    ),
    DeviceCgroupRules: Opt(StringList),
    KernelMemory: Opt(Int),
    KernelMemoryTCP: Opt(Int),
    MemoryReservation: Opt(Int),
    MemorySwap: Opt(Int),
    MemorySwappiness: Opt(Int),
    OomKillDisable: Opt(Type.Boolean()),
    PidsLimit: Opt(Int),
    Ulimits: Opt(Type.Array(Type.Object({ Name: Type.String(), Soft: Int, Hard: Int }, Open))),
    Mounts: Opt(Type.Array(Type.Object({ Type: Opt(Type.String()), Source: Opt(Type.String()), Target: Opt(Type.String()), ReadOnly: Opt(Type.Boolean()) }, Open))),
  },
  Open,
);

export const EndpointSettingsBodySchema = Type.Object(
  {
    IPAMConfig: Opt(
      Type.Object({ IPv4Address: Opt(Type.String()), IPv6Address: Opt(Type.String()), LinkLocalIPs: Opt(StringList) }, Open),
    ),
    Links: Opt(StringList),
    Aliases: Opt(StringList),
    MacAddress: Opt(Type.String()),
    DriverOpts: Opt(StringMapSchema),
  },
  Open,
);

/** `POST /containers/create`: Config flattened, plus HostConfig and NetworkingConfig. */
export const ContainerCreateBodySchema = Type.Object(
  {
    Hostname: Opt(Type.String()),
    Domainname: Opt(Type.String()),
    User: Opt(Type.String()),
    AttachStdin: Opt(Type.Boolean()),
    AttachStdout: Opt(Type.Boolean()),
    AttachStderr: Opt(Type.Boolean()),
    ExposedPorts: Opt(EmptyObjectMap),
    Tty: Opt(Type.Boolean()),
    OpenStdin: Opt(Type.Boolean()),
    StdinOnce: Opt(Type.Boolean()),
    Env: Opt(StringList),
    Cmd: Opt(StrSlice),
    Healthcheck: Opt(HealthConfigSchema),
    ArgsEscaped: Opt(Type.Boolean()),
    Image: Opt(Type.String()),
    Volumes: Opt(EmptyObjectMap),
    WorkingDir: Opt(Type.String()),
    Entrypoint: Opt(StrSlice),
    NetworkDisabled: Opt(Type.Boolean()),
    MacAddress: Opt(Type.String()),
    OnBuild: Opt(StringList),
    Labels: Opt(StringMapSchema),
    StopSignal: Opt(Type.String()),
    StopTimeout: Opt(Int),
    Shell: Opt(StrSlice),
    HostConfig: Opt(HostConfigBodySchema),
    NetworkingConfig: Opt(Type.Object({ EndpointsConfig: Opt(Type.Record(Type.String(), Nullable(EndpointSettingsBodySchema))) }, Open)),
  },
  Open,
);

/** `POST /containers/{id}/exec`. */
export const ExecCreateBodySchema = Type.Object(
  {
    User: Opt(Type.String()),
    Privileged: Opt(Type.Boolean()),
    Tty: Opt(Type.Boolean()),
    ConsoleSize: Opt(ConsoleSize),
    AttachStdin: Opt(Type.Boolean()),
    AttachStdout: Opt(Type.Boolean()),
    AttachStderr: Opt(Type.Boolean()),
    Detach: Opt(Type.Boolean()),
    DetachKeys: Opt(Type.String()),
    Env: Opt(StringList),
    WorkingDir: Opt(Type.String()),
    Cmd: Opt(StringList),
  },
  Open,
);

/** `POST /exec/{id}/start`. */
export const ExecStartBodySchema = Type.Object(
  { Detach: Opt(Type.Boolean()), Tty: Opt(Type.Boolean()), ConsoleSize: Opt(ConsoleSize) },
  Open,
);

/**
 * Checks a decoded JSON body against a schema. A missing or `null` body counts as `{}`.
 * Throws InvalidArgument naming the first offending field (`HostConfig.Memory`), with the
 * field in `details.field`.
 */
export function checkBody<S extends TSchema>(schema: S, body: unknown): Static<S> {
  const value = body === undefined || body === null ? {} : body;
  if (Value.Check(schema, value)) return value as Static<S>;
  const top = Value.Errors(schema, value).First();
  const first = top ? deepest(top) : undefined;
  const path = first ? first.path.replace(/^\//, '').split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).join('.') : '';
  if (path === '') throw new BerthError('BERTH_INVALID_ARGUMENT', 'invalid request body: expected a JSON object', { details: { field: '' } });
  const got = first ? describe(first.value) : 'a value';
  throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid request body: field ${path}: ${first?.message.toLowerCase() ?? 'invalid'}, got ${got}`, {
    details: { field: path },
  });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/**
 * A union error (`T | null`) reports only "Expected union value" at the union's path; the
 * useful message is inside the non-null variant, possibly deeper (`HostConfig.Memory`).
 */
function deepest(err: ValueError): ValueError {
  let best: ValueError | undefined;
  for (const it of err.errors ?? []) {
    const cand = it.First();
    if (!cand) continue;
    const c = deepest(cand);
    if (c.message === 'Expected null') continue;
    if (!best || c.path.length > best.path.length) best = c;
  }
  return best ?? err;
}
