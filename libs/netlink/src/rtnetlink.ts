import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import type * as NL from 'netlink';
import { SystemError, wrap } from '@berth/errors';
import { bytesToIp, bytesToMac, ipFamily, ipToBytes, macToBytes, parseCidr } from './ip.js';
import type { AddressInfo, LinkChange, LinkInfo, Netlink, RouteInfo, RouteSpec } from './types.js';

type AddressMessage = NL.rt.AddressMessage;
type LinkMessage = NL.rt.LinkMessage;
type RouteMessage = NL.rt.RouteMessage;
type RtNetlinkSocket = NL.RtNetlinkSocket;

// The package's index also loads its nl80211, genl and wireguard tables (~0.5 MiB of heap, ~1 MiB
// of a daemon's RSS): take only the rtnetlink parts (the package has no "exports" map).
const require = createRequire(import.meta.url);
const { createRtNetlink } = require('netlink/dist/rt/rt') as typeof NL;
const rt = require('netlink/dist/rt/structs') as typeof NL.rt;
const ifla = require('netlink/dist/rt/ifla') as typeof NL.ifla;
const { FlagsNew } = require('netlink/dist/constants') as typeof NL;
const { AttrStream, formatAttribute } = require('netlink/dist/structs') as typeof NL;

/** iproute2 sets NLM_F_CREATE|NLM_F_EXCL for every "add"; the library sets neither by default. */
const CREATE_EXCL = FlagsNew.CREATE | FlagsNew.EXCL;
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_HOST = 254;
const RT_SCOPE_NOWHERE = 255;
/** IFLA_INFO_DATA of a veth: VETH_INFO_PEER = struct ifinfomsg + the peer's link attributes. */
const VETH_INFO_PEER = 1;

type StreamData = Parameters<InstanceType<typeof AttrStream>['emit']>[0];
function encode(sd: StreamData): Buffer {
  const s = new AttrStream();
  s.emit(sd);
  return Buffer.concat(s.bufs);
}

/** The library rejects with a bare `Request rejected: EEXIST`; keep the errno, name the operation. */
export function netlinkError(err: unknown, what: string): Error {
  const m = err instanceof Error ? /Request rejected: (\w+)/.exec(err.message) : null;
  if (m !== null) {
    const code = m[1]!;
    const errno = (osConstants.errno as Record<string, number>)[code] ?? (Number(code) || 0);
    return new SystemError({ errno, code, syscall: what }, { cause: err });
  }
  if (err instanceof SystemError) return new SystemError({ errno: err.errno, code: err.code, syscall: `${what}: ${err.syscall}`, path: err.path }, { cause: err });
  return wrap(err, what);
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof SystemError ? err.code : undefined;
}

function notFound(what: string): SystemError {
  return new SystemError({ errno: osConstants.errno.ENODEV, code: 'ENODEV', syscall: what });
}

function toLinkInfo(m: LinkMessage): LinkInfo {
  const info: LinkInfo = {
    index: m.data.index ?? 0,
    name: m.attrs.ifname ?? '',
    mtu: m.attrs.mtu ?? 0,
    mac: bytesToMac(m.attrs.address),
    up: m.data.flags?.up === true,
  };
  if (m.attrs.master !== undefined && m.attrs.master !== 0) info.masterIndex = m.attrs.master;
  const peer = m.attrs.link !== undefined && m.attrs.link.length >= 4 ? m.attrs.link.readUInt32LE(0) : 0;
  if (peer !== 0 && peer !== info.index) info.peerIndex = peer;
  if (m.attrs.linkinfo !== undefined) {
    const kind = ifla.parseInfo(m.attrs.linkinfo).kind;
    if (kind !== undefined && kind !== '') info.kind = kind;
  }
  return info;
}

function withNsFd<T>(path: string | undefined, what: string, fn: (fd: number | undefined) => Promise<T>): Promise<T> {
  if (path === undefined) return fn(undefined);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return Promise.reject(new SystemError({ errno: Math.abs(e.errno ?? 0), code: e.code ?? 'EIO', syscall: what, path }, { cause: err }));
  }
  return fn(fd).finally(() => closeSync(fd));
}

class RtNetlink implements Netlink {
  constructor(private readonly sock: RtNetlinkSocket) {}

  private async lookup(name: string): Promise<LinkMessage | undefined> {
    // IFNAMSIZ: a longer name cannot exist (the kernel would answer EINVAL).
    if (name === '' || Buffer.byteLength(name) > 15) return undefined;
    try {
      const [m] = await this.sock.getLink({}, { ifname: name });
      return m;
    } catch (err) {
      const e = netlinkError(err, `get link ${name}`);
      if (errnoOf(e) === 'ENODEV') return undefined;
      throw e;
    }
  }

  private async indexOf(name: string, what: string): Promise<number> {
    const m = await this.lookup(name);
    if (m?.data.index === undefined) throw notFound(`${what}: no link ${name}`);
    return m.data.index;
  }

  async links(): Promise<LinkInfo[]> {
    try {
      return (await this.sock.getLinks()).map(toLinkInfo);
    } catch (err) {
      throw netlinkError(err, 'list links');
    }
  }

  async link(name: string): Promise<LinkInfo | undefined> {
    const m = await this.lookup(name);
    return m === undefined ? undefined : toLinkInfo(m);
  }

  async createBridge(name: string, opts: { mtu?: number; mac?: string } = {}): Promise<void> {
    const what = `create bridge ${name}`;
    try {
      await this.sock.newLink(
        {},
        {
          ifname: name,
          ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
          ...(opts.mac !== undefined ? { address: macToBytes(opts.mac) } : {}),
          linkinfo: encode(ifla.formatInfo({ kind: 'bridge' })),
        },
        { flags: CREATE_EXCL },
      );
    } catch (err) {
      throw netlinkError(err, what);
    }
  }

  async createVeth(name: string, peer: string, opts: { mtu?: number; peerNetnsPath?: string; master?: string; peerMac?: string } = {}): Promise<void> {
    const what = `create veth ${name}${opts.master !== undefined ? ` on ${opts.master}` : ''}`;
    const master = opts.master === undefined ? undefined : await this.indexOf(opts.master, what);
    await withNsFd(opts.peerNetnsPath, what, async (fd) => {
      const mtu = opts.mtu !== undefined ? { mtu: opts.mtu } : {};
      const peerMsg = Buffer.concat([rt.formatLink({}), encode(ifla.formatLinkAttrs({ ifname: peer, ...mtu, ...(opts.peerMac !== undefined ? { address: macToBytes(opts.peerMac) } : {}), ...(fd !== undefined ? { netNsFd: fd } : {}) }))]);
      const data = encode(formatAttribute({ type: VETH_INFO_PEER, data: peerMsg }));
      try {
        await this.sock.newLink(
          {},
          { ifname: name, ...mtu, ...(master !== undefined ? { master } : {}), linkinfo: encode(ifla.formatInfo({ kind: 'veth', data })) },
          { flags: CREATE_EXCL },
        );
      } catch (err) {
        throw netlinkError(err, what);
      }
    });
  }

  async deleteLink(name: string): Promise<void> {
    const m = await this.lookup(name);
    if (m?.data.index === undefined) return;
    try {
      await this.sock.delLink({ index: m.data.index });
    } catch (err) {
      const e = netlinkError(err, `delete link ${name}`);
      if (errnoOf(e) === 'ENODEV') return; // gone meanwhile (the peer of a deleted veth)
      throw e;
    }
  }

  async setLink(name: string, change: LinkChange): Promise<void> {
    const parts = Object.entries(change)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v === null ? 'none' : String(v)}`);
    const what = `set link ${name} ${parts.join(' ')}`.trimEnd();
    const index = await this.indexOf(name, what);
    const master = change.master === undefined ? undefined : change.master === null ? 0 : await this.indexOf(change.master, what);
    await withNsFd(change.netnsPath, what, async (fd) => {
      const attrs = {
        ...(change.name !== undefined ? { ifname: change.name } : {}),
        ...(change.mtu !== undefined ? { mtu: change.mtu } : {}),
        ...(change.mac !== undefined ? { address: macToBytes(change.mac) } : {}),
        ...(master !== undefined ? { master } : {}),
        ...(fd !== undefined ? { netNsFd: fd } : {}),
      };
      const data = change.up === undefined ? { index } : { index, flags: change.up ? { up: true as const } : {}, change: { up: true as const } };
      try {
        await this.sock.setLink(data, attrs);
      } catch (err) {
        throw netlinkError(err, what);
      }
    });
  }

  async setHairpin(name: string, on: boolean): Promise<void> {
    const what = `set hairpin ${on ? 'on' : 'off'} on ${name}`;
    const index = await this.indexOf(name, what);
    // `ip link set X type bridge_slave hairpin on`: RTM_NEWLINK on the existing link with
    // IFLA_INFO_SLAVE_DATA { IFLA_BRPORT_MODE }. Works in any namespace the socket is in,
    // unlike /sys/class/net, which shows the namespace sysfs was mounted from.
    const linkinfo = encode(ifla.formatInfo({ slaveKind: 'bridge', slaveData: encode(ifla.formatBridgePort({ mode: on ? 1 : 0 })) }));
    try {
      await this.sock.newLink({ index }, { linkinfo });
    } catch (err) {
      throw netlinkError(err, what);
    }
  }

  private async names(): Promise<Map<number, string>> {
    return new Map((await this.links()).map((l) => [l.index, l.name]));
  }

  async addresses(name?: string): Promise<AddressInfo[]> {
    const names = await this.names();
    let msgs: AddressMessage[];
    try {
      msgs = await this.sock.getAddresses();
    } catch (err) {
      throw netlinkError(err, 'list addresses');
    }
    const out: AddressInfo[] = [];
    for (const m of msgs) {
      const link = names.get(m.data.index ?? -1) ?? '';
      if (name !== undefined && link !== name) continue;
      const raw = m.data.family === AF_INET ? (m.attrs.local ?? m.attrs.address) : (m.attrs.address ?? m.attrs.local);
      if (raw === undefined) continue;
      out.push({ link, cidr: `${bytesToIp(raw)}/${m.data.prefixlen ?? 0}`, family: m.data.family === AF_INET ? 4 : 6 });
    }
    return out;
  }

  async addAddress(name: string, cidr: string): Promise<void> {
    const what = `add address ${cidr} to ${name}`;
    const c = parseCidr(cidr);
    const index = await this.indexOf(name, what);
    const ip = ipToBytes(c.ip);
    try {
      await this.sock.newAddress(
        {
          family: c.family === 4 ? AF_INET : AF_INET6,
          prefixlen: c.prefix,
          index,
          // iproute2 gives 127/8 host scope; with universe scope the kernel refuses it once lo is up.
          scope: c.family === 4 && ip[0] === 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE,
          ...(c.family === 6 ? { flags: { nodad: true as const } } : {}),
        },
        { local: ip, address: ip },
        { flags: CREATE_EXCL },
      );
    } catch (err) {
      const e = netlinkError(err, what);
      if (errnoOf(e) === 'EEXIST') return;
      throw e;
    }
  }

  async delAddress(name: string, cidr: string): Promise<void> {
    const what = `delete address ${cidr} from ${name}`;
    const c = parseCidr(cidr);
    const m = await this.lookup(name);
    if (m?.data.index === undefined) return;
    const ip = ipToBytes(c.ip);
    try {
      await this.sock.delAddress({ family: c.family === 4 ? AF_INET : AF_INET6, prefixlen: c.prefix, index: m.data.index }, { local: ip, address: ip });
    } catch (err) {
      const e = netlinkError(err, what);
      if (errnoOf(e) === 'EADDRNOTAVAIL' || errnoOf(e) === 'ENODEV') return;
      throw e;
    }
  }

  async routes(family?: 4 | 6): Promise<RouteInfo[]> {
    const names = await this.names();
    let msgs: RouteMessage[];
    try {
      msgs = await this.sock.getRoutes(family === undefined ? {} : { family: family === 4 ? AF_INET : AF_INET6 });
    } catch (err) {
      throw netlinkError(err, 'list routes');
    }
    const out: RouteInfo[] = [];
    for (const m of msgs) {
      const table = m.attrs.table ?? m.data.table ?? 0;
      if (table !== RT_TABLE_MAIN) continue;
      if (m.data.type !== undefined && m.data.type !== 'UNICAST' && m.data.type !== 1) continue;
      const fam = m.data.family === AF_INET ? 4 : m.data.family === AF_INET6 ? 6 : undefined;
      if (fam === undefined || (family !== undefined && fam !== family)) continue;
      const dstLen = m.data.dstLen ?? 0;
      const r: RouteInfo = {
        dst: dstLen === 0 ? 'default' : `${m.attrs.dst !== undefined ? bytesToIp(m.attrs.dst) : fam === 4 ? '0.0.0.0' : '::'}/${dstLen}`,
        table,
        family: fam,
      };
      if (m.attrs.gateway !== undefined) r.gateway = bytesToIp(m.attrs.gateway);
      if (m.attrs.oif !== undefined) {
        const dev = names.get(m.attrs.oif);
        if (dev !== undefined) r.dev = dev;
      }
      out.push(r);
    }
    return out;
  }

  private async routeMessage(r: RouteSpec, what: string, del: boolean) {
    let family: 4 | 6;
    let dstLen: number;
    let dst: Buffer | undefined;
    if (r.dst === 'default') {
      family = r.gateway !== undefined ? ipFamily(r.gateway) : 4;
      dstLen = 0;
    } else {
      const c = parseCidr(r.dst);
      family = c.family;
      dstLen = c.prefix;
      dst = ipToBytes(c.ip);
    }
    const oif = r.dev === undefined ? undefined : del ? (await this.lookup(r.dev))?.data.index : await this.indexOf(r.dev, what);
    if (del && r.dev !== undefined && oif === undefined) return undefined;
    const data = {
      family: family === 4 ? AF_INET : AF_INET6,
      dstLen,
      table: RT_TABLE_MAIN,
      // A delete matches any protocol, scope and type.
      ...(del
        ? { scope: RT_SCOPE_NOWHERE }
        : { protocol: 'BOOT' as const, scope: r.gateway !== undefined ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK, type: 'UNICAST' as const }),
    };
    const attrs = {
      ...(dst !== undefined ? { dst } : {}),
      ...(r.gateway !== undefined ? { gateway: ipToBytes(r.gateway) } : {}),
      ...(oif !== undefined ? { oif } : {}),
    };
    return { data, attrs };
  }

  async addRoute(r: RouteSpec): Promise<void> {
    const what = `add route ${r.dst}${r.gateway !== undefined ? ` via ${r.gateway}` : ''}${r.dev !== undefined ? ` dev ${r.dev}` : ''}`;
    const msg = (await this.routeMessage(r, what, false))!;
    try {
      await this.sock.newRoute(msg.data, msg.attrs, { flags: CREATE_EXCL });
    } catch (err) {
      throw netlinkError(err, what);
    }
  }

  async delRoute(r: RouteSpec): Promise<void> {
    const what = `delete route ${r.dst}${r.gateway !== undefined ? ` via ${r.gateway}` : ''}${r.dev !== undefined ? ` dev ${r.dev}` : ''}`;
    const msg = await this.routeMessage(r, what, true);
    if (msg === undefined) return;
    try {
      await this.sock.delRoute(msg.data, msg.attrs);
    } catch (err) {
      const e = netlinkError(err, what);
      if (errnoOf(e) === 'ESRCH' || errnoOf(e) === 'ENODEV') return;
      throw e;
    }
  }

  close(): void {
    this.sock.socket.close();
  }
}

/** rtnetlink in the daemon's own network namespace. */
export function openNetlink(): Netlink {
  return new RtNetlink(createRtNetlink());
}

/** Runs `fn` synchronously with the calling thread in the network namespace at a path (@berth/native's inNetns). */
export type EnterNetns = <T>(netnsPath: string, fn: () => T) => T;

/**
 * rtnetlink inside the namespace bind-mounted at netnsPath: the socket is created while `enter`
 * holds the main thread in that namespace, and stays bound there for its whole life. `enter` is
 * given by the caller (@berth/native's inNetns), so this adapter needs no other adapter.
 */
export function openNetlinkIn(netnsPath: string, enter: EnterNetns): Netlink {
  return new RtNetlink(enter(netnsPath, () => createRtNetlink()));
}
