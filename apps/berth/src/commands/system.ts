/** version and info, in docker's layouts. */
import type { InfoResponse, VersionResponse } from '@berth/api/wire';
import { str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CLIENT_API_VERSION, CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { bytesSize, tabwrite } from '../output/format.js';
import { parseTemplate } from '../output/template.js';

export const CLIENT_VERSION = '0.1.0';

function clientInfo(apiVersion: string): Record<string, unknown> {
  const c: Record<string, unknown> = {
    Version: CLIENT_VERSION,
    ApiVersion: apiVersion,
    DefaultAPIVersion: CLIENT_API_VERSION,
    NodeVersion: process.version,
    Os: process.platform,
    Arch: process.arch === 'x64' ? 'amd64' : process.arch,
    Context: 'default',
  };
  Object.defineProperty(c, 'APIVersion', { value: apiVersion, enumerable: false });
  return c;
}

/** Go's time.ANSIC in the local zone, as docker shows the engine's build time. */
export function ansic(value: string): string {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(ms)) return value;
  const d = new Date(ms);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

function renderVersion(client: Record<string, unknown>, server: VersionResponse | undefined): string {
  const lines = [
    'Client:',
    ` Version:\t${client.Version}`,
    ` API version:\t${client.ApiVersion}${client.ApiVersion !== client.DefaultAPIVersion ? ` (downgraded from ${client.DefaultAPIVersion})` : ''}`,
    ` Node version:\t${client.NodeVersion}`,
    ` OS/Arch:\t${client.Os}/${client.Arch}`,
    ` Context:\t${client.Context}`,
  ];
  if (server) {
    lines.push('', `Server:${server.Platform?.Name ? ` ${server.Platform.Name}` : ''}`);
    for (const comp of server.Components ?? []) {
      const d = comp.Details ?? {};
      lines.push(` ${comp.Name}:`, `  Version:\t${comp.Version}`);
      if (comp.Name === 'Engine') {
        lines.push(
          `  API version:\t${d.ApiVersion ?? server.ApiVersion} (minimum version ${d.MinAPIVersion ?? server.MinAPIVersion})`,
          `  Go version:\t${d.GoVersion ?? server.GoVersion}`,
          `  Git commit:\t${d.GitCommit ?? server.GitCommit}`,
          `  Built:\t${ansic(d.BuildTime ?? server.BuildTime)}`,
          `  OS/Arch:\t${d.Os ?? server.Os}/${d.Arch ?? server.Arch}`,
          `  Experimental:\t${d.Experimental ?? 'false'}`,
        );
      } else for (const k of Object.keys(d).sort()) lines.push(`  ${k}:\t${d[k]}`);
    }
  }
  return tabwrite(lines.join('\n') + '\n', 20, 1);
}

async function version(ctx: Context, p: ParsedArgs): Promise<number> {
  const format = str(p, 'format');
  let server: VersionResponse | undefined;
  let error: unknown;
  try {
    server = await ctx.client.get<VersionResponse>('/version');
  } catch (err) {
    error = err;
  }
  const client = clientInfo(ctx.client.apiVersion);
  if (format) {
    const tpl = parseTemplate(format === 'json' ? '{{json .}}' : format.replace(/\\t/g, '\t').replace(/\\n/g, '\n'));
    ctx.out(`${tpl.execute({ Client: client, Server: server ?? null })}\n`);
  } else ctx.out(renderVersion(client, server));
  if (error) throw error;
  return 0;
}

function kv(lines: string[], indent: string, key: string, value: unknown): void {
  lines.push(`${indent}${key}: ${value}`);
}

export function renderInfo(info: InfoResponse, debug: boolean): string {
  const i = info as Record<string, any>;
  const L: string[] = ['Client:', ` Version:    ${CLIENT_VERSION}`, ' Context:    default', ` Debug Mode: ${debug}`, '', 'Server:'];
  kv(L, ' ', 'Containers', i.Containers);
  kv(L, '  ', 'Running', i.ContainersRunning);
  kv(L, '  ', 'Paused', i.ContainersPaused);
  kv(L, '  ', 'Stopped', i.ContainersStopped);
  kv(L, ' ', 'Images', i.Images);
  kv(L, ' ', 'Server Version', i.ServerVersion);
  kv(L, ' ', 'Storage Driver', i.Driver);
  for (const [k, v] of (i.DriverStatus ?? []) as [string, string][]) kv(L, '  ', k, v);
  if (i.LoggingDriver) kv(L, ' ', 'Logging Driver', i.LoggingDriver);
  if (i.CgroupDriver) kv(L, ' ', 'Cgroup Driver', i.CgroupDriver);
  if (i.CgroupVersion) kv(L, ' ', 'Cgroup Version', i.CgroupVersion);
  if (i.Plugins) {
    L.push(' Plugins:');
    for (const k of ['Volume', 'Network', 'Authorization', 'Log'])
      if (Array.isArray(i.Plugins[k]) && i.Plugins[k].length) kv(L, '  ', k, i.Plugins[k].join(' '));
  }
  if (i.Swarm) kv(L, ' ', 'Swarm', i.Swarm.LocalNodeState ?? 'inactive');
  if (i.Runtimes) kv(L, ' ', 'Runtimes', Object.keys(i.Runtimes).sort().join(' '));
  if (i.DefaultRuntime) kv(L, ' ', 'Default Runtime', i.DefaultRuntime);
  if (i.InitBinary) kv(L, ' ', 'Init Binary', i.InitBinary);
  if (i.OSType === 'linux') {
    if (i.ContainerdCommit) kv(L, ' ', 'containerd version', i.ContainerdCommit.ID);
    if (i.RuncCommit) kv(L, ' ', 'runc version', i.RuncCommit.ID);
    if (i.InitCommit) kv(L, ' ', 'init version', i.InitCommit.ID);
  }
  if (Array.isArray(i.SecurityOptions) && i.SecurityOptions.length) {
    L.push(' Security Options:');
    for (const so of i.SecurityOptions as string[]) {
      const fields = Object.fromEntries(so.split(',').map((kvs) => kvs.split('=') as [string, string]));
      L.push(`  ${fields.name ?? so}`);
      if (fields.profile && fields.profile !== 'default' && fields.profile !== 'builtin') L.push(`   Profile: ${fields.profile}`);
      else if (fields.name === 'seccomp' && fields.profile) L.push(`   Profile: ${fields.profile === 'builtin' ? 'builtin' : fields.profile}`);
    }
  }
  kv(L, ' ', 'Kernel Version', i.KernelVersion);
  kv(L, ' ', 'Operating System', i.OperatingSystem);
  kv(L, ' ', 'OSType', i.OSType);
  kv(L, ' ', 'Architecture', i.Architecture);
  kv(L, ' ', 'CPUs', i.NCPU);
  kv(L, ' ', 'Total Memory', bytesSize(Number(i.MemTotal ?? 0)));
  kv(L, ' ', 'Name', i.Name);
  kv(L, ' ', 'ID', i.ID);
  kv(L, ' ', 'Docker Root Dir', i.DockerRootDir);
  kv(L, ' ', 'Debug Mode', !!i.Debug);
  if (i.HttpProxy) kv(L, ' ', 'HTTP Proxy', i.HttpProxy);
  if (i.HttpsProxy) kv(L, ' ', 'HTTPS Proxy', i.HttpsProxy);
  if (i.NoProxy) kv(L, ' ', 'No Proxy', i.NoProxy);
  if (Array.isArray(i.Labels) && i.Labels.length) {
    L.push(' Labels:');
    for (const l of i.Labels) L.push(`  ${l}`);
  }
  kv(L, ' ', 'Experimental', !!i.ExperimentalBuild);
  const cidrs = i.RegistryConfig?.InsecureRegistryCIDRs ?? [];
  const insecure = [
    ...Object.values((i.RegistryConfig?.IndexConfigs ?? {}) as Record<string, { Name: string; Secure: boolean }>)
      .filter((c) => !c.Secure)
      .map((c) => c.Name),
    ...cidrs,
  ];
  if (insecure.length) {
    L.push(' Insecure Registries:');
    for (const r of insecure) L.push(`  ${r}`);
  }
  if (Array.isArray(i.RegistryConfig?.Mirrors) && i.RegistryConfig.Mirrors.length) {
    L.push(' Registry Mirrors:');
    for (const m of i.RegistryConfig.Mirrors) L.push(`  ${m}`);
  }
  kv(L, ' ', 'Live Restore Enabled', !!i.LiveRestoreEnabled);
  return L.join('\n') + '\n\n';
}

async function info(ctx: Context, p: ParsedArgs): Promise<number> {
  const format = str(p, 'format');
  let data: InfoResponse;
  try {
    data = await ctx.client.get<InfoResponse>('/info');
  } catch (err) {
    if (format) throw err;
    ctx.out(`Client:\n Version:    ${CLIENT_VERSION}\n Context:    default\n Debug Mode: false\n\nServer:\n`);
    if (err instanceof CliError) throw new CliError(`ERROR: ${err.message}\nerrors pretty printing info`, 1);
    throw err;
  }
  if (format) {
    const tpl = parseTemplate(format === 'json' ? '{{json .}}' : format.replace(/\\t/g, '\t').replace(/\\n/g, '\n'));
    ctx.out(`${tpl.execute({ ...data, ClientInfo: { Version: CLIENT_VERSION, Context: 'default', Debug: false } })}\n`);
    return 0;
  }
  ctx.out(renderInfo(data, false));
  for (const w of (data as Record<string, unknown>).Warnings as string[] | undefined ?? []) ctx.err(`${w}\n`);
  return 0;
}

const fmtFlag = { name: 'format', short: 'f', type: 'string' as const, valueName: 'string', description: 'Format output using a custom template' };

export const commands: Record<string, Command> = {
  version: { spec: { usage: 'version [OPTIONS]', description: 'Show the Berth version information', maxArgs: 0, flags: [fmtFlag] } satisfies CommandSpec, run: version },
  info: { spec: { usage: 'info [OPTIONS]', description: 'Display system-wide information', maxArgs: 0, flags: [fmtFlag] }, run: info },
};
