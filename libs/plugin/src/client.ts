/**
 * A plugin as a driver object: `connect(addr, 'NetworkDriver')` answers a NetworkDriver whose
 * methods POST to the plugin (§3): the engine's headers, JSON body + "\n" (empty for calls
 * without argument), errors raised as BerthErrors `<Subsystem>.<Method>: <message>` with the
 * plugin's catalog code when it sent one (a Berth plugin) and BERTH_PLUGIN (Internal)
 * otherwise, 404 on the optional methods taken as "not implemented, fine", transport failures
 * retried on Docker's schedule.
 */
import * as path from 'node:path';
import { BerthError } from '@berth/errors';
import {
  ACTIVATE_PATH,
  Subsystem,
  errorFieldOf,
  ipamDriverMethods,
  networkDriverMethods,
  optionalIpamMethods,
  optionalNetworkMethods,
  type ActivateResponse,
  type AuthzPlugin,
  type AuthzRequest,
  type AuthzResponse,
  authzPluginMethods,
  type GraphDriver,
  type GraphDriverWireInit,
  type IpamCapabilities,
  type IpamDriver,
  type NetworkDriver,
  type VolumeDriver,
  optionalVolumeMethods,
  volumeDriverMethods,
} from '@berth/plugin-api';
import { RemoteGraphDriver, httpErrorOf } from './graph.js';
import { PluginTransport, type TransportOptions } from './transport.js';
import { encodeBody, noArgMethods, remoteError, voidIpamMethods, voidNetworkMethods, voidVolumeMethods } from './wire.js';

export interface ConnectOptions extends TransportOptions {
  /** The driver's name (`name` of the object); default: the socket file name without `.sock`, or the host. */
  name?: string;
  /** GraphDriver only: the Init sent before the first call. */
  graphInit?: GraphDriverWireInit;
  /** Share one transport (connection pool) between the subsystems of one plugin. */
  transport?: PluginTransport;
}

/** What every client object has besides its contract. */
export interface RemoteDriver {
  /** The plugin's address as a URL. */
  readonly address: string;
  /** `/Plugin.Activate`: the subsystems the plugin implements. */
  activate(): Promise<string[]>;
  /** Closes idle connections (the object stays usable). */
  close(): void;
}

export type RemoteNetworkDriver = NetworkDriver & RemoteDriver;
export type RemoteIpamDriver = IpamDriver & RemoteDriver;
export type RemoteGraphDriverClient = GraphDriver & RemoteDriver;
export type RemoteVolumeDriver = VolumeDriver & RemoteDriver;
export type RemoteAuthzPlugin = AuthzPlugin & RemoteDriver & { readonly name: string };

type SubsystemName = 'NetworkDriver' | 'IpamDriver' | 'GraphDriver' | 'VolumeDriver' | 'authz';

const defaultIpamCaps: IpamCapabilities = { RequiresMACAddress: false, RequiresRequestReplay: false };

/** `/Plugin.Activate` over a transport (no retry: the caller decides). */
export async function activateWith(t: PluginTransport, retry = true): Promise<string[]> {
  const res = await t.post(ACTIVATE_PATH, Buffer.alloc(0), retry);
  if (res.status !== 200) throw httpErrorOf('Plugin.Activate', res.status, res.body);
  let m: ActivateResponse;
  try {
    m = JSON.parse(res.body.toString('utf8')) as ActivateResponse;
  } catch (err) {
    throw remoteError('Plugin.Activate', `bad answer: ${(err as Error).message}`, undefined, err);
  }
  if (typeof m !== 'object' || m === null || !Array.isArray(m.Implements)) throw remoteError('Plugin.Activate', 'bad answer: no Implements list');
  return m.Implements.filter((s): s is string => typeof s === 'string');
}

function nameFrom(t: PluginTransport): string {
  const a = t.address;
  if (a.socketPath !== undefined) return path.basename(a.socketPath).replace(/\.sock$/, '');
  return a.host ?? a.url;
}

function jsonClient(
  t: PluginTransport,
  subsystem: string,
  table: Record<string, string>,
  voids: ReadonlySet<string>,
  optional: readonly string[],
  name: string,
): Record<string, unknown> {
  const errField = errorFieldOf(subsystem);
  const obj: Record<string, unknown> = {
    name,
    address: t.address.url,
    activate: () => activateWith(t),
    close: () => t.close(),
  };
  for (const [wire, method] of Object.entries(table)) {
    obj[method] = async (arg?: unknown): Promise<unknown> => {
      const res = await t.post(`/${wire}`, encodeBody(noArgMethods.has(method) ? undefined : (arg ?? {})));
      if (res.status === 404 && optional.includes(wire)) return undefined;
      if (res.status !== 200) throw httpErrorOf(wire, res.status, res.body);
      let answer: Record<string, unknown>;
      try {
        answer = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
      } catch (err) {
        throw remoteError(wire, `bad answer: ${(err as Error).message}`, undefined, err);
      }
      if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw remoteError(wire, 'bad answer: not a JSON object');
      for (const field of [errField, 'Err']) {
        const e = answer[field];
        if (typeof e === 'string' && e !== '') throw remoteError(wire, e, answer.BerthCode);
      }
      if (voids.has(method)) return undefined;
      delete answer[errField];
      delete answer.Err;
      delete answer.BerthCode;
      return answer;
    };
  }
  return obj;
}

/**
 * The authz client (§9): a 200 answer is the verdict, judged by `Allow` alone as dockerd does;
 * any other status is the plugin's failure (`AuthZPlugin.AuthZReq: <Err or body>`), and so is a
 * transport failure once the retries are spent.
 */
function authzClient(t: PluginTransport, name: string): RemoteAuthzPlugin {
  const call = async (wire: string, req: AuthzRequest): Promise<AuthzResponse> => {
    let res;
    try {
      res = await t.post(`/${wire}`, encodeBody(req));
    } catch (err) {
      throw remoteError(wire, (err as Error).message, undefined, err);
    }
    if (res.status !== 200) throw httpErrorOf(wire, res.status, res.body);
    let answer: unknown;
    try {
      answer = JSON.parse(res.body.toString('utf8'));
    } catch (err) {
      throw remoteError(wire, `bad answer: ${(err as Error).message}`, undefined, err);
    }
    if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw remoteError(wire, 'bad answer: not a JSON object');
    const a = answer as Record<string, unknown>;
    const out: AuthzResponse = { Allow: a.Allow === true };
    if (typeof a.Msg === 'string' && a.Msg !== '') out.Msg = a.Msg;
    if (typeof a.Err === 'string' && a.Err !== '') out.Err = a.Err;
    return out;
  };
  const obj: Record<string, unknown> = { name, address: t.address.url, activate: () => activateWith(t), close: () => t.close() };
  for (const [wire, method] of Object.entries(authzPluginMethods)) obj[method] = (req: AuthzRequest) => call(wire, req);
  return obj as unknown as RemoteAuthzPlugin;
}

export function connect(addr: string, subsystem: 'NetworkDriver', opts?: ConnectOptions): RemoteNetworkDriver;
export function connect(addr: string, subsystem: 'IpamDriver', opts?: ConnectOptions): RemoteIpamDriver;
export function connect(addr: string, subsystem: 'GraphDriver', opts?: ConnectOptions): RemoteGraphDriverClient;
export function connect(addr: string, subsystem: 'VolumeDriver', opts?: ConnectOptions): RemoteVolumeDriver;
export function connect(addr: string, subsystem: 'authz', opts?: ConnectOptions): RemoteAuthzPlugin;
export function connect(
  addr: string,
  subsystem: SubsystemName,
  opts: ConnectOptions = {},
): RemoteNetworkDriver | RemoteIpamDriver | RemoteGraphDriverClient | RemoteVolumeDriver | RemoteAuthzPlugin {
  const t = opts.transport ?? new PluginTransport(addr, opts);
  const name = opts.name ?? nameFrom(t);
  switch (subsystem) {
    case Subsystem.network:
      return jsonClient(t, subsystem, networkDriverMethods, voidNetworkMethods, optionalNetworkMethods, name) as unknown as RemoteNetworkDriver;
    case Subsystem.ipam: {
      const c = jsonClient(t, subsystem, ipamDriverMethods, voidIpamMethods, optionalIpamMethods, name) as unknown as RemoteIpamDriver;
      const caps = c.getCapabilities.bind(c);
      // §6.1: any failure of GetCapabilities (404 included) means the default capabilities.
      c.getCapabilities = async () => {
        try {
          return { ...defaultIpamCaps, ...((await caps()) ?? {}) };
        } catch {
          return { ...defaultIpamCaps };
        }
      };
      return c;
    }
    case Subsystem.volume: {
      const v = jsonClient(t, subsystem, volumeDriverMethods, voidVolumeMethods, optionalVolumeMethods, name) as unknown as RemoteVolumeDriver;
      const caps = v.capabilities.bind(v);
      // §7: any failure of Capabilities (404 included) means scope local; other scopes than global are local.
      v.capabilities = async () => {
        try {
          const scope = String((await caps())?.Capabilities?.Scope ?? 'local').toLowerCase();
          return { Capabilities: { Scope: scope === 'global' ? 'global' : 'local' } };
        } catch {
          return { Capabilities: { Scope: 'local' } };
        }
      };
      return v;
    }
    case Subsystem.authz:
      return authzClient(t, name);
    case Subsystem.graph: {
      const g = new RemoteGraphDriver(t, { name, ...(opts.graphInit === undefined ? {} : { init: opts.graphInit }) });
      return Object.assign(g, { address: t.address.url, activate: () => activateWith(t), close: () => t.close() });
    }
    default:
      throw new BerthError('BERTH_INVALID_ARGUMENT', `connect: unknown subsystem ${JSON.stringify(subsystem)}`);
  }
}
