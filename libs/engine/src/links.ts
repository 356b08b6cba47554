/**
 * Docker's legacy links (`--link NAME[:ALIAS]`): a container on the default bridge finds each
 * linked container by its alias in /etc/hosts, and its address, exposed ports and environment
 * in ALIAS_* variables. HostConfig.Links keeps Docker's form, `/NAME:/CONTAINER/ALIAS`.
 */
import type { HostConfig } from '@berth/api';
import { BerthError } from '@berth/errors';
import type { Ctr } from './container.js';
import type { EngineContext } from './context.js';

const parse = (link: string): { name: string; alias: string } => {
  const sep = link.indexOf(':');
  const name = (sep < 0 ? link : link.slice(0, sep)).replace(/^\//, '');
  const alias = sep < 0 ? name : link.slice(sep + 1).split('/').pop()!;
  return { name, alias };
};

/** At create: each linked container must exist; links are kept as Docker keeps them. */
export function normaliseLinks(ctx: EngineContext, host: HostConfig, containerName: string): void {
  if (!host.Links?.length) return;
  if (host.NetworkMode === 'host') {
    throw new BerthError('BERTH_INVALID_ARGUMENT', "conflicting options: host type networking can't be used with links. This would result in undefined behavior", { details: { field: 'HostConfig.Links' } });
  }
  host.Links = host.Links.map((link) => {
    const { name, alias } = parse(link);
    let other: Ctr;
    try {
      other = ctx.get(name);
    } catch (err) {
      throw new BerthError('BERTH_CONTAINER_NOT_FOUND', `could not get container for ${name}: No such container: ${name}`, { cause: err });
    }
    return `/${other.name}:/${containerName}/${alias}`;
  });
}

export interface LinkedRun {
  /** ALIAS_NAME, ALIAS_PORT*, ALIAS_ENV_* of every link. */
  env: string[];
  /** `ALIAS ID12 NAME:IP` entries in --add-host form, for /etc/hosts. */
  hosts: string[];
}

/** At start: every linked container must run; its address on the default bridge is read now. */
export function linksAtStart(ctx: EngineContext, c: Ctr): LinkedRun {
  const out: LinkedRun = { env: [], hosts: [] };
  for (const link of c.host.Links ?? []) {
    const { name, alias } = parse(link);
    const other = ctx.get(name);
    if (!other.rec.State.Running) throw new BerthError('BERTH_CONTAINER_STATE', `Cannot link to a non running container: /${other.name} AS /${c.name}/${alias}`);
    const ip = ctx.network?.sandbox(other.id)?.endpoints.find((e) => e.networkName === 'bridge')?.ipAddress;
    if (!ip) continue; // not on the default bridge: nothing to reach it by
    const prefix = alias.toUpperCase().replace(/-/g, '_');
    out.hosts.push(`${alias} ${other.id.slice(0, 12)} ${other.name}:${ip}`);
    out.env.push(`${prefix}_NAME=/${c.name}/${alias}`);
    const ports = Object.keys(other.rec.Config.ExposedPorts ?? {})
      .map((p) => {
        const [port, proto = 'tcp'] = p.split('/');
        return { port: Number(port), proto };
      })
      .filter((p) => Number.isInteger(p.port))
      .sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
    if (ports[0]) out.env.push(`${prefix}_PORT=${ports[0].proto}://${ip}:${ports[0].port}`);
    for (const { port, proto } of ports) {
      const p = `${prefix}_PORT_${port}_${proto.toUpperCase()}`;
      out.env.push(`${p}=${proto}://${ip}:${port}`, `${p}_ADDR=${ip}`, `${p}_PORT=${port}`, `${p}_PROTO=${proto}`);
    }
    for (const e of other.rec.Config.Env ?? []) {
      const eq = e.indexOf('=');
      if (eq <= 0) continue;
      const key = e.slice(0, eq);
      if (key === 'HOME' || key === 'PATH') continue;
      out.env.push(`${prefix}_ENV_${key}=${e.slice(eq + 1)}`);
    }
  }
  return out;
}
