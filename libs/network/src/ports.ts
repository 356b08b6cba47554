/**
 * Published and exposed ports between the Engine API's shapes (`"80/tcp": [{HostIp, HostPort}]`)
 * and the plugin wire's (PortBinding, TransportPort with IANA protocol numbers), as Docker's
 * daemon builds them (specs/plugin-protocol.md §4.4).
 */
import { BerthError } from '@berth/errors';
import type { PortBinding as ApiPortBinding } from '@berth/api';
import { Proto, type PortBinding, type TransportPort } from '@berth/plugin-api';

// Runs of published ports are a shape of the wire's port map: they live with it in the contract.
export { compressBindings, expandBindings, type PortRun } from '@berth/plugin-api';

const protoNumbers: Record<string, number> = { tcp: Proto.tcp, udp: Proto.udp, sctp: Proto.sctp };
const protoNames: Record<number, string> = { [Proto.tcp]: 'tcp', [Proto.udp]: 'udp', [Proto.sctp]: 'sctp' };

export function protoName(n: number): string {
  return protoNames[n] ?? String(n);
}

function parsePort(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${what}: ${text}`);
  const n = Number(text);
  if (n < 1 || n > 65535) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid ${what}: ${text}`);
  return n;
}

/** `80/tcp`, `53/udp`, `80` (tcp); a container range `80-90/tcp` expands to each port. */
export function parsePortKey(key: string): { ports: number[]; proto: number } {
  const [range = '', proto = 'tcp'] = key.split('/');
  const p = protoNumbers[proto.toLowerCase()];
  if (p === undefined) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid proto: ${proto}`);
  const [a = '', b] = range.split('-');
  const start = parsePort(a, 'containerPort');
  const end = b === undefined ? start : parsePort(b, 'containerPort');
  if (end < start) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid range specified for the container port: ${range}`);
  const ports: number[] = [];
  for (let i = start; i <= end; i++) ports.push(i);
  return { ports, proto: p };
}

function parseHostPort(text: string): { start: number; end: number } {
  if (text === '' || text === '0') return { start: 0, end: 0 };
  const [a = '', b] = text.split('-');
  const start = parsePort(a, 'hostPort');
  const end = b === undefined ? start : parsePort(b, 'hostPort');
  if (end < start) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid hostPort: ${text}`);
  return { start, end };
}

/**
 * HostConfig.PortBindings (+ ExposedPorts with PublishAllPorts) -> one wire PortBinding per
 * container port, sorted; and the exposed ports (image EXPOSE, --expose, and every published port).
 */
export function wirePorts(
  bindings: Record<string, ApiPortBinding[] | null> | null | undefined,
  exposed: Record<string, unknown> | null | undefined,
  publishAll: boolean,
): { bindings: PortBinding[]; exposed: TransportPort[] } {
  const out: PortBinding[] = [];
  const seen = new Set<string>();
  const expo: TransportPort[] = [];
  const addExposed = (proto: number, port: number): void => {
    const k = `${port}/${proto}`;
    if (seen.has(k)) return;
    seen.add(k);
    expo.push({ Proto: proto, Port: port });
  };
  for (const [key, list] of Object.entries(bindings ?? {})) {
    const { ports, proto } = parsePortKey(key);
    for (const port of ports) {
      addExposed(proto, port);
      for (const b of list ?? [{ HostIp: '', HostPort: '' }]) {
        const hp = parseHostPort(b.HostPort ?? '');
        out.push({ Proto: proto, IP: '', Port: port, HostIP: b.HostIp ?? '', HostPort: hp.start, HostPortEnd: hp.end });
      }
    }
  }
  for (const key of Object.keys(exposed ?? {})) {
    const { ports, proto } = parsePortKey(key);
    for (const port of ports) {
      const had = seen.has(`${port}/${proto}`);
      addExposed(proto, port);
      if (publishAll && !had) out.push({ Proto: proto, IP: '', Port: port, HostIP: '', HostPort: 0, HostPortEnd: 0 });
    }
  }
  // Usually in order already (the CLI sends ports in order); a 10,000-port range sorted by a
  // comparator costs ~100 ms in berthd's interpreter-only V8.
  const cmp = (a: TransportPort, b: TransportPort): number => a.Proto - b.Proto || a.Port - b.Port;
  const sorted = <T extends TransportPort>(xs: T[]): boolean => xs.every((x, i) => i === 0 || cmp(xs[i - 1]!, x) <= 0);
  if (!sorted(out)) out.sort(cmp);
  if (!sorted(expo)) expo.sort(cmp);
  return { bindings: out, exposed: expo };
}

/** NetworkSettings.Ports: every exposed port, with the host side of what was published. */
export function portsView(exposed: TransportPort[], published: PortBinding[]): Record<string, ApiPortBinding[] | null> {
  const view: Record<string, ApiPortBinding[] | null> = {};
  for (const e of exposed) view[`${e.Port}/${protoName(e.Proto)}`] = null;
  for (const p of published) {
    const key = `${p.Port}/${protoName(p.Proto)}`;
    const list = (view[key] ??= []);
    list.push({ HostIp: p.HostIP || '0.0.0.0', HostPort: String(p.HostPort) });
  }
  return view;
}

