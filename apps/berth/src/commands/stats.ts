/**
 * `stats`: GET /containers/{id}/stats per container, rendered with docker's columns and
 * formulas (CPU % from the cpu/precpu deltas, memory without the inactive file cache).
 * Streaming keeps one connection per container and redraws the table every second.
 */
import type { ContainerSummary } from '@berth/api/wire';
import { bool, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { bytesSize, humanSize, renderFormatted } from '../output/format.js';
import { stdout } from '../output/stdio.js';
import { forEachLine } from '../output/lines.js';

const statsSpec: CommandSpec = {
  usage: 'stats [OPTIONS] [CONTAINER...]',
  description: 'Display a live stream of container(s) resource usage statistics',
  aliases: ['berth container stats', 'berth stats'],
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Show all containers (default shows just running)' },
    { name: 'format', type: 'string', valueName: 'string', description: 'Format output using a custom template' },
    { name: 'no-stream', type: 'bool', description: 'Disable streaming stats and only pull the first result' },
    { name: 'no-trunc', type: 'bool', description: 'Do not truncate output' },
  ],
};

const DEFAULT_FORMAT = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';
const HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID', Container: 'CONTAINER', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %',
  NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS',
};

interface CpuSection {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] };
  system_cpu_usage?: number;
  online_cpus?: number;
}

/** The part of Docker's StatsJSON the columns use. */
export interface StatsJson {
  read?: string;
  id?: string;
  name?: string;
  cpu_stats?: CpuSection;
  precpu_stats?: CpuSection;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  pids_stats?: { current?: number };
  blkio_stats?: { io_service_bytes_recursive?: { op: string; value: number }[] | null };
  networks?: Record<string, { rx_bytes: number; tx_bytes: number }>;
}

/** docker's calculateCPUPercentUnix. */
export function cpuPercent(s: StatsJson): number {
  const cpuDelta = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const online = s.cpu_stats?.online_cpus || s.cpu_stats?.cpu_usage?.percpu_usage?.length || 0;
  return systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * online * 100 : 0;
}

/** docker's calculateMemUsageUnixNoCache: usage less the inactive file cache (v1 total_inactive_file, v2 inactive_file). */
export function memUsage(s: StatsJson): number {
  const m = s.memory_stats ?? {};
  const usage = m.usage ?? 0;
  const st = m.stats ?? {};
  const inactive = st['total_inactive_file'] ?? st['inactive_file'];
  return inactive !== undefined && inactive < usage ? usage - inactive : usage;
}

/** The object a stats template sees: docker's placeholder names. */
export function statsRow(s: StatsJson, container: string, noTrunc: boolean): Record<string, string> {
  const mem = memUsage(s);
  const limit = s.memory_stats?.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes;
    tx += n.tx_bytes;
  }
  let read = 0;
  let write = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const c = e.op[0]?.toLowerCase();
    if (c === 'r') read += e.value;
    else if (c === 'w') write += e.value;
  }
  const id = s.id ?? '';
  const pct = (v: number): string => `${v.toFixed(2)}%`;
  return {
    Container: container,
    ID: noTrunc ? id : id.slice(0, 12),
    Name: (s.name ?? '').replace(/^\//, '') || '--',
    CPUPerc: pct(cpuPercent(s)),
    MemUsage: `${bytesSize(mem)} / ${bytesSize(limit)}`,
    MemPerc: pct(limit > 0 ? (mem / limit) * 100 : 0),
    NetIO: `${humanSize(rx, 3)} / ${humanSize(tx, 3)}`,
    BlockIO: `${humanSize(read, 3)} / ${humanSize(write, 3)}`,
    PIDs: String(s.pids_stats?.current ?? 0),
  };
}

async function targets(ctx: Context, p: ParsedArgs): Promise<string[]> {
  if (p.args.length) return p.args;
  const list = await ctx.client.get<ContainerSummary[]>('/containers/json', { all: bool(p, 'all') ? '1' : undefined });
  return list.map((c) => c.Id);
}

function render(rows: Record<string, string>[], format: string): string {
  return renderFormatted(rows, format, DEFAULT_FORMAT, HEADERS);
}

async function noStream(ctx: Context, p: ParsedArgs, names: string[]): Promise<number> {
  const noTrunc = bool(p, 'no-trunc');
  const errors: string[] = [];
  const results = await Promise.all(
    names.map(async (n) => {
      try {
        return statsRow(await ctx.client.get<StatsJson>(`/containers/${encodeURIComponent(n)}/stats`, { stream: '0' }), n, noTrunc);
      } catch (err) {
        if (!(err instanceof CliError)) throw err;
        errors.push(err.message);
        return null;
      }
    }),
  );
  const rows = results.filter((r): r is Record<string, string> => r !== null);
  if (errors.length && rows.length === 0 && p.args.length) throw new CliError(errors.join('\n'), 1);
  ctx.out(render(rows, str(p, 'format')));
  for (const e of errors) ctx.err(`${e}\n`);
  return errors.length ? 1 : 0;
}

/** One streaming connection: keeps the latest row; ends when the daemon or the container goes. */
function follow(ctx: Context, name: string, noTrunc: boolean, rows: Map<string, Record<string, string>>, errors: Map<string, string>): { stop(): void; done: Promise<void> } {
  let stopped = false;
  let destroy: (() => void) | undefined;
  const done = (async () => {
    try {
      const res = await ctx.client.stream('GET', `/containers/${encodeURIComponent(name)}/stats`, { query: { stream: '1' } });
      destroy = () => res.destroy();
      if (stopped) res.destroy();
      await forEachLine(res, (raw) => {
        const line = raw.trim();
        if (line) rows.set(name, statsRow(JSON.parse(line) as StatsJson, name, noTrunc));
      });
    } catch (err) {
      if (!stopped) errors.set(name, err instanceof Error ? err.message : String(err));
    }
  })();
  return {
    stop: () => {
      stopped = true;
      destroy?.();
    },
    done,
  };
}

async function streamStats(ctx: Context, p: ParsedArgs): Promise<number> {
  const noTrunc = bool(p, 'no-trunc');
  const format = str(p, 'format');
  const rows = new Map<string, Record<string, string>>();
  const errors = new Map<string, string>();
  const conns = new Map<string, ReturnType<typeof follow>>();
  const explicit = p.args.length > 0;
  const tty = stdout().isTTY === true;
  let stop = false;
  process.once('SIGINT', () => {
    stop = true;
  });
  const sync = async (): Promise<void> => {
    const want = await targets(ctx, p);
    for (const n of want) if (!conns.has(n)) conns.set(n, follow(ctx, n, noTrunc, rows, errors));
    if (!explicit) {
      for (const [n, c] of conns) {
        if (!want.includes(n)) {
          c.stop();
          conns.delete(n);
          rows.delete(n);
        }
      }
    }
  };
  await sync();
  for (let tick = 0; !stop; tick++) {
    await new Promise((r) => setTimeout(r, tick === 0 ? 100 : 1000));
    if (stop) break;
    if (!explicit && tick > 0) await sync().catch(() => undefined);
    if (explicit && errors.size === conns.size && conns.size > 0) break;
    const shown = [...conns.keys()].filter((n) => rows.has(n)).map((n) => rows.get(n)!);
    let text = render(shown, format);
    if (tty) text = `\x1b[2J\x1b[H${text}`;
    ctx.out(text);
  }
  for (const c of conns.values()) c.stop();
  if (errors.size && explicit) {
    for (const e of errors.values()) ctx.err(`${e}\n`);
    return 1;
  }
  return 0;
}

async function stats(ctx: Context, p: ParsedArgs): Promise<number> {
  if (bool(p, 'no-stream')) return noStream(ctx, p, await targets(ctx, p));
  return streamStats(ctx, p);
}

export const commands: Record<string, Command> = {
  stats: { spec: statsSpec, run: stats },
};
