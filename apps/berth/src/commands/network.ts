/** `network create/ls/inspect/rm/connect/disconnect/prune` and `port`. */
import { encodeFilters, type ContainerInspect, type NetworkResource } from '@berth/api/wire';
import { bool, list, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { renderFormatted, shortId } from '../output/format.js';
import { readLine } from './image-ops.js';
import { filtersFrom } from './ps.js';

export const NETWORKS_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';
const NETWORK_HEADERS: Record<string, string> = {
  ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', CreatedAt: 'CREATED AT', Labels: 'LABELS',
};

/** `--opt k=v` style flags as a map; docker's error for an item without `=`. */
export function kv(items: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items) {
    const i = it.indexOf('=');
    if (i <= 0) throw new CliError(`invalid argument "${it}" for "--${flag}" flag: bad format, expected key=value`, 125);
    out[it.slice(0, i)] = it.slice(i + 1);
  }
  return out;
}

/** IPv4 containment for pairing --ip-range/--gateway/--aux-address with their --subnet (as the docker CLI does). */
function v4(ip: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  return m ? ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0 : undefined;
}
function inSubnet(subnet: string, addr: string): boolean {
  const [net = '', bitsText = '32'] = subnet.split('/');
  const ip = v4(addr.split('/')[0]!);
  const base = v4(net);
  if (ip === undefined || base === undefined) return addr.includes(':') === subnet.includes(':');
  const bits = Number(bitsText);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((ip & mask) >>> 0) === ((base & mask) >>> 0);
}

type IpamEntry = { Subnet: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> };

function ipamConfig(p: ParsedArgs): IpamEntry[] {
  const subnets = list(p, 'subnet');
  const ranges = list(p, 'ip-range');
  const gateways = list(p, 'gateway');
  const aux = kv(list(p, 'aux-address'), 'aux-address');
  if (!subnets.length && (ranges.length || gateways.length || Object.keys(aux).length)) {
    throw new CliError('Error response from daemon: no matching subnet for the ip-range, gateway or aux-address given (use --subnet)', 1);
  }
  const entries: IpamEntry[] = subnets.map((s) => ({ Subnet: s }));
  const place = (what: string, value: string, set: (e: IpamEntry) => void): void => {
    const e = entries.find((x) => inSubnet(x.Subnet, value));
    if (!e) throw new CliError(`no matching subnet for ${what} ${value}`, 1);
    set(e);
  };
  for (const r of ranges) place('range', r, (e) => {
    if (e.IPRange) throw new CliError(`cannot configure multiple ranges (${r}, ${e.IPRange}) on the same subnet (${e.Subnet})`, 1);
    e.IPRange = r;
  });
  for (const g of gateways) place('gateway', g, (e) => {
    if (e.Gateway) throw new CliError(`cannot configure multiple gateways (${g}, ${e.Gateway}) for the same subnet (${e.Subnet})`, 1);
    e.Gateway = g;
  });
  for (const [k, a] of Object.entries(aux)) place('aux-address', a, (e) => ((e.AuxiliaryAddresses ??= {})[k] = a));
  return entries;
}

async function create(ctx: Context, p: ParsedArgs): Promise<number> {
  const body = {
    Name: p.args[0]!,
    Driver: str(p, 'driver') || 'bridge',
    Scope: str(p, 'scope'),
    ...(bool(p, 'ipv6') ? { EnableIPv6: true } : {}),
    IPAM: { Driver: str(p, 'ipam-driver') || 'default', Options: kv(list(p, 'ipam-opt'), 'ipam-opt'), Config: ipamConfig(p) },
    Internal: bool(p, 'internal'),
    Attachable: bool(p, 'attachable'),
    Ingress: bool(p, 'ingress'),
    ConfigOnly: bool(p, 'config-only'),
    ConfigFrom: str(p, 'config-from') ? { Network: str(p, 'config-from') } : null,
    Options: kv(list(p, 'opt'), 'opt'),
    Labels: kv(list(p, 'label'), 'label'),
  };
  const r = await ctx.client.post<{ Id: string; Warning?: string }>('/networks/create', undefined, body);
  if (r.Warning) ctx.err(`${r.Warning}\n`);
  ctx.out(`${r.Id}\n`);
  return 0;
}

async function ls(ctx: Context, p: ParsedArgs): Promise<number> {
  const filters = filtersFrom(list(p, 'filter'));
  const nets = await ctx.client.get<NetworkResource[]>('/networks', Object.keys(filters).length ? { filters: encodeFilters(filters) } : undefined);
  nets.sort((a, b) => a.Name.localeCompare(b.Name));
  const trunc = !bool(p, 'no-trunc');
  if (bool(p, 'quiet')) {
    for (const n of nets) ctx.out(`${trunc ? shortId(n.Id) : n.Id}\n`);
    return 0;
  }
  const rows = nets.map((n) => {
    const r: Record<string, unknown> = {
      ID: trunc ? shortId(n.Id) : n.Id, Name: n.Name, Driver: n.Driver, Scope: n.Scope, IPv6: String(n.EnableIPv6), Internal: String(n.Internal),
      CreatedAt: n.Created, Labels: Object.entries(n.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
    };
    Object.defineProperty(r, 'Label', { value: (k: string) => n.Labels?.[k] ?? '', enumerable: false });
    return r;
  });
  ctx.out(renderFormatted(rows, str(p, 'format'), NETWORKS_TABLE, NETWORK_HEADERS));
  return 0;
}

async function rm(ctx: Context, p: ParsedArgs): Promise<number> {
  let failed = 0;
  for (const name of p.args) {
    try {
      await ctx.client.call('DELETE', `/networks/${encodeURIComponent(name)}`);
      ctx.out(`${name}\n`);
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      if (bool(p, 'force') && /not found/.test(err.message)) continue;
      failed++;
      ctx.err(`${err.message}\n`);
    }
  }
  return failed ? 1 : 0;
}

async function connect(ctx: Context, p: ParsedArgs): Promise<number> {
  const [network, container] = p.args;
  const ip = str(p, 'ip');
  const ip6 = str(p, 'ip6');
  await ctx.client.post(`/networks/${encodeURIComponent(network!)}/connect`, undefined, {
    Container: container,
    EndpointConfig: {
      IPAMConfig: ip || ip6 ? { ...(ip ? { IPv4Address: ip } : {}), ...(ip6 ? { IPv6Address: ip6 } : {}) } : null,
      Links: list(p, 'link').length ? list(p, 'link') : null,
      Aliases: list(p, 'alias').length ? list(p, 'alias') : null,
      DriverOpts: list(p, 'driver-opt').length ? kv(list(p, 'driver-opt'), 'driver-opt') : null,
    },
  });
  return 0;
}

async function disconnect(ctx: Context, p: ParsedArgs): Promise<number> {
  const [network, container] = p.args;
  await ctx.client.post(`/networks/${encodeURIComponent(network!)}/disconnect`, undefined, { Container: container, Force: bool(p, 'force') });
  return 0;
}

async function prune(ctx: Context, p: ParsedArgs): Promise<number> {
  if (!bool(p, 'force')) {
    ctx.out('WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ');
    if (!/^y(es)?$/i.test((await readLine()).trim())) return 0;
  }
  const filters = filtersFrom(list(p, 'filter'));
  const r = await ctx.client.post<{ NetworksDeleted: string[] | null }>('/networks/prune', Object.keys(filters).length ? { filters: encodeFilters(filters) } : undefined);
  if (r.NetworksDeleted?.length) ctx.out(`Deleted Networks:\n${r.NetworksDeleted.join('\n')}\n`);
  return 0;
}

/** `port CONTAINER [PRIVATE_PORT[/PROTO]]`. */
async function port(ctx: Context, p: ParsedArgs): Promise<number> {
  const [container, want] = p.args;
  const c = await ctx.client.get<ContainerInspect>(`/containers/${encodeURIComponent(container!)}/json`);
  const ports = c.NetworkSettings?.Ports ?? {};
  if (want) {
    const key = want.includes('/') ? want : `${want}/tcp`;
    const [num, proto] = key.split('/');
    if (!/^\d+$/.test(num!) || !['tcp', 'udp', 'sctp'].includes(proto!)) throw new CliError(`Error: invalid port (${want})`, 1);
    const list = ports[key];
    if (!list?.length) throw new CliError(`Error: No public port '${key}' published for ${container}`, 1);
    for (const b of list) ctx.out(`${b.HostIp}:${b.HostPort}\n`);
    return 0;
  }
  const keys = Object.keys(ports).sort((a, b) => Number(a.split('/')[0]) - Number(b.split('/')[0]) || a.localeCompare(b));
  for (const k of keys) for (const b of ports[k] ?? []) ctx.out(`${k} -> ${b.HostIp}:${b.HostPort}\n`);
  return 0;
}

const filterFlag = { name: 'filter', short: 'f', type: 'list', valueName: 'filter', description: 'Provide filter values (e.g. "driver=bridge")' } as const;

const createSpec: CommandSpec = {
  usage: 'create [OPTIONS] NETWORK',
  description: 'Create a network',
  minArgs: 1,
  maxArgs: 1,
  flags: [
    { name: 'attachable', type: 'bool', description: 'Enable manual container attachment' },
    { name: 'aux-address', type: 'list', valueName: 'map', description: 'Auxiliary IPv4 or IPv6 addresses used by Network driver' },
    { name: 'config-from', type: 'string', valueName: 'string', description: 'The network from which to copy the configuration' },
    { name: 'config-only', type: 'bool', description: 'Create a configuration only network' },
    { name: 'driver', short: 'd', type: 'string', valueName: 'string', description: 'Driver to manage the Network', default: 'bridge' },
    { name: 'gateway', type: 'list', valueName: 'strings', description: 'IPv4 or IPv6 Gateway for the master subnet' },
    { name: 'ingress', type: 'bool', description: 'Create swarm routing-mesh network' },
    { name: 'internal', type: 'bool', description: 'Restrict external access to the network' },
    { name: 'ip-range', type: 'list', valueName: 'strings', description: 'Allocate container ip from a sub-range' },
    { name: 'ipam-driver', type: 'string', valueName: 'string', description: 'IP Address Management Driver', default: 'default' },
    { name: 'ipam-opt', type: 'list', valueName: 'map', description: 'Set IPAM driver specific options' },
    { name: 'ipv6', type: 'bool', description: 'Enable or disable IPv6 networking' },
    { name: 'label', type: 'list', valueName: 'list', description: 'Set metadata on a network' },
    { name: 'opt', short: 'o', type: 'list', valueName: 'map', description: 'Set driver specific options' },
    { name: 'scope', type: 'string', valueName: 'string', description: "Control the network's scope" },
    { name: 'subnet', type: 'list', valueName: 'strings', description: 'Subnet in CIDR format that represents a network segment' },
  ],
};

export const commands: Record<string, Command> = {
  'network create': { spec: createSpec, run: create },
  'network ls': {
    spec: {
      usage: 'ls [OPTIONS]',
      description: 'List networks',
      maxArgs: 0,
      aliases: ['berth network list'],
      flags: [
        filterFlag,
        { name: 'format', type: 'string', valueName: 'string', description: 'Format output using a custom template' },
        { name: 'no-trunc', type: 'bool', description: 'Do not truncate the output' },
        { name: 'quiet', short: 'q', type: 'bool', description: 'Only display network IDs' },
      ],
    },
    run: ls,
  },
  'network rm': {
    spec: {
      usage: 'rm NETWORK [NETWORK...]',
      description: 'Remove one or more networks',
      minArgs: 1,
      aliases: ['berth network remove'],
      flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Do not error if the network does not exist' }],
    },
    run: rm,
  },
  'network connect': {
    spec: {
      usage: 'connect [OPTIONS] NETWORK CONTAINER',
      description: 'Connect a container to a network',
      minArgs: 2,
      maxArgs: 2,
      flags: [
        { name: 'alias', type: 'list', valueName: 'strings', description: 'Add network-scoped alias for the container' },
        { name: 'driver-opt', type: 'list', valueName: 'strings', description: 'driver options for the network' },
        { name: 'ip', type: 'string', valueName: 'string', description: 'IPv4 address (e.g., "172.30.100.104")' },
        { name: 'ip6', type: 'string', valueName: 'string', description: 'IPv6 address (e.g., "2001:db8::33")' },
        { name: 'link', type: 'list', valueName: 'list', description: 'Add link to another container' },
      ],
    },
    run: connect,
  },
  'network disconnect': {
    spec: {
      usage: 'disconnect [OPTIONS] NETWORK CONTAINER',
      description: 'Disconnect a container from a network',
      minArgs: 2,
      maxArgs: 2,
      flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Force the container to disconnect from a network' }],
    },
    run: disconnect,
  },
  'network prune': {
    spec: {
      usage: 'prune [OPTIONS]',
      description: 'Remove all unused networks',
      maxArgs: 0,
      flags: [
        { name: 'filter', type: 'list', valueName: 'filter', description: 'Provide filter values (e.g. "until=<timestamp>")' },
        { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
      ],
    },
    run: prune,
  },
  port: {
    spec: { usage: 'port CONTAINER [PRIVATE_PORT[/PROTO]]', description: 'List port mappings or a specific mapping for the container', minArgs: 1, maxArgs: 2, flags: [] },
    run: port,
  },
};
