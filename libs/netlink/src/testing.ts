// Fakes for unit tests: `@berth/netlink/testing`.
import { constants as osConstants } from 'node:os';
import { SystemError } from '@berth/errors';
import { bytesToIp, ipFamily, ipToBytes, parseCidr } from './ip.js';
import type { AddressInfo, LinkChange, LinkInfo, Netlink, RouteInfo, RouteSpec } from './types.js';

/** The namespace key of the "daemon's own" namespace in FakeNetworkKernel. */
export const HOST_NS = 'host';

export type NetlinkMethod = Exclude<keyof Netlink, 'close'>;

/** One recorded call, in the order made: which namespace's socket, which method, its arguments. */
export interface NetlinkCall {
  ns: string;
  method: NetlinkMethod;
  args: unknown[];
}

interface FakeLink {
  index: number;
  name: string;
  mtu: number;
  mac: string;
  up: boolean;
  kind?: string;
  master?: string;
  hairpin: boolean;
  /** The other end of a veth: its namespace and current name are looked up by id. */
  peerId?: number;
  id: number;
}

interface FakeNs {
  links: FakeLink[];
  addresses: AddressInfo[];
  routes: RouteInfo[];
  nextIndex: number;
}

interface Failure {
  method: NetlinkMethod;
  code: string;
  when: ((...args: never[]) => boolean) | undefined;
  times: number;
}

function sysErr(code: string, what: string): SystemError {
  return new SystemError({ errno: (osConstants.errno as Record<string, number>)[code] ?? 0, code, syscall: what });
}

function network(ip: string, prefix: number): string {
  const b = ipToBytes(ip);
  for (let bit = prefix; bit < b.length * 8; bit++) b[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return bytesToIp(b);
}

function contains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  if (c.family !== ipFamily(ip)) return false;
  return network(c.ip, c.prefix) === network(ip, c.prefix);
}

let macCounter = 0;
function fakeMac(): string {
  macCounter++;
  return `02:fa:ce:${((macCounter >> 16) & 0xff).toString(16).padStart(2, '0')}:${((macCounter >> 8) & 0xff).toString(16).padStart(2, '0')}:${(macCounter & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * An in-memory model of the kernel's network namespaces for unit tests: links (bridges, veth
 * pairs whose ends may sit in different namespaces), addresses, main-table routes (explicit
 * ones plus the connected route of each address on an up link, as the kernel adds them).
 * `netlink(ns)` answers a `Netlink` bound to one namespace (HOST_NS or a path made with
 * createNetns); every call is recorded in `calls`; `failOn` makes a method throw the
 * SystemError the real one would, before it changes anything.
 */
export class FakeNetworkKernel {
  readonly calls: NetlinkCall[] = [];
  private readonly namespaces = new Map<string, FakeNs>();
  private readonly failures: Failure[] = [];
  private nextId = 1;

  constructor() {
    this.namespaces.set(HOST_NS, this.freshNs());
  }

  private freshNs(): FakeNs {
    return { links: [{ id: this.nextId++, index: 1, name: 'lo', mtu: 65536, mac: '00:00:00:00:00:00', up: true, hairpin: false }], addresses: [], routes: [], nextIndex: 2 };
  }

  /** A Netlink acting in namespace `ns` (HOST_NS by default). */
  netlink(ns: string = HOST_NS): RecordingNetlink {
    return new RecordingNetlink(this, ns);
  }

  createNetns(path: string): void {
    if (this.namespaces.has(path)) throw sysErr('EEXIST', `create netns ${path}`);
    const ns = this.freshNs();
    ns.links[0]!.up = false;
    this.namespaces.set(path, ns);
  }

  /** Like the kernel when the last reference goes: veth ends inside die with their peers. */
  deleteNetns(path: string): void {
    const ns = this.namespaces.get(path);
    if (ns === undefined || path === HOST_NS) return;
    for (const l of [...ns.links]) if (l.peerId !== undefined) this.removeLink(path, l);
    this.namespaces.delete(path);
  }

  netnsExists(path: string): boolean {
    return this.namespaces.has(path);
  }

  /** Namespaces other than HOST_NS that exist. */
  netnsPaths(): string[] {
    return [...this.namespaces.keys()].filter((k) => k !== HOST_NS);
  }

  /**
   * The next `times` (default 1) calls of `method` whose arguments satisfy `when` throw the
   * errno `code`, without touching the model.
   */
  failOn<M extends NetlinkMethod>(method: M, code: string, opts: { when?: (...args: Parameters<Netlink[M]>) => boolean; times?: number } = {}): void {
    this.failures.push({ method, code, when: opts.when as Failure['when'], times: opts.times ?? 1 });
  }

  /** A snapshot of one namespace (links with master names, addresses, routes). */
  snapshot(ns: string = HOST_NS): { links: (LinkInfo & { master?: string; hairpin: boolean })[]; addresses: AddressInfo[]; routes: RouteInfo[] } {
    const n = this.ns(ns, 'snapshot');
    return {
      links: n.links.map((l) => ({ ...this.info(n, l), ...(l.master !== undefined ? { master: l.master } : {}), hairpin: l.hairpin })),
      addresses: n.addresses.map((a) => ({ ...a })),
      routes: this.routesOf(n),
    };
  }

  // ---- model operations used by RecordingNetlink ----

  /** @internal */
  record(ns: string, method: NetlinkMethod, args: unknown[], what: string): void {
    this.calls.push({ ns, method, args });
    const i = this.failures.findIndex((f) => f.method === method && (f.when === undefined || (f.when as (...a: unknown[]) => boolean)(...args)));
    if (i < 0) return;
    const f = this.failures[i]!;
    if (--f.times <= 0) this.failures.splice(i, 1);
    throw sysErr(f.code, what);
  }

  /** @internal */
  ns(path: string, what: string): FakeNs {
    const n = this.namespaces.get(path);
    if (n === undefined) throw sysErr('ENOENT', `${what}: no netns ${path}`);
    return n;
  }

  /** @internal */
  info(n: FakeNs, l: FakeLink): LinkInfo {
    const info: LinkInfo = { index: l.index, name: l.name, mtu: l.mtu, mac: l.mac, up: l.up };
    if (l.master !== undefined) {
      const m = n.links.find((x) => x.name === l.master);
      if (m !== undefined) info.masterIndex = m.index;
    }
    if (l.kind !== undefined) info.kind = l.kind;
    return info;
  }

  /** @internal */
  routesOf(n: FakeNs): RouteInfo[] {
    const connected: RouteInfo[] = [];
    for (const a of n.addresses) {
      const l = n.links.find((x) => x.name === a.link);
      if (l === undefined || !l.up || l.name === 'lo') continue;
      const c = parseCidr(a.cidr);
      if (c.prefix === (c.family === 4 ? 32 : 128)) continue;
      const dst = `${network(c.ip, c.prefix)}/${c.prefix}`;
      if (!connected.some((r) => r.dst === dst && r.dev === a.link)) connected.push({ dst, dev: a.link, table: 254, family: c.family });
    }
    return [...connected, ...n.routes.map((r) => ({ ...r }))];
  }

  /** @internal */
  addLink(path: string, n: FakeNs, l: Omit<FakeLink, 'index' | 'id' | 'hairpin'>): FakeLink {
    const link: FakeLink = { ...l, index: n.nextIndex++, id: this.nextId++, hairpin: false };
    n.links.push(link);
    return link;
  }

  /** @internal */
  findById(id: number): { path: string; n: FakeNs; l: FakeLink } | undefined {
    for (const [path, n] of this.namespaces) {
      const l = n.links.find((x) => x.id === id);
      if (l !== undefined) return { path, n, l };
    }
    return undefined;
  }

  /** @internal Removes a link and everything hanging on it; a veth takes its peer along. */
  removeLink(path: string, l: FakeLink): void {
    const n = this.namespaces.get(path);
    if (n === undefined) return;
    this.detach(n, l);
    if (l.peerId !== undefined) {
      const p = this.findById(l.peerId);
      if (p !== undefined) this.detach(p.n, p.l);
    }
  }

  /** @internal */
  detach(n: FakeNs, l: FakeLink): void {
    n.links = n.links.filter((x) => x !== l);
    n.addresses = n.addresses.filter((a) => a.link !== l.name);
    n.routes = n.routes.filter((r) => r.dev !== l.name);
    for (const s of n.links) if (s.master === l.name) delete s.master;
  }
}

/** A Netlink bound to one namespace of a FakeNetworkKernel. */
export class RecordingNetlink implements Netlink {
  closed = false;

  constructor(
    readonly kernel: FakeNetworkKernel,
    readonly nsPath: string,
  ) {}

  /** Calls made through any socket of this kernel, in order. */
  get calls(): NetlinkCall[] {
    return this.kernel.calls;
  }

  private begin(method: NetlinkMethod, args: unknown[], what: string) {
    if (this.closed) throw new Error(`netlink ${what}: socket closed`);
    this.kernel.record(this.nsPath, method, args, what);
    return this.kernel.ns(this.nsPath, what);
  }

  private must(n: FakeNs, name: string, what: string): FakeLink {
    const l = n.links.find((x) => x.name === name);
    if (l === undefined) throw sysErr('ENODEV', `${what}: no link ${name}`);
    return l;
  }

  async links(): Promise<LinkInfo[]> {
    const n = this.begin('links', [], 'list links');
    return n.links.map((l) => this.kernel.info(n, l));
  }

  async link(name: string): Promise<LinkInfo | undefined> {
    const n = this.begin('link', [name], `get link ${name}`);
    const l = n.links.find((x) => x.name === name);
    return l === undefined ? undefined : this.kernel.info(n, l);
  }

  async createBridge(name: string, opts: { mtu?: number; mac?: string } = {}): Promise<void> {
    const what = `create bridge ${name}`;
    const n = this.begin('createBridge', [name, opts], what);
    if (n.links.some((l) => l.name === name)) throw sysErr('EEXIST', what);
    this.kernel.addLink(this.nsPath, n, { name, mtu: opts.mtu ?? 1500, mac: opts.mac ?? fakeMac(), up: false, kind: 'bridge' });
  }

  async createVeth(name: string, peer: string, opts: { mtu?: number; peerNetnsPath?: string; master?: string; peerMac?: string } = {}): Promise<void> {
    const what = `create veth ${name}${opts.master !== undefined ? ` on ${opts.master}` : ''}`;
    const n = this.begin('createVeth', [name, peer, opts], what);
    if (opts.master !== undefined) this.must(n, opts.master, what);
    const peerPath = opts.peerNetnsPath ?? this.nsPath;
    const pn = this.kernel.ns(peerPath, what);
    if (n.links.some((l) => l.name === name) || pn.links.some((l) => l.name === peer) || (peerPath === this.nsPath && name === peer)) throw sysErr('EEXIST', what);
    const mtu = opts.mtu ?? 1500;
    const a = this.kernel.addLink(this.nsPath, n, { name, mtu, mac: fakeMac(), up: false, kind: 'veth', ...(opts.master !== undefined ? { master: opts.master } : {}) });
    const b = this.kernel.addLink(peerPath, pn, { name: peer, mtu, mac: opts.peerMac ?? fakeMac(), up: false, kind: 'veth' });
    a.peerId = b.id;
    b.peerId = a.id;
  }

  async deleteLink(name: string): Promise<void> {
    const n = this.begin('deleteLink', [name], `delete link ${name}`);
    const l = n.links.find((x) => x.name === name);
    if (l !== undefined) this.kernel.removeLink(this.nsPath, l);
  }

  async setLink(name: string, change: LinkChange): Promise<void> {
    const parts = Object.entries(change)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v === null ? 'none' : String(v)}`);
    const what = `set link ${name} ${parts.join(' ')}`.trimEnd();
    const n = this.begin('setLink', [name, change], what);
    const l = this.must(n, name, what);
    if (typeof change.master === 'string') {
      const m = this.must(n, change.master, what);
      if (m.kind !== 'bridge') throw sysErr('EINVAL', what);
    }
    const target = change.netnsPath === undefined ? n : this.kernel.ns(change.netnsPath, what);
    const newName = change.name ?? l.name;
    if (target.links.some((x) => x !== l && x.name === newName)) throw sysErr('EEXIST', what);
    if (change.mac !== undefined && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(change.mac)) throw sysErr('EINVAL', what);
    if (target !== n) {
      // Moving drops addresses, routes and the master, as the kernel does.
      this.kernel.detach(n, l);
      delete l.master;
      l.hairpin = false;
      l.index = target.nextIndex++;
      target.links.push(l);
    } else if (newName !== l.name) {
      for (const a of n.addresses) if (a.link === l.name) a.link = newName;
      for (const r of n.routes) if (r.dev === l.name) r.dev = newName;
      for (const s of n.links) if (s.master === l.name) s.master = newName;
    }
    l.name = newName;
    if (change.mtu !== undefined) l.mtu = change.mtu;
    if (change.mac !== undefined) l.mac = change.mac.toLowerCase();
    if (change.master === null) delete l.master;
    else if (change.master !== undefined && target === n) l.master = change.master;
    if (change.up !== undefined) l.up = change.up;
  }

  async setHairpin(name: string, on: boolean): Promise<void> {
    const what = `set hairpin ${on ? 'on' : 'off'} on ${name}`;
    const n = this.begin('setHairpin', [name, on], what);
    const l = this.must(n, name, what);
    if (l.master === undefined) throw sysErr('EOPNOTSUPP', what);
    l.hairpin = on;
  }

  async addresses(name?: string): Promise<AddressInfo[]> {
    const n = this.begin('addresses', name === undefined ? [] : [name], 'list addresses');
    return n.addresses.filter((a) => name === undefined || a.link === name).map((a) => ({ ...a }));
  }

  async addAddress(name: string, cidr: string): Promise<void> {
    const what = `add address ${cidr} to ${name}`;
    const c = parseCidr(cidr);
    const n = this.begin('addAddress', [name, cidr], what);
    this.must(n, name, what);
    const norm = `${c.ip}/${c.prefix}`;
    if (n.addresses.some((a) => a.link === name && a.cidr === norm)) return;
    n.addresses.push({ link: name, cidr: norm, family: c.family });
  }

  async delAddress(name: string, cidr: string): Promise<void> {
    const c = parseCidr(cidr);
    const n = this.begin('delAddress', [name, cidr], `delete address ${cidr} from ${name}`);
    const norm = `${c.ip}/${c.prefix}`;
    n.addresses = n.addresses.filter((a) => !(a.link === name && a.cidr === norm));
  }

  async routes(family?: 4 | 6): Promise<RouteInfo[]> {
    const n = this.begin('routes', family === undefined ? [] : [family], 'list routes');
    return this.kernel.routesOf(n).filter((r) => family === undefined || r.family === family);
  }

  private normDst(r: RouteSpec): { dst: string; family: 4 | 6 } {
    if (r.dst === 'default') return { dst: 'default', family: r.gateway !== undefined ? ipFamily(r.gateway) : 4 };
    const c = parseCidr(r.dst);
    return { dst: `${network(c.ip, c.prefix)}/${c.prefix}`, family: c.family };
  }

  async addRoute(r: RouteSpec): Promise<void> {
    const what = `add route ${r.dst}${r.gateway !== undefined ? ` via ${r.gateway}` : ''}${r.dev !== undefined ? ` dev ${r.dev}` : ''}`;
    const n = this.begin('addRoute', [r], what);
    const { dst, family } = this.normDst(r);
    if (r.dev !== undefined) this.must(n, r.dev, what);
    let dev = r.dev;
    if (r.gateway !== undefined) {
      const via = this.kernel.routesOf(n).find((x) => x.gateway === undefined && x.dst !== 'default' && contains(x.dst, r.gateway!) && (r.dev === undefined || x.dev === r.dev));
      if (via === undefined) throw sysErr('ENETUNREACH', what);
      dev ??= via.dev;
    } else if (dev === undefined) {
      throw sysErr('EINVAL', what);
    }
    if (this.kernel.routesOf(n).some((x) => x.dst === dst && x.family === family)) throw sysErr('EEXIST', what);
    n.routes.push({ dst, ...(r.gateway !== undefined ? { gateway: r.gateway } : {}), ...(dev !== undefined ? { dev } : {}), table: 254, family });
  }

  async delRoute(r: RouteSpec): Promise<void> {
    const what = `delete route ${r.dst}${r.gateway !== undefined ? ` via ${r.gateway}` : ''}${r.dev !== undefined ? ` dev ${r.dev}` : ''}`;
    const n = this.begin('delRoute', [r], what);
    const { dst, family } = this.normDst(r);
    const i = n.routes.findIndex((x) => x.dst === dst && x.family === family && (r.gateway === undefined || x.gateway === r.gateway) && (r.dev === undefined || x.dev === r.dev));
    if (i >= 0) n.routes.splice(i, 1);
  }

  close(): void {
    this.closed = true;
  }
}

/** A fresh kernel's host-namespace Netlink (the kernel is `.kernel`). */
export function createFakeNetlink(): RecordingNetlink {
  return new FakeNetworkKernel().netlink();
}
