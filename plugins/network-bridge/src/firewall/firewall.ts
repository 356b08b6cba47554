import { BerthError, wrap } from '@berth/errors';
import type { Op } from '@berth/iptables';
import type { PortBinding } from '@berth/plugin-api';
import { startProxy as defaultStartProxy } from '../proxy.js';
import { boundSockets, isMissingFile, procFiles } from './proc.js';
import { PortAllocator, normalizeBindings, parsePortRange, type Allocation } from './ports.js';
import { addNetworkOps, baseOps, chainsOf, ownedRuleTexts, publishOps, removeNetworkOps, unpublishOps, type RuleMode } from './rules.js';
import { loadState, saveState, type EndpointRecord, type FirewallState } from './state.js';
import type { Firewall, FirewallDeps, FirewallNetwork, PortMapping } from './types.js';

const BRIDGE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const CIDR4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** Checks the network and writes its subnet as iptables prints it (host bits cleared). */
function checkNetwork(n: FirewallNetwork): FirewallNetwork {
  if (!BRIDGE_NAME.test(n.bridge)) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid bridge name ${JSON.stringify(n.bridge)}`);
  const m = CIDR4.exec(n.subnet);
  const c = m ? parseCidr(n.subnet) : undefined;
  if (!m || c === undefined) throw new BerthError('BERTH_INVALID_ARGUMENT', `invalid IPv4 subnet ${JSON.stringify(n.subnet)}`);
  const [net] = c;
  const subnet = `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${m[5]}`;
  return subnet === n.subnet ? n : { ...n, subnet };
}

/** Same rules: the fields the rules depend on (key order of stored JSON does not matter). */
function sameNetwork(a: FirewallNetwork, b: FirewallNetwork): boolean {
  return a.bridge === b.bridge && a.subnet === b.subnet && a.internal === b.internal && a.icc === b.icc && a.masquerade === b.masquerade;
}

function mappingKey(ms: readonly PortMapping[]): string {
  return ms.map((m) => `${m.proto} ${m.hostIp} ${m.hostPort} ${m.hostPortEnd} ${m.containerIp} ${m.containerPort} ${m.containerPortEnd}`).join(',');
}

function ipToInt(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}

/** [network, mask] as unsigned 32-bit numbers. */
function parseCidr(cidr: string): [number, number] | undefined {
  const [ip, len] = cidr.split('/');
  const n = ipToInt(ip ?? '');
  const l = Number(len);
  if (n === undefined || !Number.isInteger(l) || l < 0 || l > 32) return undefined;
  const mask = l === 0 ? 0 : (0xffffffff << (32 - l)) >>> 0;
  return [(n & mask) >>> 0, mask];
}

function allocationsOf(owner: string, mappings: readonly PortMapping[]): Allocation[] {
  return mappings.map((m) => ({ proto: m.proto, hostIp: m.hostIp, start: m.hostPort, end: m.hostPortEnd, owner }));
}

/**
 * The bridge driver's iptables: Docker v27's layout under a chain prefix, one restore payload
 * per operation, host ports allocated here (Berth's own and other programs' sockets).
 */
export function createFirewall(deps: FirewallDeps): Firewall {
  const prefix = deps.chainPrefix ?? 'BERTH';
  if (!/^[A-Za-z0-9_]+(-[A-Za-z0-9_]+)*$/.test(prefix) || prefix.length > 10) {
    throw new BerthError('BERTH_INVALID_ARGUMENT', `chain prefix ${JSON.stringify(prefix)}: letters, digits, - and _, at most 10 characters`);
  }
  const mode: RuleMode = { chains: chainsOf(prefix), userlandProxy: deps.userlandProxy === true };
  const ipt = deps.iptables;
  const log = deps.logger;
  const proc = deps.proc ?? procFiles();
  const state: FirewallState = loadState(deps.stateDir);
  const ports = new PortAllocator(async () => parsePortRange(await proc.read('/proc/sys/net/ipv4/ip_local_port_range').catch(() => '')));
  ports.set(Object.entries(state.endpoints).flatMap(([id, e]) => allocationsOf(id, e.mappings)));
  type ProxyHandle = { close(): Promise<void> };
  const proxies = new Map<string, ProxyHandle[]>();
  const startProxy = deps.startProxy ?? defaultStartProxy;

  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => undefined);
    return p;
  };
  const save = (): void => saveState(deps.stateDir, state);

  async function routeLocalnet(n: FirewallNetwork): Promise<void> {
    // DNAT of 127.0.0.1 to the bridge: the kernel drops loopback-sourced packets leaving a
    // non-loopback device unless route_localnet is on for it (the device's own flag is enough)
    if (n.internal || mode.userlandProxy) return;
    try {
      await proc.write(`/proc/sys/net/ipv4/conf/${n.bridge}/route_localnet`, '1');
    } catch (err) {
      if (!isMissingFile(err)) throw wrap(err, `set route_localnet on ${n.bridge}`);
      log.warn({ bridge: n.bridge }, 'bridge not there: route_localnet not set, 127.0.0.1 will not reach its published ports');
    }
  }

  async function stopProxies(endpointId: string): Promise<void> {
    const list = proxies.get(endpointId);
    proxies.delete(endpointId);
    if (list) await Promise.all(list.map((p) => p.close()));
  }

  async function startProxies(endpointId: string, mappings: readonly PortMapping[]): Promise<void> {
    if (!mode.userlandProxy) return;
    const started: ProxyHandle[] = [];
    try {
      for (const m of mappings) {
        if (m.proto === 'sctp') continue;
        started.push(await startProxy(m, log));
      }
    } catch (err) {
      await Promise.all(started.map((p) => p.close()));
      throw err;
    }
    proxies.set(endpointId, started);
  }

  const fw: Firewall = {
    init() {
      return serial(async () => {
        const ops: Op[] = [];
        const fwd = (await proc.read('/proc/sys/net/ipv4/ip_forward')).trim();
        if (fwd !== '1') {
          await proc.write('/proc/sys/net/ipv4/ip_forward', '1');
          // as dockerd: forwarding we switched on is not left open to everything
          ops.push({ op: 'policy', table: 'filter', chain: 'FORWARD', policy: 'DROP' });
          log.info({}, 'ip_forward enabled, FORWARD policy set to DROP');
        }
        await ipt.apply([...baseOps(mode), ...ops]);
      });
    },

    addNetwork(given) {
      return serial(async () => {
        const n = checkNetwork(given);
        state.networks[n.id] = { ...n };
        save();
        try {
          // base chains too: the network works even if init ran before someone flushed them
          await ipt.apply([...baseOps(mode).filter((o) => !(o.op === 'insert' && o.move)), ...addNetworkOps(n, mode)]);
        } catch (err) {
          throw wrap(err, `iptables rules of network ${n.id} (${n.bridge})`);
        }
        await routeLocalnet(n);
      });
    },

    removeNetwork(given) {
      return serial(async () => {
        const n = CIDR4.test(given.subnet) ? checkNetwork(given) : given;
        const ops: Op[] = [];
        const gone: string[] = [];
        for (const [id, e] of Object.entries(state.endpoints)) {
          if (e.network.id !== n.id) continue;
          ops.push(...unpublishOps(e.network, e.mappings, mode));
          gone.push(id);
        }
        ops.push(...removeNetworkOps(state.networks[n.id] ?? n, mode));
        if (state.networks[n.id] && state.networks[n.id]!.bridge !== n.bridge) ops.push(...removeNetworkOps(n, mode));
        try {
          await ipt.apply(ops);
        } catch (err) {
          throw wrap(err, `remove iptables rules of network ${n.id} (${n.bridge})`);
        }
        for (const id of gone) {
          await stopProxies(id);
          ports.release(id);
          delete state.endpoints[id];
        }
        delete state.networks[n.id];
        save();
      });
    },

    publish(given, endpointId, containerIp, bindings: PortBinding[]) {
      return serial(async () => {
        const n = CIDR4.test(given.subnet) ? checkNetwork(given) : given;
        const { requests, skipped } = normalizeBindings(bindings, n.hostIp);
        if (skipped.length > 0) log.warn({ endpointId, skipped: skipped.length }, 'IPv6 host addresses in port bindings are not published (no ip6tables rules)');
        const previous = state.endpoints[endpointId];
        if (n.internal || requests.length === 0) {
          if (previous) await unpublishLocked(endpointId);
          return [];
        }
        // a second publish for the endpoint replaces the first (its proxies close first, or
        // their sockets would count as another program's)
        if (previous) {
          ports.release(endpointId);
          await stopProxies(endpointId);
        }
        let mappings: PortMapping[];
        try {
          mappings = await ports.allocate(endpointId, containerIp, requests, await boundSockets(proc));
        } catch (err) {
          if (previous) {
            ports.set([...ports.list(), ...allocationsOf(endpointId, previous.mappings)]);
            await startProxies(endpointId, previous.mappings).catch((e: unknown) => log.warn({ err: e, endpointId }, 'userland proxy not restarted'));
          }
          throw err;
        }
        const record: EndpointRecord = { network: { ...n }, containerIp, mappings };
        state.endpoints[endpointId] = record;
        if (previous) state.endpoints[endpointId] = { ...record, mappings: [...previous.mappings, ...mappings] }; // both until the swap is done
        save();
        const ops = [...(previous ? unpublishOps(previous.network, previous.mappings, mode, false) : []), ...publishOps(n, mappings, mode)];
        try {
          // the endpoint's rules are known (recorded): one restore, no reads (bench/network)
          await ipt.apply(ops, { optimistic: true });
          await startProxies(endpointId, mappings);
        } catch (err) {
          ports.release(endpointId);
          const warn = (e: unknown): void => log.warn({ err: e, endpointId }, 'rollback of published ports failed');
          await ipt.apply(unpublishOps(n, mappings, mode)).catch(warn);
          if (previous) {
            await ipt.apply(publishOps(previous.network, previous.mappings, mode)).catch(warn);
            ports.set([...ports.list(), ...allocationsOf(endpointId, previous.mappings)]);
            state.endpoints[endpointId] = previous;
            await startProxies(endpointId, previous.mappings).catch(warn);
          } else delete state.endpoints[endpointId];
          save();
          throw wrap(err, `publish ports of endpoint ${endpointId}`);
        }
        state.endpoints[endpointId] = record;
        save();
        log.debug({ endpointId, mappings: mappings.length }, 'ports published');
        return mappings.map((m) => ({ ...m }));
      });
    },

    unpublish(_n, endpointId) {
      return serial(() => unpublishLocked(endpointId));
    },

    published(endpointId) {
      return (state.endpoints[endpointId]?.mappings ?? []).map((m) => ({ ...m }));
    },

    reconcile(givenNetworks, endpoints) {
      return serial(async () => {
        const networks = givenNetworks.map(checkNetwork);
        const keepNet = new Map(networks.map((n) => [n.id, n]));
        const keepEp = new Map(endpoints.map((e) => [e.endpointId, e]));
        const ops: Op[] = [];
        for (const [id, e] of Object.entries(state.endpoints)) {
          const kept = keepEp.get(id);
          if (!kept || mappingKey(kept.mappings) !== mappingKey(e.mappings) || !sameNetwork(keepNet.get(kept.networkId) ?? e.network, e.network)) ops.push(...unpublishOps(e.network, e.mappings, mode));
        }
        for (const [id, n] of Object.entries(state.networks)) {
          const kept = keepNet.get(id);
          if (!kept || !sameNetwork(kept, n)) ops.push(...removeNetworkOps(n, mode));
        }
        const eps = endpoints.map((e) => {
          const network = keepNet.get(e.networkId) ?? state.networks[e.networkId] ?? state.endpoints[e.endpointId]?.network;
          if (!network) throw new BerthError('BERTH_INVALID_ARGUMENT', `reconcile: endpoint ${e.endpointId} names unknown network ${e.networkId}`);
          return { id: e.endpointId, network, containerIp: e.containerIp, mappings: e.mappings };
        });
        // rules in our own chains that nothing kept accounts for but that name one of our
        // bridges or an address of our subnets (state lost or edited by hand). Rules about
        // other bridges and subnets are left alone: another daemon may share the prefix.
        const owned = ownedRuleTexts(networks, eps, mode);
        const mine = [...networks, ...Object.values(state.networks), ...Object.values(state.endpoints).map((e) => e.network)];
        const bridges = new Set(mine.map((n) => n.bridge));
        const subnets = mine.map((n) => parseCidr(n.subnet)).filter((c): c is [number, number] => c !== undefined);
        const ours = (args: string[]): boolean =>
          args.some((a) => {
            if (bridges.has(a)) return true;
            const ip = ipToInt(a.replace(/\/32$/, '').replace(/:[\d-/]+$/, ''));
            return ip !== undefined && subnets.some(([net, mask]) => (ip & mask) >>> 0 === net);
          });
        for (const table of ['nat', 'filter'] as const) {
          for (const line of await ipt.list(table)) {
            const m = /^-A (\S+) (.*)$/.exec(line);
            if (!m) continue;
            const [, chain, rest] = m as unknown as [string, string, string];
            if (![mode.chains.main, mode.chains.iso1, mode.chains.iso2].includes(chain) || owned[table].has(`${chain} ${rest}`)) continue;
            const args = rest.split(' ');
            if (ours(args)) ops.push({ op: 'delete', table, chain, args });
          }
        }
        ops.push(...baseOps(mode));
        for (const n of networks) ops.push(...addNetworkOps(n, mode));
        for (const e of eps) ops.push(...publishOps(e.network, e.mappings, mode));
        for (const id of Object.keys(state.endpoints)) if (!keepEp.has(id)) await stopProxies(id);
        await ipt.apply(ops);
        state.networks = Object.fromEntries(networks.map((n) => [n.id, { ...n }]));
        state.endpoints = Object.fromEntries(eps.map((e) => [e.id, { network: { ...e.network }, containerIp: e.containerIp, mappings: e.mappings.map((m) => ({ ...m })) }]));
        ports.set(eps.flatMap((e) => allocationsOf(e.id, e.mappings)));
        save();
        for (const n of networks) await routeLocalnet(n);
        for (const e of eps) if (!proxies.has(e.id)) await startProxies(e.id, e.mappings).catch((err: unknown) => log.warn({ err, endpointId: e.id }, 'userland proxy not started'));
      });
    },
  };

  async function unpublishLocked(endpointId: string): Promise<void> {
    const e = state.endpoints[endpointId];
    if (!e) return;
    await stopProxies(endpointId);
    try {
      await ipt.apply(unpublishOps(e.network, e.mappings, mode, false), { optimistic: true });
    } catch (err) {
      throw wrap(err, `unpublish ports of endpoint ${endpointId}`);
    }
    ports.release(endpointId);
    delete state.endpoints[endpointId];
    save();
  }

  return fw;
}
