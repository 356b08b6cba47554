/** `update`: docker's flags into `POST /containers/{id}/update`, for each container named. */
import { int, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { parseBytes, parseCpus } from './run.js';

const updateSpec: CommandSpec = {
  usage: 'update [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Update configuration of one or more containers',
  minArgs: 1,
  aliases: ['berth container update', 'berth update'],
  flags: [
    { name: 'blkio-weight', type: 'int', valueName: 'uint16', description: 'Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)' },
    { name: 'cpu-period', type: 'int', valueName: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) period' },
    { name: 'cpu-quota', type: 'int', valueName: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
    { name: 'cpu-rt-period', type: 'int', valueName: 'int', description: 'Limit the CPU real-time period in microseconds' },
    { name: 'cpu-rt-runtime', type: 'int', valueName: 'int', description: 'Limit the CPU real-time runtime in microseconds' },
    { name: 'cpu-shares', short: 'c', type: 'int', valueName: 'int', description: 'CPU shares (relative weight)' },
    { name: 'cpus', type: 'string', valueName: 'decimal', description: 'Number of CPUs' },
    { name: 'cpuset-cpus', type: 'string', valueName: 'string', description: 'CPUs in which to allow execution (0-3, 0,1)' },
    { name: 'cpuset-mems', type: 'string', valueName: 'string', description: 'MEMs in which to allow execution (0-3, 0,1)' },
    { name: 'kernel-memory', type: 'string', valueName: 'bytes', description: 'Kernel memory limit (deprecated)' },
    { name: 'memory', short: 'm', type: 'string', valueName: 'bytes', description: 'Memory limit' },
    { name: 'memory-reservation', type: 'string', valueName: 'bytes', description: 'Memory soft limit' },
    { name: 'memory-swap', type: 'string', valueName: 'bytes', description: "Swap limit equal to memory plus swap: -1 to enable unlimited swap" },
    { name: 'pids-limit', type: 'int', valueName: 'int', description: 'Tune container pids limit (set -1 for unlimited)' },
    { name: 'restart', type: 'string', valueName: 'string', description: 'Restart policy to apply when a container exits' },
  ],
};

function parseRestartFlag(s: string): { Name: string; MaximumRetryCount: number } {
  const [name, max] = s.split(':');
  if (!['no', 'always', 'unless-stopped', 'on-failure'].includes(name!)) throw new CliError(`invalid restart policy '${name}'`, 125);
  if (max !== undefined && name !== 'on-failure') throw new CliError(`invalid restart policy format: maximum retry count can only be used with 'on-failure'`, 125);
  if (max !== undefined && !/^\d+$/.test(max)) throw new CliError(`invalid restart policy format: maximum retry count must be an integer`, 125);
  return { Name: name!, MaximumRetryCount: max ? Number(max) : 0 };
}

const bytesOrMinusOne = (s: string): number => (s === '-1' ? -1 : parseBytes(s));

/** The update body from the flags given (flags not given are left out: the daemon keeps those values). */
export function buildUpdateBody(p: ParsedArgs): Record<string, unknown> {
  if (p.given.size === 0) throw new CliError('you must provide one or more flags when using this command', 1);
  const body: Record<string, unknown> = {};
  const has = (n: string): boolean => p.given.has(n);
  if (has('blkio-weight')) body.BlkioWeight = int(p, 'blkio-weight');
  if (has('cpu-period')) body.CpuPeriod = int(p, 'cpu-period');
  if (has('cpu-quota')) body.CpuQuota = int(p, 'cpu-quota');
  if (has('cpu-rt-period')) body.CpuRealtimePeriod = int(p, 'cpu-rt-period');
  if (has('cpu-rt-runtime')) body.CpuRealtimeRuntime = int(p, 'cpu-rt-runtime');
  if (has('cpu-shares')) body.CpuShares = int(p, 'cpu-shares');
  if (has('cpus')) body.NanoCpus = parseCpus(str(p, 'cpus'));
  if (has('cpuset-cpus')) body.CpusetCpus = str(p, 'cpuset-cpus');
  if (has('cpuset-mems')) body.CpusetMems = str(p, 'cpuset-mems');
  if (has('kernel-memory')) body.KernelMemory = parseBytes(str(p, 'kernel-memory'));
  if (has('memory')) body.Memory = parseBytes(str(p, 'memory'));
  if (has('memory-reservation')) body.MemoryReservation = parseBytes(str(p, 'memory-reservation'));
  if (has('memory-swap')) body.MemorySwap = bytesOrMinusOne(str(p, 'memory-swap'));
  if (has('pids-limit')) body.PidsLimit = int(p, 'pids-limit');
  if (has('restart')) body.RestartPolicy = parseRestartFlag(str(p, 'restart'));
  return body;
}

async function update(ctx: Context, p: ParsedArgs): Promise<number> {
  const body = buildUpdateBody(p);
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const name of p.args) {
    try {
      const r = await ctx.client.post<{ Warnings?: string[] | null }>(`/containers/${encodeURIComponent(name)}/update`, undefined, body);
      warnings.push(...(r?.Warnings ?? []));
      ctx.out(`${name}\n`);
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      errors.push(err.message);
    }
  }
  for (const w of warnings) ctx.err(`${w}\n`);
  if (errors.length) throw new CliError(errors.join('\n'), 1);
  return 0;
}

export const commands: Record<string, Command> = {
  update: { spec: updateSpec, run: update },
};
