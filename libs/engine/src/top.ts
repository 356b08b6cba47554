/** `docker top`: ps run on the host, its rows kept for the container's pids. */
import { invalid } from './config.js';
import type { EngineContext } from './context.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { TopResponse } from '@berth/api';
import { BerthError } from '@berth/errors';

const execFileP = promisify(execFile);

/** Docker's parsePSOutput: rows of `ps` whose PID is one of the container's, extra fields merged into the last column. */
export function parsePs(output: string, pids: readonly number[]): TopResponse {
  const lines = output.split('\n');
  const titles = (lines[0] ?? '').trim().split(/\s+/).filter(Boolean);
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw new BerthError('BERTH_INVALID_ARGUMENT', `Couldn't find PID field in ps output`);
  const want = new Set(pids);
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    const fields = line.trim().split(/\s+/);
    const pid = Number(fields[pidIndex]);
    if (!Number.isInteger(pid) || !want.has(pid)) continue;
    const row = fields.slice(0, titles.length - 1);
    row.push(fields.slice(titles.length - 1).join(' '));
    processes.push(row);
  }
  return { Titles: titles, Processes: processes };
}

export async function topContainer(ctx: EngineContext, ref: string, psArgs: string): Promise<TopResponse> {
  const c = ctx.get(ref);
  if (!c.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is not running`);
  const pids = await ctx.rtCgroups.pids(ctx.cgroupPathOf(c));
  const args = (psArgs || '-ef').split(/\s+/).filter(Boolean);
  let out: string;
  try {
    out = (await execFileP('ps', args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (err) {
    throw invalid('ps_args', `Error running ps: ${(err as Error).message}`);
  }
  return parsePs(out, pids);
}
