import type { TopResponse } from '@berth/api';
import { BerthError } from '@berth/errors';

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
