import type { Op } from '@berth/iptables';
import type { FirewallNetwork, PortMapping } from './types.js';

/**
 * The rule layout of Docker v27's bridge driver (specs/cnm-design.md §5) with DOCKER renamed
 * to the chain prefix. Every rule is written in the order `iptables -S` prints it, so one
 * `-S` read tells whether it is there. Pure functions: ops in, no I/O.
 */
export interface Chains {
  /** nat and filter chain of the published ports. */
  main: string;
  user: string;
  iso1: string;
  iso2: string;
}

export function chainsOf(prefix: string): Chains {
  return { main: prefix, user: `${prefix}-USER`, iso1: `${prefix}-ISOLATION-STAGE-1`, iso2: `${prefix}-ISOLATION-STAGE-2` };
}

export interface RuleMode {
  chains: Chains;
  userlandProxy: boolean;
}

const LOCAL_DST = ['-m', 'addrtype', '--dst-type', 'LOCAL'];

function outputJump(m: RuleMode, proxy: boolean): string[] {
  // with the userland proxy, loopback traffic goes to the proxy; without it, DNAT in OUTPUT
  return proxy ? ['!', '-d', '127.0.0.0/8', ...LOCAL_DST, '-j', m.chains.main] : [...LOCAL_DST, '-j', m.chains.main];
}

/**
 * FORWARD starts with BERTH-USER, then the isolation jump (Docker re-inserts its own pair the
 * same way after each network). Moved only when not already there.
 */
function jumpsToTop(m: RuleMode): Op[] {
  return [
    { op: 'insert', table: 'filter', chain: 'FORWARD', args: ['-j', m.chains.user], move: true, position: 1, probe: false },
    { op: 'insert', table: 'filter', chain: 'FORWARD', args: ['-j', m.chains.iso1], move: true, position: 2, probe: false },
  ];
}

/** init: chains, their RETURN ends, jumps from PREROUTING/OUTPUT/FORWARD. */
export function baseOps(m: RuleMode): Op[] {
  const c = m.chains;
  return [
    { op: 'ensureChain', table: 'nat', chain: c.main },
    { op: 'append', table: 'nat', chain: 'PREROUTING', args: [...LOCAL_DST, '-j', c.main] },
    // the other mode's OUTPUT jump goes when the mode changed between runs
    { op: 'delete', table: 'nat', chain: 'OUTPUT', args: outputJump(m, !m.userlandProxy), probe: false },
    { op: 'append', table: 'nat', chain: 'OUTPUT', args: outputJump(m, m.userlandProxy) },
    { op: 'ensureChain', table: 'filter', chain: c.main },
    { op: 'ensureChain', table: 'filter', chain: c.iso1 },
    { op: 'ensureChain', table: 'filter', chain: c.iso2 },
    { op: 'ensureChain', table: 'filter', chain: c.user },
    { op: 'append', table: 'filter', chain: c.iso1, args: ['-j', 'RETURN'] },
    { op: 'append', table: 'filter', chain: c.iso2, args: ['-j', 'RETURN'] },
    { op: 'append', table: 'filter', chain: c.user, args: ['-j', 'RETURN'] },
    ...jumpsToTop(m),
  ];
}

function iccRule(n: FirewallNetwork, icc: boolean): string[] {
  return ['-i', n.bridge, '-o', n.bridge, '-j', icc ? 'ACCEPT' : 'DROP'];
}

/**
 * The rules of one network, each as [table, chain, args, position hint]. Filter FORWARD rules
 * are listed bottom-up: each is inserted at the top, so the last listed ends first
 * (conntrack, -o B -j BERTH, outbound, icc), as Docker orders them.
 */
function networkRules(n: FirewallNetwork, m: RuleMode): { table: 'nat' | 'filter'; chain: string; args: string[]; insert: boolean }[] {
  const c = m.chains;
  const B = n.bridge;
  const S = n.subnet;
  if (n.internal) {
    return [
      { table: 'filter', chain: 'FORWARD', args: iccRule(n, n.icc), insert: true },
      { table: 'filter', chain: c.iso1, args: ['!', '-d', S, '-i', B, '-j', 'DROP'], insert: true },
      { table: 'filter', chain: c.iso1, args: ['!', '-s', S, '-o', B, '-j', 'DROP'], insert: true },
    ];
  }
  const r: { table: 'nat' | 'filter'; chain: string; args: string[]; insert: boolean }[] = [];
  if (n.masquerade) r.push({ table: 'nat', chain: 'POSTROUTING', args: ['-s', S, '!', '-o', B, '-j', 'MASQUERADE'], insert: true });
  if (n.masquerade && m.userlandProxy) r.push({ table: 'nat', chain: c.main, args: ['-i', B, '-j', 'RETURN'], insert: true });
  // loopback publishing without a proxy: DNAT in OUTPUT keeps source 127.0.0.1, which the
  // container could not answer; masquerade it to the bridge address
  if (!m.userlandProxy) r.push({ table: 'nat', chain: 'POSTROUTING', args: ['-s', '127.0.0.0/8', '-o', B, '-j', 'MASQUERADE'], insert: true });
  r.push(
    { table: 'filter', chain: 'FORWARD', args: iccRule(n, n.icc), insert: true },
    { table: 'filter', chain: 'FORWARD', args: ['-i', B, '!', '-o', B, '-j', 'ACCEPT'], insert: true },
    { table: 'filter', chain: 'FORWARD', args: ['-o', B, '-j', c.main], insert: true },
    { table: 'filter', chain: 'FORWARD', args: ['-o', B, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'], insert: true },
    { table: 'filter', chain: c.iso1, args: ['-i', B, '!', '-o', B, '-j', c.iso2], insert: true },
    { table: 'filter', chain: c.iso2, args: ['-o', B, '-j', 'DROP'], insert: true },
  );
  return r;
}

export function addNetworkOps(n: FirewallNetwork, m: RuleMode): Op[] {
  const ops: Op[] = networkRules(n, m).map((r) => ({ op: 'insert', table: r.table, chain: r.chain, args: r.args, probe: false }));
  return [...ops, ...jumpsToTop(m)];
}

/** Everything addNetworkOps could have installed for this bridge, whatever the options were then. */
export function removeNetworkOps(n: FirewallNetwork, m: RuleMode): Op[] {
  const variants: FirewallNetwork[] = [];
  for (const internal of [n.internal, !n.internal]) for (const icc of [n.icc, !n.icc]) variants.push({ ...n, internal, icc, masquerade: true });
  const seen = new Set<string>();
  const ops: Op[] = [];
  for (const proxy of [m.userlandProxy, !m.userlandProxy]) {
    for (const v of variants) {
      for (const r of networkRules(v, { ...m, userlandProxy: proxy })) {
        const key = `${r.table} ${r.chain} ${r.args.join(' ')}`;
        if (seen.has(key)) continue;
        // -C only for the rules the network was made with; the other variants are a sweep
        ops.push({ op: 'delete', table: r.table, chain: r.chain, args: r.args, probe: seen.size === 0 || (v === variants[0] && proxy === m.userlandProxy) });
        seen.add(key);
      }
    }
  }
  return ops;
}

function portSpec(a: number, b: number, sep: string): string {
  return a === b ? String(a) : `${a}${sep}${b}`;
}

/** DNAT target: a run of ports keeps its offset (`/base` when host and container ports differ). */
export function dnatTarget(p: PortMapping): string {
  if (p.containerPort === p.containerPortEnd) return `${p.containerIp}:${p.containerPort}`;
  const range = `${p.containerIp}:${p.containerPort}-${p.containerPortEnd}`;
  return p.hostPort === p.containerPort ? range : `${range}/${p.hostPort}`;
}

function portRules(n: FirewallNetwork, p: PortMapping, m: RuleMode): { table: 'nat' | 'filter' | 'mangle'; chain: string; args: string[] }[] {
  const c = m.chains;
  const hp = portSpec(p.hostPort, p.hostPortEnd, ':');
  const cp = portSpec(p.containerPort, p.containerPortEnd, ':');
  const C = `${p.containerIp}/32`;
  const match = ['-p', p.proto, '-m', p.proto];
  const dst = p.hostIp === '0.0.0.0' || p.hostIp === '' ? [] : ['-d', `${p.hostIp}/32`];
  const notFromBridge = m.userlandProxy ? ['!', '-i', n.bridge] : [];
  const r: { table: 'nat' | 'filter' | 'mangle'; chain: string; args: string[] }[] = [
    { table: 'nat', chain: c.main, args: [...dst, ...notFromBridge, ...match, '--dport', hp, '-j', 'DNAT', '--to-destination', dnatTarget(p)] },
    { table: 'nat', chain: 'POSTROUTING', args: ['-s', C, '-d', C, ...match, '--dport', cp, '-j', 'MASQUERADE'] },
    { table: 'filter', chain: c.main, args: ['-d', C, '!', '-i', n.bridge, '-o', n.bridge, ...match, '--dport', cp, '-j', 'ACCEPT'] },
  ];
  if (p.proto === 'sctp') r.push({ table: 'mangle', chain: 'POSTROUTING', args: ['-p', 'sctp', '-m', 'sctp', '--sport', cp, '-j', 'CHECKSUM', '--checksum-fill'] });
  return r;
}

export function publishOps(n: FirewallNetwork, mappings: readonly PortMapping[], m: RuleMode): Op[] {
  return mappings.flatMap((p) => portRules(n, p, m).map((r): Op => ({ op: 'append', ...r, probe: false })));
}

/**
 * The rules of these mappings as installed in the current mode; with `sweep`, also the other
 * mode's variant (after a mode change between runs), deleted only where found.
 */
export function unpublishOps(n: FirewallNetwork, mappings: readonly PortMapping[], m: RuleMode, sweep = true): Op[] {
  const ops: Op[] = [];
  for (const proxy of sweep ? [m.userlandProxy, !m.userlandProxy] : [m.userlandProxy]) {
    for (const p of mappings) for (const r of portRules(n, p, { ...m, userlandProxy: proxy })) ops.push({ op: 'delete', ...r, probe: proxy === m.userlandProxy });
  }
  // the MASQUERADE and ACCEPT rules do not depend on the mode; a second delete is skipped
  return ops;
}

/** The rule text of the chains the firewall owns for the given state, for the stale-rule sweep. */
export function ownedRuleTexts(
  networks: readonly FirewallNetwork[],
  endpoints: readonly { network: FirewallNetwork; mappings: readonly PortMapping[] }[],
  m: RuleMode,
): { nat: Set<string>; filter: Set<string> } {
  const nat = new Set<string>();
  const filter = new Set<string>();
  const add = (op: Op): void => {
    if (op.op !== 'insert' && op.op !== 'append') return;
    const owned = [m.chains.main, m.chains.iso1, m.chains.iso2];
    if (!owned.includes(op.chain)) return;
    const key = `${op.chain} ${op.args.join(' ')}`;
    if (op.table === 'nat') nat.add(key);
    else if (op.table === 'filter') filter.add(key);
  };
  baseOps(m).forEach(add);
  for (const n of networks) addNetworkOps(n, m).forEach(add);
  for (const e of endpoints) publishOps(e.network, e.mappings, m).forEach(add);
  return { nat, filter };
}
