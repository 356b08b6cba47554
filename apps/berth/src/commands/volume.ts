/** `volume create/ls/inspect/rm/prune`, with docker's flags and output. */
import { encodeFilters, type Volume } from '@berth/api/wire';
import { bool, list, str, type ParsedArgs } from '../cli/args.js';
import { CliError, readAll } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { humanSize, renderFormatted } from '../output/format.js';
import { renderInspect } from './inspect.js';
import { readLine } from './image-ops.js';
import { kv } from './network.js';
import { filtersFrom } from './ps.js';

export const VOLUMES_TABLE = 'table {{.Driver}}\t{{.Name}}';
const VOLUME_HEADERS: Record<string, string> = {
  Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', Labels: 'LABELS', Links: 'LINKS', Size: 'SIZE', CreatedAt: 'CREATED AT',
};

async function create(ctx: Context, p: ParsedArgs): Promise<number> {
  const flagName = str(p, 'name');
  if (flagName && p.args[0] && flagName !== p.args[0]) throw new CliError(`conflicting options: either specify --name or provide positional arg, not both`, 1);
  const labels: Record<string, string> = {};
  for (const l of list(p, 'label')) {
    const i = l.indexOf('=');
    if (i < 0) labels[l] = '';
    else labels[l.slice(0, i)] = l.slice(i + 1);
  }
  const v = await ctx.client.post<Volume>('/volumes/create', undefined, {
    Name: p.args[0] ?? flagName,
    Driver: str(p, 'driver') || 'local',
    DriverOpts: kv(list(p, 'opt'), 'opt'),
    Labels: labels,
  });
  ctx.out(`${v.Name}\n`);
  return 0;
}

/** docker's volume ls rows: Links and Size only from `system df` data (N/A otherwise). */
function row(v: Volume): Record<string, unknown> {
  const r: Record<string, unknown> = {
    Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint, CreatedAt: v.CreatedAt,
    Labels: Object.entries(v.Labels ?? {}).map(([k, x]) => `${k}=${x}`).join(','),
    Links: v.UsageData && v.UsageData.RefCount >= 0 ? String(v.UsageData.RefCount) : 'N/A',
    Size: v.UsageData && v.UsageData.Size >= 0 ? humanSize(v.UsageData.Size) : 'N/A',
  };
  Object.defineProperty(r, 'Label', { value: (k: string) => v.Labels?.[k] ?? '', enumerable: false });
  return r;
}

async function ls(ctx: Context, p: ParsedArgs): Promise<number> {
  const filters = filtersFrom(list(p, 'filter'));
  const r = await ctx.client.get<{ Volumes: Volume[] | null; Warnings: string[] | null }>('/volumes', Object.keys(filters).length ? { filters: encodeFilters(filters) } : undefined);
  const vols = [...(r.Volumes ?? [])].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
  for (const w of r.Warnings ?? []) ctx.err(`${w}\n`);
  if (bool(p, 'quiet')) {
    for (const v of vols) ctx.out(`${v.Name}\n`);
    return 0;
  }
  ctx.out(renderFormatted(vols.map(row), str(p, 'format'), VOLUMES_TABLE, VOLUME_HEADERS));
  return 0;
}

async function inspect(ctx: Context, p: ParsedArgs): Promise<number> {
  const found: Buffer[] = [];
  const errors: string[] = [];
  for (const name of p.args) {
    try {
      found.push(await readAll(await ctx.client.stream('GET', `/volumes/${encodeURIComponent(name)}`)));
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      errors.push(err.message);
    }
  }
  const format = str(p, 'format');
  if (found.length || !format) ctx.out(renderInspect(found, format));
  for (const e of errors) ctx.err(`${e}\n`);
  return errors.length ? 1 : 0;
}

async function rm(ctx: Context, p: ParsedArgs): Promise<number> {
  let failed = 0;
  for (const name of p.args) {
    try {
      await ctx.client.call('DELETE', `/volumes/${encodeURIComponent(name)}`, { query: bool(p, 'force') ? { force: '1' } : undefined });
      ctx.out(`${name}\n`);
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      failed++;
      ctx.err(`${err.message}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** API 1.42+ prunes anonymous volumes unless `--all` (the `all=true` filter), older daemons all unused ones: the prompt says which. */
async function prune(ctx: Context, p: ParsedArgs): Promise<number> {
  const filters = filtersFrom(list(p, 'filter'));
  const modern = await ctx.client.negotiate().then(() => compare(ctx.client.apiVersion, '1.42') >= 0, () => true);
  if (bool(p, 'all')) {
    if (!modern) throw new CliError('"--all" requires API version 1.42, but the Berth daemon API version is ' + ctx.client.apiVersion, 1);
    filters.all = ['true'];
  }
  if (!bool(p, 'force')) {
    const which = !modern || bool(p, 'all') || filters.all?.some((a) => a === 'true' || a === '1') ? 'all local volumes' : 'anonymous local volumes';
    ctx.out(`WARNING! This will remove ${which} not used by at least one container.\nAre you sure you want to continue? [y/N] `);
    if (!/^y(es)?$/i.test((await readLine()).trim())) return 0;
  }
  const r = await ctx.client.post<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>('/volumes/prune', Object.keys(filters).length ? { filters: encodeFilters(filters) } : undefined);
  let out = '';
  if (r.VolumesDeleted?.length) out += `Deleted Volumes:\n${r.VolumesDeleted.map((n) => `${n}\n`).join('')}\n`;
  out += `Total reclaimed space: ${humanSize(r.VolumesDeleted?.length ? r.SpaceReclaimed : 0)}\n`;
  ctx.out(out);
  return 0;
}

function compare(a: string, b: string): number {
  const [a1 = 0, a2 = 0] = a.split('.').map(Number);
  const [b1 = 0, b2 = 0] = b.split('.').map(Number);
  return a1 - b1 || a2 - b2;
}

export const commands: Record<string, Command> = {
  'volume create': {
    spec: {
      usage: 'create [OPTIONS] [VOLUME]',
      description: 'Create a volume',
      maxArgs: 1,
      flags: [
        { name: 'driver', short: 'd', type: 'string', valueName: 'string', description: 'Specify volume driver name', default: 'local' },
        { name: 'label', type: 'list', valueName: 'list', description: 'Set metadata for a volume' },
        { name: 'name', type: 'string', valueName: 'string', description: 'Specify volume name', hidden: true },
        { name: 'opt', short: 'o', type: 'list', valueName: 'map', description: 'Set driver specific options' },
      ],
    },
    run: create,
  },
  'volume ls': {
    spec: {
      usage: 'ls [OPTIONS]',
      description: 'List volumes',
      maxArgs: 0,
      aliases: ['berth volume list'],
      flags: [
        { name: 'filter', short: 'f', type: 'list', valueName: 'filter', description: "Provide filter values (e.g. 'dangling=true')" },
        { name: 'format', type: 'string', valueName: 'string', description: 'Format output using a custom template' },
        { name: 'quiet', short: 'q', type: 'bool', description: 'Only display volume names' },
      ],
    },
    run: ls,
  },
  'volume inspect': {
    spec: {
      usage: 'inspect [OPTIONS] VOLUME [VOLUME...]',
      description: 'Display detailed information on one or more volumes',
      minArgs: 1,
      flags: [{ name: 'format', short: 'f', type: 'string', valueName: 'string', description: 'Format output using a custom template' }],
    },
    run: inspect,
  },
  'volume rm': {
    spec: {
      usage: 'rm [OPTIONS] VOLUME [VOLUME...]',
      description: 'Remove one or more volumes. You cannot remove a volume that is in use by a container.',
      minArgs: 1,
      aliases: ['berth volume remove'],
      flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Force the removal of one or more volumes' }],
    },
    run: rm,
  },
  'volume prune': {
    spec: {
      usage: 'prune [OPTIONS]',
      description: 'Remove unused local volumes',
      maxArgs: 0,
      flags: [
        { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused volumes, not just anonymous ones' },
        { name: 'filter', type: 'list', valueName: 'filter', description: 'Provide filter values (e.g. "label=<label>")' },
        { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
      ],
    },
    run: prune,
  },
};
