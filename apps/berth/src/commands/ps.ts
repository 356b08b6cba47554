/** `ps` / `container ls`: GET /containers/json, rendered with docker's placeholders and table. */
import { encodeFilters, type ContainerSummary, type PortSummary } from '@berth/api';
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

/** docker's DisplayablePorts: sorted, `ip:public->private/proto`, contiguous ranges merged. */
export function displayPorts(ports: PortSummary[]): string {
  const groups = new Map<string, { first: number; last: number; pubFirst?: number; pubLast?: number }[]>();
  const order: string[] = [];
  const sorted = [...ports].sort(
    (a, b) => (a.Type < b.Type ? -1 : a.Type > b.Type ? 1 : 0) || (a.IP ?? '').localeCompare(b.IP ?? '') || (a.PublicPort ?? 0) - (b.PublicPort ?? 0) || a.PrivatePort - b.PrivatePort,
  );
  const out: string[] = [];
  for (const p of sorted) {
    const key = `${p.IP ?? ''}|${p.Type}|${p.PublicPort === undefined || p.PublicPort === 0 ? 'n' : 'p'}`;
    if (!groups.has(key)) {
      groups.set(key, []);
      order.push(key);
    }
    const g = groups.get(key)!;
    const last = g[g.length - 1];
    const pub = p.PublicPort || undefined;
    if (last && last.last + 1 === p.PrivatePort && (pub === undefined ? last.pubLast === undefined : last.pubLast !== undefined && last.pubLast + 1 === pub)) {
      last.last = p.PrivatePort;
      if (pub !== undefined) last.pubLast = pub;
    } else g.push({ first: p.PrivatePort, last: p.PrivatePort, pubFirst: pub, pubLast: pub });
  }
  for (const key of order) {
    const [ip, type] = key.split('|');
    for (const r of groups.get(key)!) {
      const priv = r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`;
      if (r.pubFirst === undefined) out.push(`${priv}/${type}`);
      else {
        const pub = r.pubFirst === r.pubLast ? `${r.pubFirst}` : `${r.pubFirst}-${r.pubLast}`;
        const host = ip!.includes(':') ? `[${ip}]` : ip;
        out.push(`${host}:${pub}->${priv}/${type}`);
      }
    }
  }
  return out.join(', ');
}

/** The object a ps template sees: docker's placeholder names, all strings. */
export function containerRow(c: ContainerSummary, trunc: boolean, now = Date.now()): Record<string, unknown> {
  const names = (c.Names ?? []).map((n) => n.replace(/^\//, '')).filter((n) => !trunc || !n.includes('/'));
  const labels = c.Labels ?? {};
  let size = '';
  if (c.SizeRw !== undefined || c.SizeRootFs !== undefined) {
    size = humanSize(c.SizeRw ?? 0, 3);
    if ((c.SizeRootFs ?? 0) > 0) size += ` (virtual ${humanSize(c.SizeRootFs!, 3)})`;
  }
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
