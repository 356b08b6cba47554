import { isIPv4 } from 'node:net';
import { BerthError } from '@berth/errors';
import type { PortBinding } from '@berth/plugin-api';
import type { BoundSocket } from './proc.js';
import type { PortMapping } from './types.js';

const PROTO: Record<number, PortMapping['proto']> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** One binding as asked: an exact host port (or a run), a host range to pick from, or 0 = any. */
export interface PortRequest {
  proto: PortMapping['proto'];
  hostIp: string;
  /** 0 = ephemeral. */
  hostPort: number;
  /** > hostPort: pick one free port of hostPort..hostPortEnd (single container port only). */
  hostPortEnd: number;
  containerPort: number;
  containerPortEnd: number;
}

function badPort(what: string): never {
  throw new BerthError('BERTH_INVALID_ARGUMENT', what);
}

function validPort(p: number, zeroOk: boolean): boolean {
  return Number.isInteger(p) && p <= 65535 && (p >= 1 || (zeroOk && p === 0));
}

/**
 * Checks wire bindings and folds runs of consecutive exact ports (Docker sends
 * `-p 41000-41999:41000-41999` as 1,000 bindings) into one request each, so a range costs
 * one rule set. IPv6 host addresses are returned apart (no ip6tables rules here).
 */
export function normalizeBindings(bindings: readonly PortBinding[], defaultHostIp: string): { requests: PortRequest[]; skipped: PortBinding[] } {
  const skipped: PortBinding[] = [];
  const exact: PortRequest[] = [];
  const other: PortRequest[] = [];
  for (const b of bindings) {
    const proto = PROTO[b.Proto];
    if (proto === undefined) badPort(`invalid port protocol ${b.Proto}`);
    if (!validPort(b.Port, false)) badPort(`invalid container port ${b.Port}`);
    if (!validPort(b.HostPort, true)) badPort(`invalid host port ${b.HostPort}`);
    const end = b.HostPortEnd === 0 || b.HostPortEnd === undefined ? b.HostPort : b.HostPortEnd;
    if (!validPort(end, true) || end < b.HostPort) badPort(`invalid host port range ${b.HostPort}-${b.HostPortEnd}`);
    const hostIp = b.HostIP === '' || b.HostIP === undefined ? defaultHostIp || '0.0.0.0' : b.HostIP;
    if (hostIp.includes(':')) {
      skipped.push(b);
      continue;
    }
    if (!isIPv4(hostIp)) badPort(`invalid host IP ${hostIp}`);
    const r: PortRequest = { proto, hostIp, hostPort: b.HostPort, hostPortEnd: end, containerPort: b.Port, containerPortEnd: b.Port };
    if (b.HostPort !== 0 && end === b.HostPort) exact.push(r);
    else other.push(r);
  }
  exact.sort((a, b) => (a.proto < b.proto ? -1 : a.proto > b.proto ? 1 : a.hostIp < b.hostIp ? -1 : a.hostIp > b.hostIp ? 1 : a.containerPort - b.containerPort));
  const runs: PortRequest[] = [];
  for (const r of exact) {
    const last = runs[runs.length - 1];
    if (last && last.proto === r.proto && last.hostIp === r.hostIp && r.containerPort === last.containerPortEnd + 1 && r.hostPort === last.hostPortEnd + 1) {
      last.containerPortEnd = r.containerPort;
      last.hostPortEnd = r.hostPort;
    } else runs.push({ ...r });
  }
  return { requests: [...runs, ...other], skipped };
}

/** One held host-port range. */
export interface Allocation {
  proto: PortMapping['proto'];
  hostIp: string;
  start: number;
  end: number;
  owner: string;
}

function ipsOverlap(a: string, b: string): boolean {
  return a === b || a === '0.0.0.0' || b === '0.0.0.0';
}

function socketBlocks(s: BoundSocket, proto: PortMapping['proto'], hostIp: string): boolean {
  if (s.proto !== proto) return false;
  if (s.ip === '::' || s.ip === '0.0.0.0' || hostIp === '0.0.0.0') return true;
  return s.ip === hostIp || s.ip === `::ffff:${hostIp}`;
}

export function allocatedError(hostIp: string, port: number): BerthError {
  return new BerthError('BERTH_PORT_ALLOCATED', `Bind for ${hostIp}:${port} failed: port is already allocated`, { details: { hostIp, port } });
}

/**
 * Host ports Berth holds, as ranges (a 10,000-port range is one entry). A port is free when
 * no held range and no bound socket of another program (from /proc/net) covers it.
 */
export class PortAllocator {
  private held: Allocation[] = [];
  private cursor = new Map<string, number>();

  constructor(private ephemeral: () => Promise<[number, number]>) {}

  list(): readonly Allocation[] {
    return this.held;
  }

  set(all: readonly Allocation[]): void {
    this.held = all.map((a) => ({ ...a }));
  }

  release(owner: string): void {
    this.held = this.held.filter((a) => a.owner !== owner);
  }

  /** The first port of start..end that is taken, or undefined. */
  private firstTaken(pending: readonly Allocation[], sockets: readonly BoundSocket[], proto: PortMapping['proto'], hostIp: string, start: number, end: number): number | undefined {
    let first: number | undefined;
    for (const a of [...this.held, ...pending]) {
      if (a.proto !== proto || !ipsOverlap(a.hostIp, hostIp) || a.end < start || a.start > end) continue;
      const p = Math.max(a.start, start);
      if (first === undefined || p < first) first = p;
    }
    for (const s of sockets) {
      if (s.port < start || s.port > end || !socketBlocks(s, proto, hostIp)) continue;
      if (first === undefined || s.port < first) first = s.port;
    }
    return first;
  }

  /**
   * Picks host ports for every request, all or nothing: on a conflict it throws
   * BERTH_PORT_ALLOCATED and holds nothing. Returns the mappings (one per request, in order).
   */
  async allocate(owner: string, containerIp: string, requests: readonly PortRequest[], sockets: readonly BoundSocket[]): Promise<PortMapping[]> {
    const pending: Allocation[] = [];
    const out: PortMapping[] = [];
    for (const r of requests) {
      let hostPort: number;
      let hostPortEnd: number;
      if (r.hostPort === 0) {
        const [lo, hi] = await this.ephemeral();
        const key = `${r.proto}/${r.hostIp}`;
        const span = hi - lo + 1;
        const from = this.cursor.get(key) ?? lo;
        let found: number | undefined;
        for (let i = 0; i < span; i++) {
          const p = lo + ((from - lo + i) % span);
          if (this.firstTaken(pending, sockets, r.proto, r.hostIp, p, p) === undefined) {
            found = p;
            break;
          }
        }
        if (found === undefined) throw new BerthError('BERTH_PORT_ALLOCATED', `Bind for ${r.hostIp}:0 failed: all ports are allocated`);
        this.cursor.set(key, found + 1 > hi ? lo : found + 1);
        hostPort = hostPortEnd = found;
      } else if (r.hostPortEnd > r.hostPort && r.containerPort === r.containerPortEnd) {
        // a host range for one container port: the first free port of the range, as Docker does
        let found: number | undefined;
        for (let p = r.hostPort; p <= r.hostPortEnd; p++) {
          const t = this.firstTaken(pending, sockets, r.proto, r.hostIp, p, r.hostPortEnd);
          if (t === undefined || t > p) {
            found = p;
            break;
          }
          p = t;
        }
        if (found === undefined) throw allocatedError(r.hostIp, r.hostPort);
        hostPort = hostPortEnd = found;
      } else {
        const t = this.firstTaken(pending, sockets, r.proto, r.hostIp, r.hostPort, r.hostPortEnd);
        if (t !== undefined) throw allocatedError(r.hostIp, t);
        hostPort = r.hostPort;
        hostPortEnd = r.hostPortEnd;
      }
      pending.push({ proto: r.proto, hostIp: r.hostIp, start: hostPort, end: hostPortEnd, owner });
      out.push({
        proto: r.proto,
        hostIp: r.hostIp,
        hostPort,
        hostPortEnd,
        containerIp,
        containerPort: r.containerPort,
        containerPortEnd: r.containerPort + (hostPortEnd - hostPort),
      });
    }
    this.held.push(...pending);
    return out;
  }
}

/** The kernel's ephemeral range (`ip_local_port_range`), Docker's fallback 49153-65535. */
export function parsePortRange(text: string): [number, number] {
  const m = /^\s*(\d+)\s+(\d+)/.exec(text);
  if (!m) return [49153, 65535];
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  return lo >= 1 && hi <= 65535 && lo <= hi ? [lo, hi] : [49153, 65535];
}
