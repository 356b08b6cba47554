import { isIP } from 'node:net';

/** Docker Hub's reference domain and the host that serves its registry API. */
export const HUB_DOMAIN = 'docker.io';
export const HUB_REGISTRY_HOST = 'registry-1.docker.io';

/** The host[:port] that serves the registry API of a reference domain. */
export function registryHost(domain: string): string {
  return domain === HUB_DOMAIN || domain === 'index.docker.io' ? HUB_REGISTRY_HOST : domain;
}

/** Docker's default insecure CIDR: loopback registries speak plain HTTP without configuration. */
export const DEFAULT_INSECURE_CIDRS: readonly string[] = ['127.0.0.0/8'];

function hostnameOf(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const i = hostPort.lastIndexOf(':');
  return i === -1 ? hostPort : hostPort.slice(0, i);
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => (acc << 8) + Number(part), 0) >>> 0;
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split('/');
  if (net === undefined || bitsText === undefined) return false;
  const bits = Number(bitsText);
  if (isIP(ip) === 4 && isIP(net) === 4 && bits >= 0 && bits <= 32) {
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return (ipv4ToInt(ip) & mask) === (ipv4ToInt(net) & mask);
  }
  // IPv6: only exact host entries are matched (::1/128 and the like).
  return isIP(ip) === 6 && isIP(net) === 6 && bits === 128 && ip === net;
}

/**
 * Whether a registry may be reached over plain HTTP (and HTTPS without certificate checks):
 * it is named in the daemon's `insecure-registries` (host[:port] or CIDR), or its address is
 * loopback (127.0.0.0/8, ::1, localhost), as Docker allows by default.
 */
export function isInsecureRegistry(domain: string, insecure: readonly string[] = []): boolean {
  const host = hostnameOf(domain);
  if (insecure.includes(domain) || insecure.includes(host)) return true;
  if (host === 'localhost' || host === '::1') return true;
  if (isIP(host) === 0) return false;
  return [...DEFAULT_INSECURE_CIDRS, ...insecure.filter((e) => e.includes('/'))].some((c) => inCidr(host, c));
}
