import { BerthError } from '@berth/errors';
import { applyOps, ruleText } from './payload.js';
import type { ApplyOptions, Iptables, Op, Table } from './types.js';

const BUILTIN: Record<Table, string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
};

/** One recorded call on the fake. */
export type IptablesCall =
  | { method: 'restore'; payload: string }
  | { method: 'list'; table: Table; chain?: string }
  | { method: 'exists'; table: Table; chain: string; args: string[] };

interface FakeTable {
  policies: Map<string, string>;
  chains: Map<string, string[]>;
}

/** Splits a payload line into arguments (double quotes group, backslash escapes inside them). */
function tokenize(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}

/**
 * A recording, in-memory iptables: restore payloads are parsed and applied to tables kept as
 * text (rules stay exactly as written, the fake does not canonicalise `-p tcp` into
 * `-p tcp -m tcp`), failing like the real one on a missing rule or chain and applying
 * nothing of a payload that fails.
 */
export class FakeIptables implements Iptables {
  readonly calls: IptablesCall[] = [];
  /** Every non-empty payload applied, in order (refused ones are only in `calls`). */
  readonly payloads: string[] = [];
  private tables = new Map<Table, FakeTable>();
  private failures: { message: string; times: number } | undefined;

  /** Makes the next `times` restores fail with this message (apply tries once optimistically, then plans up to three times). */
  failRestore(message: string, times = 1): void {
    this.failures = { message, times };
  }

  constructor() {
    for (const t of Object.keys(BUILTIN) as Table[]) this.tables.set(t, freshTable(t));
  }

  async restore(payload: string): Promise<void> {
    this.calls.push({ method: 'restore', payload });
    if (payload === '') return;
    if (this.failures !== undefined) {
      const msg = this.failures.message;
      if (--this.failures.times <= 0) this.failures = undefined;
      throw new BerthError('BERTH_IPTABLES', `iptables-restore: ${msg}`);
    }
    const copy = new Map([...this.tables].map(([k, v]) => [k, cloneTable(v)]));
    let cur: FakeTable | undefined;
    payload.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      const fail = (why: string): never => {
        throw new BerthError('BERTH_IPTABLES', `iptables-restore: line ${i + 1} failed: ${why} (payload line ${i + 1}: ${line})`);
      };
      if (line === '' || line.startsWith('#')) return;
      if (line.startsWith('*')) {
        cur = copy.get(line.slice(1) as Table) ?? fail('unknown table');
        return;
      }
      if (line === 'COMMIT') {
        cur = undefined;
        return;
      }
      const t = cur ?? fail('no table');
      if (line.startsWith(':')) {
        const name = line.slice(1).split(' ')[0]!;
        if (!t.policies.has(name)) t.chains.set(name, []); // --noflush still flushes a declared user chain
        return;
      }
      const [flag, chain, ...rest] = tokenize(line);
      if (chain === undefined) fail('missing chain');
      const rules = t.chains.get(chain!);
      switch (flag) {
        case '-N':
          if (rules) fail('Chain already exists');
          t.chains.set(chain!, []);
          return;
        case '-X':
          if (!rules || t.policies.has(chain!)) fail('No chain/target/match by that name');
          if (rules!.length > 0) fail('Directory not empty');
          for (const [, rs] of t.chains) if (rs.some((r) => / -[jg] (\S+)/.exec(` ${r}`)?.[1] === chain)) fail('Device or resource busy');
          t.chains.delete(chain!);
          return;
        case '-F':
          if (!rules) fail('No chain/target/match by that name');
          rules!.length = 0;
          return;
        case '-P':
          if (!t.policies.has(chain!)) fail('Bad built-in chain name');
          t.policies.set(chain!, rest[0] ?? 'ACCEPT');
          return;
      }
      if (!rules) fail('No chain/target/match by that name');
      const target = / -[jg] (\S+)/.exec(` ${ruleText(rest)}`)?.[1];
      const needsChain = (): void => {
        if (target !== undefined && /^[A-Z0-9-]+$/.test(target) && !BUILTIN_TARGETS.has(target) && !t.chains.has(target)) fail(`Couldn't load target \`${target}'`);
      };
      switch (flag) {
        case '-A':
          needsChain();
          rules!.push(ruleText(rest));
          return;
        case '-I': {
          let pos = 1;
          let args = rest;
          if (/^\d+$/.test(rest[0] ?? '')) {
            pos = Number(rest[0]);
            args = rest.slice(1);
          }
          needsChain();
          if (pos > rules!.length + 1) fail('Index of insertion too big');
          rules!.splice(pos - 1, 0, ruleText(args));
          return;
        }
        case '-D': {
          const at = rules!.indexOf(ruleText(rest));
          if (at < 0) fail('Bad rule (does a matching rule exist in that chain?)');
          rules!.splice(at, 1);
          return;
        }
        default:
          fail(`unknown command ${flag}`);
      }
    });
    this.tables = copy;
    this.payloads.push(payload);
  }

  async list(table: Table, chain?: string): Promise<string[]> {
    this.calls.push({ method: 'list', table, ...(chain === undefined ? {} : { chain }) });
    const t = this.tables.get(table)!;
    if (chain !== undefined && !t.chains.has(chain)) throw new BerthError('BERTH_IPTABLES', `iptables -t ${table} -S ${chain}: No chain/target/match by that name.`);
    const out: string[] = [];
    const names = chain === undefined ? [...t.chains.keys()] : [chain];
    for (const c of names) if (t.policies.has(c)) out.push(`-P ${c} ${t.policies.get(c)}`);
    for (const c of [...names].filter((c) => !t.policies.has(c)).sort()) out.push(`-N ${c}`);
    for (const c of names) for (const r of t.chains.get(c)!) out.push(`-A ${c} ${r}`);
    return out;
  }

  async exists(table: Table, chain: string, args: readonly string[]): Promise<boolean> {
    this.calls.push({ method: 'exists', table, chain, args: [...args] });
    return this.tables.get(table)!.chains.get(chain)?.includes(ruleText(args)) ?? false;
  }

  async apply(ops: readonly Op[], opts?: ApplyOptions): Promise<string> {
    return applyOps(this, ops, opts);
  }

  async ensureChain(table: Table, chain: string): Promise<void> {
    await this.apply([{ op: 'ensureChain', table, chain }]);
  }

  async flushChain(table: Table, chain: string): Promise<void> {
    await this.apply([{ op: 'flushChain', table, chain }]);
  }

  async deleteChain(table: Table, chain: string): Promise<void> {
    await this.apply([{ op: 'deleteChain', table, chain }]);
  }

  /** Rules of one chain as text (no `-A CHAIN` prefix); undefined when the chain is absent. */
  rules(table: Table, chain: string): string[] | undefined {
    const r = this.tables.get(table)!.chains.get(chain);
    return r ? [...r] : undefined;
  }

  /** Whole-table dump as `-S` prints it, for assertions. */
  dump(table: Table): string[] {
    const t = this.tables.get(table)!;
    const out: string[] = [];
    for (const [c, p] of t.policies) out.push(`-P ${c} ${p}`);
    for (const c of [...t.chains.keys()].filter((c) => !t.policies.has(c)).sort()) out.push(`-N ${c}`);
    for (const [c, rs] of t.chains) for (const r of rs) out.push(`-A ${c} ${r}`);
    return out;
  }

  /** Sets a built-in chain's policy directly (e.g. FORWARD DROP as dockerd leaves it). */
  setPolicy(table: Table, chain: string, policy: string): void {
    this.tables.get(table)!.policies.set(chain, policy);
  }

  /** Adds a rule directly, as another program would (e.g. dockerd's chains). */
  inject(table: Table, line: string): void {
    const [flag, chain, ...rest] = tokenize(line);
    const t = this.tables.get(table)!;
    if (flag === '-N') t.chains.set(chain!, t.chains.get(chain!) ?? []);
    else if (flag === '-A') (t.chains.get(chain!) ?? t.chains.set(chain!, []).get(chain!)!).push(ruleText(rest));
  }
}

const BUILTIN_TARGETS = new Set(['ACCEPT', 'DROP', 'RETURN', 'REJECT', 'DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'CHECKSUM', 'LOG', 'MARK', 'CONNMARK', 'NOTRACK', 'CT', 'TCPMSS', 'QUEUE', 'NFQUEUE']);

function freshTable(t: Table): FakeTable {
  const ft: FakeTable = { policies: new Map(), chains: new Map() };
  for (const c of BUILTIN[t]) {
    ft.policies.set(c, 'ACCEPT');
    ft.chains.set(c, []);
  }
  return ft;
}

function cloneTable(t: FakeTable): FakeTable {
  return { policies: new Map(t.policies), chains: new Map([...t.chains].map(([k, v]) => [k, [...v]])) };
}
