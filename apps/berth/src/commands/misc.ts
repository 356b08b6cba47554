/** top, export, events. */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { encodeFilters, type TopResponse } from '@berth/api/wire';
import { list, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { tabwrite } from '../output/format.js';
import { stdout } from '../output/stdio.js';
import { formatSpec, parseTemplate } from '../output/template.js';
import { toApiTimestamp } from './logs.js';
import { filtersFrom } from './ps.js';
import { forEachLine } from '../output/lines.js';

async function top(ctx: Context, p: ParsedArgs): Promise<number> {
  const [container, ...psArgs] = p.args;
  const r = await ctx.client.get<TopResponse>(`/containers/${encodeURIComponent(container!)}/top`, {
    ps_args: psArgs.length ? psArgs.join(' ') : undefined,
  });
  const text = [r.Titles.join('\t'), ...(r.Processes ?? []).map((row) => row.join('\t'))].join('\n') + '\n';
  ctx.out(tabwrite(text, 20, 3));
  return 0;
}

async function exportCmd(ctx: Context, p: ParsedArgs): Promise<number> {
  const output = str(p, 'output');
  if (!output && stdout().isTTY) throw new CliError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const res = await ctx.client.stream('GET', `/containers/${encodeURIComponent(p.args[0]!)}/export`);
  if (output) await pipeline(res, createWriteStream(output));
  else
    for await (const chunk of res) {
      if (!stdout().write(chunk as Buffer)) await new Promise((r) => stdout().once('drain', r));
    }
  return 0;
}

/** RFC3339NanoFixed in the local zone (docker's event time). */
export function rfc3339NanoFixed(timeNano: bigint): string {
  const ms = Number(timeNano / 1_000_000n);
  const nanos = String(timeNano % 1_000_000_000n).padStart(9, '0');
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const local = new Date(ms + off * 60_000);
  const base = local.toISOString().slice(0, 19);
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${String(Math.trunc(Math.abs(off) / 60)).padStart(2, '0')}:${String(Math.abs(off) % 60).padStart(2, '0')}`;
  return `${base}.${nanos}${zone}`;
}

export function formatEvent(line: string, ev: { Type: string; Action: string; Actor?: { ID: string; Attributes?: Record<string, string> }; time?: number }): string {
  const tn = /"timeNano"\s*:\s*(\d+)/.exec(line)?.[1];
  let s = '';
  if (tn && tn !== '0') s = rfc3339NanoFixed(BigInt(tn));
  else if (ev.time) s = rfc3339NanoFixed(BigInt(ev.time) * 1_000_000_000n);
  s += ` ${ev.Type} ${ev.Action} ${ev.Actor?.ID ?? ''}`;
  const attrs = ev.Actor?.Attributes ?? {};
  const keys = Object.keys(attrs).sort();
  if (keys.length) s += ` (${keys.map((k) => `${k}=${attrs[k]}`).join(', ')})`;
  return s;
}

async function events(ctx: Context, p: ParsedArgs): Promise<number> {
  const filters = filtersFrom(list(p, 'filter'));
  const query = {
    since: str(p, 'since') ? toApiTimestamp(str(p, 'since')) : undefined,
    until: str(p, 'until') ? toApiTimestamp(str(p, 'until')) : undefined,
    filters: Object.keys(filters).length ? encodeFilters(filters) : undefined,
  };
  const format = str(p, 'format');
  const tpl = format ? parseTemplate(formatSpec(format, '').template) : undefined;
  const res = await ctx.client.stream('GET', '/events', { query });
  process.once('SIGINT', () => {
    res.destroy();
    process.exit(0);
  });
  await forEachLine(res, (line) => {
    if (!line.trim()) return;
    const ev = JSON.parse(line);
    ctx.out(`${tpl ? tpl.execute(ev) : formatEvent(line, ev)}\n`);
  });
  return 0;
}

const topSpec: CommandSpec = { usage: 'top CONTAINER [ps OPTIONS]', description: 'Display the running processes of a container', minArgs: 1, stopAtFirstPositional: true, flags: [] };
const exportSpec: CommandSpec = {
  usage: 'export [OPTIONS] CONTAINER',
  description: "Export a container's filesystem as a tar archive",
  minArgs: 1,
  maxArgs: 1,
  flags: [{ name: 'output', short: 'o', type: 'string', valueName: 'string', description: 'Write to a file, instead of STDOUT' }],
};
const eventsSpec: CommandSpec = {
  usage: 'events [OPTIONS]',
  description: 'Get real time events from the server',
  maxArgs: 0,
  flags: [
    { name: 'filter', short: 'f', type: 'list', valueName: 'filter', description: 'Filter output based on conditions provided' },
    { name: 'format', type: 'string', valueName: 'string', description: 'Format output using a custom template' },
    { name: 'since', type: 'string', valueName: 'string', description: 'Show all events created since timestamp' },
    { name: 'until', type: 'string', valueName: 'string', description: 'Stream events until this timestamp' },
  ],
};

export const commands: Record<string, Command> = {
  top: { spec: topSpec, run: top },
  export: { spec: exportSpec, run: exportCmd },
  events: { spec: eventsSpec, run: events },
};
