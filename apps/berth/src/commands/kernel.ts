/**
 * `berth container kernel CONTAINER`: what the container's run made in the kernel, as berthd
 * reads it back (GET /containers/{id}/kernel, a Berth extension): namespaces, cgroups and their
 * limits, mounts, network (veth, bridge, routes, iptables rules) and the process's credentials.
 * A readable report by default; `--format json` (or a Go template) for scripts.
 */
import type { ContainerKernelView } from '@berth/api/wire';
import { str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { tabwrite } from '../output/format.js';
import { parseTemplate } from '../output/template.js';

const spec: CommandSpec = {
  usage: 'kernel [OPTIONS] CONTAINER',
  description: "Show what a running container's run made in the kernel, read back from it",
  minArgs: 1,
  maxArgs: 1,
  flags: [{ name: 'format', short: 'f', type: 'string', valueName: 'string', description: "Format output using a custom template: 'json' prints the JSON" }],
};

function section(title: string, rows: string[][]): string {
  if (rows.length === 0) return '';
  return `${title}\n${tabwrite(rows.map((r) => `  ${r.join('\t')}`).join('\n') + '\n', 4, 2)}`;
}

/** The report: one section per kind of kernel object. */
export function renderKernel(v: ContainerKernelView): string {
  const out: string[] = [];
  out.push(`Container ${v.Name.replace(/^\//, '')} (${v.Id.slice(0, 12)}): PID ${v.Pid} on the host, ${v.Process.Count} process${v.Process.Count === 1 ? '' : 'es'}\n`);
  out.push(section('Namespaces', v.Namespaces.map((n) => [n.Type, String(n.Inode), n.SharedWith === '' ? 'its own' : `shared with ${n.SharedWith}`])));
  const cg: string[][] = [];
  for (const c of v.Cgroups) {
    cg.push([c.Hierarchy, c.Path]);
    for (const [f, val] of Object.entries(c.Files)) {
      const lines = val.split('\n');
      cg.push(['', `  ${f} = ${lines[0] ?? ''}`]);
      for (const more of lines.slice(1)) cg.push(['', `  ${' '.repeat(f.length + 3)}${more}`]);
    }
  }
  out.push(section('Cgroups', cg));
  out.push(section('Mounts', v.Mounts.map((m) => [m.Destination, m.Type, m.Source, m.Options])));
  if (v.Network) {
    const n = v.Network;
    const rows: string[][] = [['namespace', n.Namespace]];
    for (const i of n.Interfaces) {
      const peer = i.HostPeer ? `  <-> ${i.HostPeer.Name} on the host${i.HostPeer.Bridge ? `, bridge ${i.HostPeer.Bridge}` : ''}` : '';
      rows.push([i.Name, `${i.Kind || 'device'} ${i.Up ? 'up' : 'down'} mtu ${i.Mtu}${i.Mac ? ` ${i.Mac}` : ''} ${i.Addresses.join(' ')}${peer}`.replace(/ +/g, ' ')]);
    }
    for (const r of n.Routes) rows.push(['route', `${r.Dst}${r.Gateway ? ` via ${r.Gateway}` : ''}${r.Dev ? ` dev ${r.Dev}` : ''}`]);
    for (const r of n.Iptables) rows.push([`iptables -t ${r.Table}`, r.Rule]);
    out.push(section('Network', rows));
  }
  const p = v.Process;
  const ids = (s: string): string => s.split(/\s+/).join(' ');
  out.push(
    section('Process', [
      ['uid (real effective saved fs)', ids(p.Uid)],
      ['gid (real effective saved fs)', ids(p.Gid)],
      ['groups', p.Groups || '-'],
      ['no_new_privs', p.NoNewPrivs ? 'yes' : 'no'],
      ['seccomp', p.Seccomp === 'filter' ? `filter (${p.SeccompFilters} program${p.SeccompFilters === 1 ? '' : 's'})` : p.Seccomp],
      ['capabilities (effective)', p.CapEff.length ? p.CapEff.map((c) => c.replace(/^CAP_/, '').toLowerCase()).join(',') : 'none'],
      ['bounding set', `${p.CapBnd.length} capabilities`],
    ]),
  );
  return out.filter(Boolean).join('\n');
}

async function kernel(ctx: Context, p: ParsedArgs): Promise<number> {
  const view = await ctx.client.get<ContainerKernelView>(`/containers/${encodeURIComponent(p.args[0]!)}/kernel`);
  const format = str(p, 'format');
  if (format === 'json') ctx.out(`${JSON.stringify(view, null, 4)}\n`);
  else if (format) ctx.out(`${parseTemplate(format.replace(/\\t/g, '\t').replace(/\\n/g, '\n')).execute(view)}\n`);
  else ctx.out(renderKernel(view));
  return 0;
}

export const commands: Record<string, Command> = {
  'container kernel': { spec, run: kernel },
};
