/** The per-container /etc/hostname, /etc/hosts and /etc/resolv.conf, and reading the host's files. */
import { readFileSync } from 'node:fs';
import type { HostConfig } from '@berth/api';

export function hostnameFile(hostname: string): string {
  return `${hostname}\n`;
}

/** The name --add-host takes for the host's address as containers reach it (Docker's). */
export const HOST_GATEWAY = 'host-gateway';

/**
 * /etc/hosts: the usual names, --add-host entries (`host-gateway` becomes `hostGateway`, the
 * default bridge's address, as in Docker), and the container's own name when it has an address.
 */
export function hostsFile(h: Pick<HostConfig, 'ExtraHosts'>, hostIp?: string, hostname?: string, hostGateway?: string): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  for (const e of h.ExtraHosts ?? []) {
    const sep = e.indexOf(':');
    if (sep <= 0) continue;
    const ip = e.slice(sep + 1);
    lines.push(`${ip === HOST_GATEWAY ? hostGateway ?? ip : ip}\t${e.slice(0, sep)}`);
  }
  if (hostIp && hostname) lines.push(`${hostIp}\t${hostname}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The host's resolv.conf without loopback nameservers (unreachable from a private network
 * namespace); as is when that would leave none. --dns, --dns-search, --dns-option replace
 * their parts.
 */
export function resolvConf(host: string, h: Pick<HostConfig, 'Dns' | 'DnsSearch' | 'DnsOptions' | 'NetworkMode'>): string {
  const lines = host.split('\n').filter((l) => l.trim() !== '');
  const isLoopbackNs = (l: string): boolean => /^\s*nameserver\s+(127\.|::1\b)/.test(l);
  let kept = h.NetworkMode === 'host' ? lines : lines.filter((l) => !isLoopbackNs(l));
  if (!kept.some((l) => /^\s*nameserver\s/.test(l))) kept = lines;
  if (h.Dns?.length) kept = [...kept.filter((l) => !/^\s*nameserver\s/.test(l)), ...h.Dns.map((d) => `nameserver ${d}`)];
  if (h.DnsSearch?.length) kept = [...kept.filter((l) => !/^\s*(search|domain)\s/.test(l)), `search ${h.DnsSearch.join(' ')}`];
  if (h.DnsOptions?.length) kept = [...kept.filter((l) => !/^\s*options\s/.test(l)), `options ${h.DnsOptions.join(' ')}`];
  const text = kept.join('\n').replace(/\n+$/, '');
  return `${text}\n`;
}

/** A host file's content trimmed, or '' when it cannot be read. */
export function readTrim(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

/** A host file's content, or `fallback` when it cannot be read. */
export function readOr(p: string, fallback: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return fallback;
  }
}
