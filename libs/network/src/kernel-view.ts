/**
 * What a container's network looks like in the kernel, read back from it (not from the
 * controller's records): the interfaces, addresses and routes inside its namespace, the host
 * end of each veth and the bridge it is on, and the iptables rules that name its addresses.
 * For `berth container kernel` (the engine's kernel view).
 */
import type { KernelInterface, KernelNetworkView } from '@berth/api';
import type { Iptables } from '@berth/iptables';
import type { Netlink } from '@berth/netlink';

/** Reads the view; `inside` is a netlink socket in the container's namespace, `host` one in the daemon's. */
export async function readKernelNetwork(namespace: string, inside: Netlink, host: Netlink, iptables: Iptables | undefined): Promise<KernelNetworkView> {
  // One dump at a time: a netlink socket answers a dump in parts that must not interleave.
  const links = await inside.links();
  const addrs = await inside.addresses();
  const routes4 = await inside.routes(4);
  const routes6 = await inside.routes(6);
  const hostLinks = links.some((l) => l.kind === 'veth' && l.peerIndex !== undefined) ? await host.links() : [];
  const byIndex = new Map(hostLinks.map((l) => [l.index, l]));
  const interfaces = links.map((l): KernelInterface => {
    const i: KernelInterface = {
      Name: l.name, Index: l.index, Kind: l.kind ?? (l.name === 'lo' ? 'loopback' : ''), Mac: l.mac, Mtu: l.mtu, Up: l.up,
      Addresses: addrs.filter((a) => a.link === l.name).map((a) => a.cidr),
    };
    const peer = l.kind === 'veth' && l.peerIndex !== undefined ? byIndex.get(l.peerIndex) : undefined;
    if (peer && peer.kind === 'veth') i.HostPeer = { Name: peer.name, Index: peer.index, Bridge: peer.masterIndex === undefined ? '' : byIndex.get(peer.masterIndex)?.name ?? '' };
    return i;
  });
  const ips = interfaces.filter((i) => i.Name !== 'lo').flatMap((i) => i.Addresses.map((a) => a.replace(/\/\d+$/, '')));
  const rules: KernelNetworkView['Iptables'] = [];
  if (iptables && ips.length > 0) {
    // An address as a word of the rule (-d 172.18.0.2/32, --to-destination 172.18.0.2:80), not a prefix of another one.
    const named = (rule: string): boolean => ips.some((ip) => new RegExp(`(^|[\\s=])${ip.replace(/[.:]/g, '\\$&')}([/:\\s]|$)`).test(rule));
    for (const table of ['nat', 'filter'] as const) for (const rule of await iptables.list(table)) if (named(rule)) rules.push({ Table: table, Rule: rule });
  }
  return {
    Namespace: namespace,
    Interfaces: interfaces,
    Routes: [...routes4, ...routes6].map((r) => ({ Dst: r.dst, Gateway: r.gateway ?? '', Dev: r.dev ?? '', Family: r.family })),
    Iptables: rules,
  };
}
