/** `logs`: inspect (for Tty), then GET /containers/{id}/logs; demultiplexed unless the container has a TTY. */
import { Demuxer, StreamType, type ContainerInspect } from '@berth/api/wire';
import { bool, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { stdout } from '../output/stdio.js';

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration, in milliseconds; undefined when `s` is not a duration. */
export function parseGoDuration(s: string): number | undefined {
  const m = /^([-+]?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(s);
  if (!m) return undefined;
  let total = 0;
  for (const part of m[2]!.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(part[1]) * UNITS[part[2]!]!;
  return m[1] === '-' ? -total : total;
}

/**
 * docker's GetTimestamp: a duration (relative to `now`), a unix time (`123` or `123.456`), or an
 * RFC 3339 / date-time value; returned as `<seconds>.<nanoseconds>` the way the CLI sends it.
 */
export function toApiTimestamp(value: string, now = Date.now()): string {
  if (value === '') return '';
  const d = parseGoDuration(value);
  if (d !== undefined) return formatUnixMs(now - d);
  if (/^\d+(\.\d+)?$/.test(value)) return value;
  let v = value;
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) v += 'T00:00:00';
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/.test(v);
  const ms = Date.parse(hasZone ? v : v);
  if (Number.isNaN(ms)) throw new CliError(`invalid value for "since": failed to parse value as time or duration: "${value}"`);
  const frac = /\.(\d+)/.exec(v)?.[1] ?? '';
  const seconds = Math.floor(ms / 1000);
  return `${seconds}.${frac.padEnd(9, '0').slice(0, 9)}`;
}

function formatUnixMs(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return `${seconds}.${String(nanos).padStart(9, '0')}`;
}

const logsSpec: CommandSpec = {
  usage: 'logs [OPTIONS] CONTAINER',
  description: 'Fetch the logs of a container',
  minArgs: 1,
  maxArgs: 1,
  flags: [
    { name: 'details', type: 'bool', description: 'Show extra details provided to logs' },
    { name: 'follow', short: 'f', type: 'bool', description: 'Follow log output' },
    { name: 'since', type: 'string', valueName: 'string', description: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
    { name: 'tail', short: 'n', type: 'string', valueName: 'string', description: 'Number of lines to show from the end of the logs', default: 'all' },
    { name: 'timestamps', short: 't', type: 'bool', description: 'Show timestamps' },
    { name: 'until', type: 'string', valueName: 'string', description: 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
  ],
};

async function logs(ctx: Context, p: ParsedArgs): Promise<number> {
  const c = ctx.client;
  const info = await c.get<ContainerInspect>(`/containers/${encodeURIComponent(p.args[0]!)}/json`);
  const query = {
    stdout: '1',
    stderr: '1',
    since: str(p, 'since') ? toApiTimestamp(str(p, 'since')) : undefined,
    until: str(p, 'until') ? toApiTimestamp(str(p, 'until')) : undefined,
    timestamps: bool(p, 'timestamps') ? '1' : undefined,
    follow: bool(p, 'follow') ? '1' : undefined,
    tail: str(p, 'tail'),
    details: bool(p, 'details') ? '1' : undefined,
  };
  const res = await c.stream('GET', `/containers/${info.Id}/logs`, { query });
  let failure: string | undefined;
  const demux = new Demuxer((type, payload) => {
    if (type === StreamType.Stderr) process.stderr.write(payload);
    else if (type === StreamType.SystemError) failure = payload.toString('utf8').trim();
    else stdout().write(payload);
  });
  for await (const chunk of res) {
    if (info.Config.Tty) stdout().write(chunk as Buffer);
    else demux.push(chunk as Buffer);
    if (failure) break;
  }
  if (failure) throw new CliError(`Error response from daemon: ${failure}`);
  return 0;
}

export const commands: Record<string, Command> = {
  logs: { spec: logsSpec, run: logs },
};
