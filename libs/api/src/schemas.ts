import { BerthError } from '@berth/errors';

/**
 * Request body schemas for the bodies berthd reads, and their checker. They check types only:
 * clients send every key, often as null or an empty collection, so every collection is nullable
 * and unknown keys are allowed (newer clients add fields). Normalising values is the engine's
 * job. Hand-written rather than a schema library: typebox and its value checker held ~3 MiB of
 * berthd's heap from the first container create on (bench/lifecycle, issue 3).
 */
export type BodySchema =
  | { readonly kind: 'string' | 'integer' | 'boolean' | 'unknown' }
  /** `Cmd`, `Entrypoint`, `Shell`: a list of strings, or a single string. */
  | { readonly kind: 'strslice' }
  | { readonly kind: 'null-or'; readonly of: BodySchema }
  | { readonly kind: 'array'; readonly items: BodySchema; readonly length?: number }
  | { readonly kind: 'record'; readonly values: BodySchema }
  /** Open: keys not listed pass unchecked. */
  | { readonly kind: 'object'; readonly props: Readonly<Record<string, { readonly schema: BodySchema; readonly optional: boolean }>> };

type Field = BodySchema | { readonly optional: true; readonly schema: BodySchema };

const Str: BodySchema = { kind: 'string' };
const Int: BodySchema = { kind: 'integer' };
const Bool: BodySchema = { kind: 'boolean' };
const nullable = (of: BodySchema): BodySchema => ({ kind: 'null-or', of });
/** An optional key whose value may also be null. */
const Opt = (t: BodySchema): Field => ({ optional: true, schema: nullable(t) });
const list = (items: BodySchema): BodySchema => ({ kind: 'array', items });
const record = (values: BodySchema): BodySchema => ({ kind: 'record', values });
const obj = (fields: Record<string, Field>): BodySchema => ({
  kind: 'object',
  props: Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, 'optional' in f ? { schema: f.schema, optional: true } : { schema: f, optional: false }])),
});
const StringList = list(Str);
const StringMapSchema = record(Str);
const EmptyObjectMap = record({ kind: 'unknown' });
const StrSlice: BodySchema = { kind: 'strslice' };
const ConsoleSize: BodySchema = { kind: 'array', items: Int, length: 2 };

export const HealthConfigSchema: BodySchema = obj(
  {
    Test: Opt(StringList),
    Interval: Opt(Int),
    Timeout: Opt(Int),
    StartPeriod: Opt(Int),
    StartInterval: Opt(Int),
    Retries: Opt(Int),
  },
);

const PortBindingSchema: BodySchema = obj({ HostIp: Opt(Str), HostPort: Opt(Str) });

export const HostConfigBodySchema: BodySchema = obj(
  {
    Binds: Opt(StringList),
    ContainerIDFile: Opt(Str),
    LogConfig: Opt(obj({ Type: Opt(Str), Config: Opt(StringMapSchema) })),
    NetworkMode: Opt(Str),
    PortBindings: Opt(record(nullable(list(PortBindingSchema)))),
    RestartPolicy: Opt(obj({ Name: Opt(Str), MaximumRetryCount: Opt(Int) })),
    AutoRemove: Opt(Bool),
    VolumeDriver: Opt(Str),
    VolumesFrom: Opt(StringList),
    ConsoleSize: Opt(ConsoleSize),
    Annotations: Opt(StringMapSchema),
    CapAdd: Opt(StringList),
    CapDrop: Opt(StringList),
    CgroupnsMode: Opt(Str),
    Dns: Opt(StringList),
    DnsOptions: Opt(StringList),
    DnsSearch: Opt(StringList),
    ExtraHosts: Opt(StringList),
    GroupAdd: Opt(StringList),
    IpcMode: Opt(Str),
    Cgroup: Opt(Str),
    Links: Opt(StringList),
    OomScoreAdj: Opt(Int),
    PidMode: Opt(Str),
    Privileged: Opt(Bool),
    PublishAllPorts: Opt(Bool),
    ReadonlyRootfs: Opt(Bool),
    SecurityOpt: Opt(StringList),
    StorageOpt: Opt(StringMapSchema),
    Tmpfs: Opt(StringMapSchema),
    UTSMode: Opt(Str),
    UsernsMode: Opt(Str),
    ShmSize: Opt(Int),
    Sysctls: Opt(StringMapSchema),
    Runtime: Opt(Str),
    Isolation: Opt(Str),
    MaskedPaths: Opt(StringList),
    ReadonlyPaths: Opt(StringList),
    Init: Opt(Bool),
    CpuShares: Opt(Int),
    Memory: Opt(Int),
    NanoCpus: Opt(Int),
    CgroupParent: Opt(Str),
    BlkioWeight: Opt(Int),
    CpuPeriod: Opt(Int),
    CpuQuota: Opt(Int),
    CpuRealtimePeriod: Opt(Int),
    CpuRealtimeRuntime: Opt(Int),
    CpusetCpus: Opt(Str),
    CpusetMems: Opt(Str),
    Devices: Opt(
      list(
        obj({ PathOnHost: Opt(Str), PathInContainer: Opt(Str), CgroupPermissions: Opt(Str) }),
      ),
    ),
    DeviceCgroupRules: Opt(StringList),
    KernelMemory: Opt(Int),
    KernelMemoryTCP: Opt(Int),
    MemoryReservation: Opt(Int),
    MemorySwap: Opt(Int),
    MemorySwappiness: Opt(Int),
    OomKillDisable: Opt(Bool),
    PidsLimit: Opt(Int),
    Ulimits: Opt(list(obj({ Name: Str, Soft: Int, Hard: Int }))),
    Mounts: Opt(list(obj({ Type: Opt(Str), Source: Opt(Str), Target: Opt(Str), ReadOnly: Opt(Bool) }))),
  },
);

export const EndpointSettingsBodySchema: BodySchema = obj(
  {
    IPAMConfig: Opt(
      obj({ IPv4Address: Opt(Str), IPv6Address: Opt(Str), LinkLocalIPs: Opt(StringList) }),
    ),
    Links: Opt(StringList),
    Aliases: Opt(StringList),
    MacAddress: Opt(Str),
    DriverOpts: Opt(StringMapSchema),
  },
);

/** `POST /containers/create`: Config flattened, plus HostConfig and NetworkingConfig. */
export const ContainerCreateBodySchema: BodySchema = obj(
  {
    Hostname: Opt(Str),
    Domainname: Opt(Str),
    User: Opt(Str),
    AttachStdin: Opt(Bool),
    AttachStdout: Opt(Bool),
    AttachStderr: Opt(Bool),
    ExposedPorts: Opt(EmptyObjectMap),
    Tty: Opt(Bool),
    OpenStdin: Opt(Bool),
    StdinOnce: Opt(Bool),
    Env: Opt(StringList),
    Cmd: Opt(StrSlice),
    Healthcheck: Opt(HealthConfigSchema),
    ArgsEscaped: Opt(Bool),
    Image: Opt(Str),
    Volumes: Opt(EmptyObjectMap),
    WorkingDir: Opt(Str),
    Entrypoint: Opt(StrSlice),
    NetworkDisabled: Opt(Bool),
    MacAddress: Opt(Str),
    OnBuild: Opt(StringList),
    Labels: Opt(StringMapSchema),
    StopSignal: Opt(Str),
    StopTimeout: Opt(Int),
    Shell: Opt(StrSlice),
    HostConfig: Opt(HostConfigBodySchema),
    NetworkingConfig: Opt(obj({ EndpointsConfig: Opt(record(nullable(EndpointSettingsBodySchema))) })),
  },
);

/** `POST /containers/{id}/exec`. */
export const ExecCreateBodySchema: BodySchema = obj(
  {
    User: Opt(Str),
    Privileged: Opt(Bool),
    Tty: Opt(Bool),
    ConsoleSize: Opt(ConsoleSize),
    AttachStdin: Opt(Bool),
    AttachStdout: Opt(Bool),
    AttachStderr: Opt(Bool),
    Detach: Opt(Bool),
    DetachKeys: Opt(Str),
    Env: Opt(StringList),
    WorkingDir: Opt(Str),
    Cmd: Opt(StringList),
  },
);

/** `POST /exec/{id}/start`. */
export const ExecStartBodySchema: BodySchema = obj(
  { Detach: Opt(Bool), Tty: Opt(Bool), ConsoleSize: Opt(ConsoleSize) },
);

/**
 * Checks a decoded JSON body against a schema. A missing or `null` body counts as `{}`.
 * Throws InvalidArgument naming the first offending field, deepest first (`HostConfig.Memory`),
 * with the field in `details.field`.
 */
export function checkBody<T = Record<string, unknown>>(schema: BodySchema, body: unknown): T {
  const value = body === undefined || body === null ? {} : body;
  const bad = firstError(schema, value, '');
  if (!bad) return value as T;
  if (bad.path === '') throw new BerthError('BERTH_INVALID_ARGUMENT', 'invalid request body: expected a JSON object', { details: { field: '' } });
  throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid request body: field ${bad.path}: ${bad.message}, got ${describe(bad.value)}`, {
    details: { field: bad.path },
  });
}

interface Mismatch {
  path: string;
  message: string;
  value: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (path: string, key: string | number): string => (path === '' ? String(key) : `${path}.${key}`);

function firstError(schema: BodySchema, v: unknown, path: string): Mismatch | undefined {
  const miss = (message: string): Mismatch => ({ path, message, value: v });
  switch (schema.kind) {
    case 'unknown':
      return undefined;
    case 'string':
      return typeof v === 'string' ? undefined : miss('expected string');
    case 'integer':
      return Number.isInteger(v) ? undefined : miss('expected integer');
    case 'boolean':
      return typeof v === 'boolean' ? undefined : miss('expected boolean');
    case 'null-or':
      return v === null ? undefined : firstError(schema.of, v, path);
    case 'strslice':
      if (typeof v === 'string') return undefined;
      return Array.isArray(v) ? firstError(StringList, v, path) : miss('expected string or array of strings');
    case 'array': {
      if (!Array.isArray(v)) return miss('expected array');
      if (schema.length !== undefined && v.length !== schema.length) return miss(`expected array of ${schema.length} items`);
      for (let i = 0; i < v.length; i++) {
        const e = firstError(schema.items, v[i], at(path, i));
        if (e) return e;
      }
      return undefined;
    }
    case 'record': {
      if (!isObject(v)) return miss('expected object');
      for (const k of Object.keys(v)) {
        const e = firstError(schema.values, v[k], at(path, k));
        if (e) return e;
      }
      return undefined;
    }
    case 'object': {
      if (!isObject(v)) return miss('expected object');
      for (const [k, p] of Object.entries(schema.props)) {
        if (!Object.hasOwn(v, k) || v[k] === undefined) {
          if (p.optional) continue;
          return { path: at(path, k), message: 'expected required property', value: undefined };
        }
        const e = firstError(p.schema, v[k], at(path, k));
        if (e) return e;
      }
      return undefined;
    }
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}
