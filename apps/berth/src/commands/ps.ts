/** `ps` / `container ls`: GET /containers/json, rendered with docker's placeholders and table. */
import { encodeFilters, type ContainerSummary, type PortSummary } from '@berth/api/wire';
import { bool, int, list, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { ellipsis, goTimeString, humanDuration, humanSize, renderFormatted, shortId } from '../output/format.js';

export const PS_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';

export const PS_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Names: 'NAMES',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  LocalVolumes: 'LOCAL VOLUMES',
  Networks: 'NETWORKS',
  Platform: 'PLATFORM',
};

/**
 * A Port of the list; berthd answers `berthPortRuns=1` (sent by `berth ps`) with consecutive
 * ports as one entry with a `Count`: private ports (and public ones, when published) counting up
 * from the entry's. A daemon that does not know the parameter sends one entry per port.
 */
export type PortRun = PortSummary & { Count?: number };

/**
 * docker's DisplayablePorts: sorted by private port, IP, public port, type; unpublished and
 * same-number mappings merged into ranges; other host mappings listed after them. A run (Count)
 * of ports that a range takes in is taken in at once, so `-p 41000-50999:41000-50999/udp` costs
 * one entry here, not 10,000; a run of other host mappings is listed port by port, as docker does.
 */
export function displayPorts(ports: PortRun[]): string {
  const items: PortRun[] = [];
  for (const p of ports) {
    const count = p.Count ?? 1;
    if (count > 1 && p.IP && (p.PublicPort ?? 0) !== p.PrivatePort) {
      const pub = p.PublicPort ?? 0;
      for (let i = 0; i < count; i++) items.push({ IP: p.IP, PrivatePort: p.PrivatePort + i, PublicPort: pub === 0 ? 0 : pub + i, Type: p.Type });
    } else {
      items.push(p);
    }
  }
  const sorted = items.sort((i, j) => {
    if (i.PrivatePort !== j.PrivatePort) return i.PrivatePort - j.PrivatePort;
    const ii = i.IP ?? '';
    const ji = j.IP ?? '';
    if (ii !== ji) return ii < ji ? -1 : 1;
    if ((i.PublicPort ?? 0) !== (j.PublicPort ?? 0)) return (i.PublicPort ?? 0) - (j.PublicPort ?? 0);
    return i.Type < j.Type ? -1 : i.Type > j.Type ? 1 : 0;
  });
  const groups = new Map<string, { first: number; last: number }>();
  const keys: string[] = [];
  const result: string[] = [];
  const hostMappings: string[] = [];
  const host = (ip: string): string => (ip.includes(':') ? `[${ip}]` : ip);
  const formGroup = (key: string, first: number, last: number): string => {
    const slash = key.lastIndexOf('/');
    const ip = slash >= 0 ? key.slice(0, slash) : '';
    const type = slash >= 0 ? key.slice(slash + 1) : key;
    let g = first === last ? `${first}` : `${first}-${last}`;
    if (ip) g = `${host(ip)}:${g}->${g}`;
    return `${g}/${type}`;
  };
  for (const p of sorted) {
    const current = p.PrivatePort;
    const last = current + (p.Count ?? 1) - 1;
    let key = p.Type;
    if (p.IP) {
      if ((p.PublicPort ?? 0) !== current) {
        hostMappings.push(`${host(p.IP)}:${p.PublicPort ?? 0}->${p.PrivatePort}/${p.Type}`);
        continue;
      }
      key = `${p.IP}/${p.Type}`;
    }
    const g = groups.get(key);
    if (!g) {
      groups.set(key, { first: current, last });
      keys.push(key);
      continue;
    }
    if (current === g.last + 1) {
      g.last = last;
      continue;
    }
    result.push(formGroup(key, g.first, g.last));
    groups.set(key, { first: current, last });
  }
  for (const k of keys) result.push(formGroup(k, groups.get(k)!.first, groups.get(k)!.last));
  return [...result, ...hostMappings].join(', ');
}

/** The object a ps template sees: docker's placeholder names, all strings. */
export function containerRow(c: ContainerSummary, trunc: boolean, now = Date.now()): Record<string, unknown> {
  const names = (c.Names ?? []).map((n) => n.replace(/^\//, '')).filter((n) => !trunc || !n.includes('/'));
  const labels = c.Labels ?? {};
  let size = humanSize(c.SizeRw ?? 0, 3);
  if ((c.SizeRootFs ?? 0) > 0) size += ` (virtual ${humanSize(c.SizeRootFs!, 3)})`;
  let image = c.Image ?? '';
  if (trunc && /^sha256:[0-9a-f]{64}$/.test(image)) image = shortId(image);
  else if (trunc && /^[0-9a-f]{64}$/.test(image)) image = shortId(image);
  const command = trunc ? ellipsis(c.Command ?? '', 20) : (c.Command ?? '');
  const row: Record<string, unknown> = {
    Command: `"${command}"`,
    CreatedAt: goTimeString(c.Created),
    ID: trunc ? shortId(c.Id) : c.Id,
    Image: image,
    Labels: Object.keys(labels)
      .map((k) => `${k}=${labels[k]}`)
      .join(','),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Driver === 'local').length),
    Mounts: (c.Mounts ?? [])
      .map((m) => (trunc ? ellipsis(m.Name || m.Source, 15) : m.Name || m.Source))
      .join(','),
    Names: names.join(','),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {})
      .sort()
      .join(','),
    Ports: displayPorts(c.Ports ?? []),
    RunningFor: `${humanDuration(now - c.Created * 1000)} ago`,
    Size: size,
    State: c.State,
    Status: c.Status,
  };
  Object.defineProperty(row, 'Label', { value: (k: string) => labels[k] ?? '', enumerable: false });
  return row;
}

const psSpec: CommandSpec = {
  usage: 'ps [OPTIONS]',
  description: 'List containers',
  maxArgs: 0,
  aliases: ['berth container ls', 'berth container list', 'berth container ps', 'berth ps'],
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Show all containers (default shows just running)' },
    { name: 'filter', short: 'f', type: 'list', valueName: 'filter', description: 'Filter output based on conditions provided' },
    { name: 'format', type: 'string', valueName: 'string', description: 'Format output using a custom template' },
    { name: 'last', short: 'n', type: 'int', valueName: 'int', description: 'Show n last created containers (includes all states)', default: -1 },
    { name: 'latest', short: 'l', type: 'bool', description: 'Show the latest created container (includes all states)' },
    { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Only display container IDs' },
    { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes' },
  ],
};

/** `-f k=v` list → the filters map. */
export function filtersFrom(items: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const f of items) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new CliError(`Error: bad format of filter (expected name=value)`);
    (out[f.slice(0, eq).trim().toLowerCase()] ??= []).push(f.slice(eq + 1));
  }
  return out;
}

async function ps(ctx: Context, p: ParsedArgs): Promise<number> {
  const format = str(p, 'format');
  const quiet = bool(p, 'quiet');
  let limit = int(p, 'last');
  if (bool(p, 'latest')) limit = 1;
  const size = bool(p, 'size') || (!quiet && /\.Size\b/.test(format));
  const filters = filtersFrom(list(p, 'filter'));
  const query = {
    all: bool(p, 'all') || limit > 0 ? '1' : undefined,
    limit: limit > 0 ? limit : undefined,
    size: size ? '1' : undefined,
    filters: Object.keys(filters).length ? encodeFilters(filters) : undefined,
    // Berth's own: a range of ports as one entry (docs/network.md); other daemons ignore it.
    berthPortRuns: quiet ? undefined : '1',
  };
  const containers = await ctx.client.get<ContainerSummary[]>('/containers/json', query);
  const trunc = !bool(p, 'no-trunc');
  const rows = containers.map((c) => containerRow(c, trunc));
  let fmt = format;
  if (quiet) fmt = '{{.ID}}';
  else if (!fmt && bool(p, 'size')) fmt = `${PS_TABLE}\t{{.Size}}`;
  ctx.out(renderFormatted(rows, fmt, PS_TABLE, PS_HEADERS));
  return 0;
}

export const commands: Record<string, Command> = {
  ps: { spec: psSpec, run: ps },
};
