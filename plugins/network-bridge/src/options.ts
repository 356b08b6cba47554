import { isIP } from 'node:net';
import { BerthError } from '@berth/errors';
import { NetLabel, type CreateNetworkRequest } from '@berth/plugin-api';

/**
 * Per-network options of the bridge driver. They arrive in CreateNetwork's Options: the
 * top-level `com.docker.network.enable_ipv6` and `com.docker.network.internal`, and the
 * user's `-o key=value` strings under `com.docker.network.generic`. Every Docker key
 * (plugin-protocol.md §10) has a Berth short name; giving both with different values is an
 * error. Unknown keys are ignored, as Docker does.
 *
 *   Docker key                                        Berth name               default
 *   com.docker.network.bridge.name                    berth.bridge.name        br-<id12>
 *   com.docker.network.bridge.enable_icc              berth.bridge.icc         true
 *   com.docker.network.bridge.enable_ip_masquerade    berth.bridge.masquerade  true
 *   com.docker.network.bridge.host_binding_ipv4       berth.bridge.host_ip     0.0.0.0
 *   com.docker.network.bridge.inhibit_ipv4            berth.bridge.inhibit_ipv4 false
 *   com.docker.network.bridge.default_bridge          berth.bridge.default     false
 *   com.docker.network.driver.mtu                     berth.bridge.mtu         daemon `mtu` option, else the kernel's (1500)
 *   com.docker.network.container_iface_prefix         berth.bridge.iface_prefix eth
 *   com.docker.network.enable_ipv6 (also as -o)       berth.bridge.ipv6        false
 *
 * Booleans parse like Go's strconv.ParseBool (1 t T TRUE true True / 0 f F FALSE false False).
 */
export interface BridgeOptions {
  /** Explicit bridge device name; undefined: `br-<id12>`. */
  bridgeName?: string;
  icc: boolean;
  masquerade: boolean;
  hostIp: string;
  inhibitIpv4: boolean;
  defaultBridge: boolean;
  /** 0: leave the kernel's default. */
  mtu: number;
  ifacePrefix: string;
  enableIPv6: boolean;
  internal: boolean;
}

const keys = {
  bridgeName: [NetLabel.bridgeName, 'berth.bridge.name'],
  icc: [NetLabel.bridgeEnableIcc, 'berth.bridge.icc'],
  masquerade: [NetLabel.bridgeEnableIpMasquerade, 'berth.bridge.masquerade'],
  hostIp: [NetLabel.bridgeHostBindingIpv4, 'berth.bridge.host_ip'],
  inhibitIpv4: [NetLabel.bridgeInhibitIpv4, 'berth.bridge.inhibit_ipv4'],
  defaultBridge: [NetLabel.bridgeDefaultBridge, 'berth.bridge.default'],
  mtu: [NetLabel.mtu, 'berth.bridge.mtu'],
  ifacePrefix: [NetLabel.containerIfacePrefix, 'berth.bridge.iface_prefix'],
  enableIPv6: [NetLabel.enableIPv6, 'berth.bridge.ipv6'],
} as const;

function invalid(msg: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', msg);
}

export function parseBool(key: string, v: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw invalid(`invalid value ${JSON.stringify(v)} for option ${key}: not a boolean`);
}

/** A Linux interface name: 1-15 bytes, no '/', ':', whitespace, not '.' or '..'. */
export function validIfName(name: string): boolean {
  return name.length >= 1 && Buffer.byteLength(name) <= 15 && !/[/:\s]/.test(name) && name !== '.' && name !== '..';
}

function pick(generic: Record<string, string>, names: readonly [string, string]): { key: string; value: string } | undefined {
  const [docker, berth] = names;
  const d = generic[docker];
  const b = generic[berth];
  if (d !== undefined && b !== undefined && d !== b) throw invalid(`options ${docker}=${d} and ${berth}=${b} disagree`);
  if (d !== undefined) return { key: docker, value: d };
  if (b !== undefined) return { key: berth, value: b };
  return undefined;
}

function toStringMap(v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`option ${NetLabel.generic} must be an object`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x === 'string') out[k] = x;
    else if (typeof x === 'boolean' || typeof x === 'number') out[k] = String(x);
    // other values (legacy ParentEndpoints lists...) are not bridge options
  }
  return out;
}

function topBool(options: Record<string, unknown>, key: string): boolean | undefined {
  const v = options[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return parseBool(key, v);
  throw invalid(`option ${key} must be a boolean`);
}

/** CreateNetwork Options -> the bridge's settings. `daemon` holds daemon-level defaults (mtu). */
export function parseNetworkOptions(options: CreateNetworkRequest['Options'], daemon: Record<string, string> = {}): BridgeOptions {
  const generic = toStringMap(options[NetLabel.generic]);
  const bool = (names: readonly [string, string], dflt: boolean): boolean => {
    const p = pick(generic, names);
    return p === undefined ? dflt : parseBool(p.key, p.value);
  };
  const out: BridgeOptions = {
    icc: bool(keys.icc, true),
    masquerade: bool(keys.masquerade, true),
    hostIp: '0.0.0.0',
    inhibitIpv4: bool(keys.inhibitIpv4, false),
    defaultBridge: bool(keys.defaultBridge, false),
    mtu: 0,
    ifacePrefix: 'eth',
    enableIPv6: topBool(options, NetLabel.enableIPv6) ?? bool(keys.enableIPv6, false),
    internal: topBool(options, NetLabel.internal) ?? false,
  };
  const name = pick(generic, keys.bridgeName);
  if (name !== undefined && name.value !== '') {
    if (!validIfName(name.value)) throw invalid(`invalid bridge name ${JSON.stringify(name.value)} (${name.key}): 1-15 characters, no '/', ':' or spaces`);
    out.bridgeName = name.value;
  }
  const hostIp = pick(generic, keys.hostIp);
  if (hostIp !== undefined && hostIp.value !== '') {
    if (isIP(hostIp.value) === 0) throw invalid(`invalid IP address ${JSON.stringify(hostIp.value)} for option ${hostIp.key}`);
    out.hostIp = hostIp.value;
  }
  const mtu = pick(generic, keys.mtu) ?? (daemon.mtu !== undefined ? { key: 'daemon mtu', value: daemon.mtu } : undefined);
  if (mtu !== undefined && mtu.value !== '') {
    const n = Number(mtu.value);
    if (!/^\d+$/.test(mtu.value.trim()) || !Number.isInteger(n) || (n !== 0 && (n < 68 || n > 65535))) {
      throw invalid(`invalid MTU ${JSON.stringify(mtu.value)} for option ${mtu.key}: an integer from 68 to 65535`);
    }
    out.mtu = n;
  }
  const prefix = pick(generic, keys.ifacePrefix);
  if (prefix !== undefined && prefix.value !== '') {
    if (!validIfName(`${prefix.value}0`) || Buffer.byteLength(prefix.value) > 12) throw invalid(`invalid interface prefix ${JSON.stringify(prefix.value)} (${prefix.key})`);
    out.ifacePrefix = prefix.value;
  }
  return out;
}

/** `br-` + the first 12 characters of the network id (Docker's naming). */
export function defaultBridgeName(networkId: string): string {
  return `br-${networkId.slice(0, 12)}`;
}

/** Docker's v27 MAC for an IPv4 endpoint: 02:42 followed by the four address bytes. */
export function macFromIPv4(ip: string): string {
  const parts = ip.split('.').map(Number);
  return ['02', '42', ...parts.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
