import type { ApplyOptions, Op, Table } from './types.js';

/** What one `-S` read of a table says: chains (built-in ones included) and their rules as text. */
export interface TableState {
  chains: Set<string>;
  rules: Map<string, string[]>;
  /** Built-in chain -> policy. */
  policies?: Map<string, string>;
}

/** Parses `iptables -t T -S` lines. */
export function parseRules(lines: readonly string[]): TableState {
  const st: TableState = { chains: new Set(), rules: new Map(), policies: new Map() };
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '') continue;
    const m = /^(-[PNA]) (\S+)(?: (.*))?$/.exec(line);
    if (!m) continue;
    const [, flag, chain, rest] = m as unknown as [string, string, string, string | undefined];
    if (!st.chains.has(chain)) {
      st.chains.add(chain);
      st.rules.set(chain, []);
    }
    if (flag === '-A') st.rules.get(chain)!.push(rest ?? '');
    if (flag === '-P') st.policies!.set(chain, rest ?? '');
  }
  return st;
}

/** Rule text as `-S` prints it (arguments joined by spaces, quoted when they hold spaces). */
export function ruleText(args: readonly string[]): string {
  return args.map(quoteArg).join(' ');
}

function quoteArg(a: string): string {
  return /[\s"']/.test(a) || a === '' ? `"${a.replace(/(["\\])/g, '\\$1')}"` : a;
}

/** Asks the kernel whether a rule exists (the `-C` fallback for text that does not match). */
export type RuleCheck = (table: Table, chain: string, args: readonly string[]) => Promise<boolean>;

/**
 * Turns ops into one restore payload against the given state: chains made only when missing,
 * rules added only when absent and deleted only when present. `check` is asked only about
 * rules whose text is not found in a chain this payload has not changed yet.
 */
export async function buildPayload(ops: readonly Op[], state: ReadonlyMap<Table, TableState>, check?: RuleCheck): Promise<string> {
  const work = new Map<Table, TableState>();
  const touched = new Set<string>();
  const created = new Set<string>(); // chains this payload makes: no rule can jump to them yet
  const lines = new Map<Table, string[]>();
  const tableOf = (t: Table): TableState => {
    let s = work.get(t);
    if (!s) {
      const src = state.get(t) ?? { chains: new Set<string>(), rules: new Map<string, string[]>() };
      s = { chains: new Set(src.chains), rules: new Map([...src.rules].map(([k, v]) => [k, [...v]])), policies: new Map(src.policies ?? []) };
      work.set(t, s);
    }
    return s;
  };
  const emit = (t: Table, line: string, chain: string): void => {
    let l = lines.get(t);
    if (!l) lines.set(t, (l = []));
    l.push(line);
    touched.add(`${t}/${chain}`);
  };
  const present = async (t: Table, chain: string, args: readonly string[], probe = true): Promise<number> => {
    const s = tableOf(t);
    if (!s.chains.has(chain)) return 0;
    const text = ruleText(args);
    const n = (s.rules.get(chain) ?? []).filter((r) => r === text).length;
    if (n > 0 || !check || !probe || touched.has(`${t}/${chain}`)) return n;
    const j = args.findIndex((a) => a === '-j' || a === '-g');
    if (j >= 0 && created.has(`${t}/${args[j + 1]}`)) return 0;
    return (await check(t, chain, args)) ? 1 : 0;
  };

  for (const op of ops) {
    const s = tableOf(op.table);
    switch (op.op) {
      case 'ensureChain':
        if (!s.chains.has(op.chain)) {
          emit(op.table, `-N ${op.chain}`, op.chain);
          created.add(`${op.table}/${op.chain}`);
          s.chains.add(op.chain);
          s.rules.set(op.chain, []);
        }
        break;
      case 'flushChain':
        if (s.chains.has(op.chain) && (s.rules.get(op.chain) ?? []).length > 0) {
          emit(op.table, `-F ${op.chain}`, op.chain);
          s.rules.set(op.chain, []);
        }
        break;
      case 'deleteChain':
        if (s.chains.has(op.chain)) {
          emit(op.table, `-F ${op.chain}`, op.chain);
          emit(op.table, `-X ${op.chain}`, op.chain);
          s.chains.delete(op.chain);
          s.rules.delete(op.chain);
        }
        break;
      case 'append': {
        if ((await present(op.table, op.chain, op.args, op.probe)) > 0) break;
        emit(op.table, `-A ${op.chain} ${ruleText(op.args)}`, op.chain);
        s.rules.get(op.chain)?.push(ruleText(op.args));
        break;
      }
      case 'insert': {
        const n = await present(op.table, op.chain, op.args, op.probe);
        const text = ruleText(op.args);
        const pos = op.position ?? 1;
        if (n > 0) {
          if (!op.move) break;
          const rules = s.rules.get(op.chain) ?? [];
          if (rules[pos - 1] === text && rules.filter((r) => r === text).length === 1) break; // already in place
          for (let i = 0; i < n; i++) emit(op.table, `-D ${op.chain} ${text}`, op.chain);
          s.rules.set(op.chain, rules.filter((r) => r !== text));
        }
        const at = Math.min(pos, (s.rules.get(op.chain) ?? []).length + 1); // -I N past the end is refused
        emit(op.table, at === 1 ? `-I ${op.chain} ${text}` : `-I ${op.chain} ${at} ${text}`, op.chain);
        s.rules.get(op.chain)?.splice(at - 1, 0, text);
        break;
      }
      case 'policy':
        if (s.policies?.get(op.chain) !== op.policy) {
          emit(op.table, `-P ${op.chain} ${op.policy}`, op.chain);
          s.policies?.set(op.chain, op.policy);
        }
        break;
      case 'delete': {
        const n = await present(op.table, op.chain, op.args, op.probe);
        if (n === 0) break;
        const text = ruleText(op.args);
        emit(op.table, `-D ${op.chain} ${text}`, op.chain);
        const rules = s.rules.get(op.chain);
        const i = rules?.indexOf(text) ?? -1;
        if (rules && i >= 0) rules.splice(i, 1);
        break;
      }
    }
  }
  let out = '';
  for (const [t, l] of lines) out += `*${t}\n${l.join('\n')}\nCOMMIT\n`;
  return out;
}

/** The distinct tables a list of ops touches, in first-use order. */
export function tablesOf(ops: readonly Op[]): Table[] {
  return [...new Set(ops.map((o) => o.table))];
}

/** The three calls apply needs; the real adapter and the fake both provide them. */
export interface IptablesBackend {
  restore(payload: string): Promise<void>;
  list(table: Table): Promise<string[]>;
  exists(table: Table, chain: string, args: readonly string[]): Promise<boolean>;
}

/** The payload of rule-only ops assuming adds are absent and deletes present; undefined if other ops. */
export function blindPayload(ops: readonly Op[]): string | undefined {
  const lines = new Map<Table, string[]>();
  for (const op of ops) {
    let line: string;
    if (op.op === 'append') line = `-A ${op.chain} ${ruleText(op.args)}`;
    else if (op.op === 'delete') line = `-D ${op.chain} ${ruleText(op.args)}`;
    else if (op.op === 'insert' && !op.move) line = op.position === undefined || op.position === 1 ? `-I ${op.chain} ${ruleText(op.args)}` : `-I ${op.chain} ${op.position} ${ruleText(op.args)}`;
    else return undefined;
    let l = lines.get(op.table);
    if (!l) lines.set(op.table, (l = []));
    l.push(line);
  }
  let out = '';
  for (const [t, l] of lines) out += `*${t}\n${l.join('\n')}\nCOMMIT\n`;
  return out;
}

/** apply() over a backend: optimistic single restore when asked and possible, else read, plan, restore. */
export async function applyOps(b: IptablesBackend, ops: readonly Op[], opts: ApplyOptions = {}): Promise<string> {
  if (opts.optimistic) {
    const blind = blindPayload(ops);
    if (blind !== undefined) {
      try {
        await b.restore(blind);
        return blind;
      } catch {
        // a rule was not as recorded: read and apply only what is needed
      }
    }
  }
  // Read, plan, restore; again from a fresh read when the restore is refused: another program
  // (another daemon, dockerd, firewalld) may have changed a chain between the read and the
  // restore (a FORWARD shorter than read makes `-I FORWARD 2` fail).
  for (let attempt = 1; ; attempt++) {
    const state = new Map<Table, TableState>();
    await Promise.all(tablesOf(ops).map(async (t) => state.set(t, parseRules(await b.list(t)))));
    const payload = await buildPayload(ops, state, (t, c, a) => b.exists(t, c, a));
    try {
      await b.restore(payload);
      return payload;
    } catch (err) {
      if (attempt >= PLAN_ATTEMPTS) throw err;
    }
  }
}

/** How many times apply reads the tables, plans and restores before a refused restore is the error. */
const PLAN_ATTEMPTS = 3;
