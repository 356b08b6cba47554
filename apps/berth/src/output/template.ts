/**
 * A subset of Go's text/template, enough for docker's `--format`: `{{.A.B}}`, method calls
 * with arguments (`{{.Label "k"}}`), pipes (`{{.Names | upper}}`), functions (json, upper,
 * lower, title, join, split, index, len, println, print, printf with %s/%d/%v, truncate, pad),
 * `if`/`else`/`range`/`with`/`end`, `{{-`/`-}}` trimming, string/number/bool literals.
 * Values print as Go would (`map[k:v]`, `[a b]`, `<no value>`, `<nil>`).
 */

export class TemplateError extends Error {
  constructor(message: string) {
    super(`template: ${message}`);
    this.name = 'TemplateError';
  }
}

type Arg =
  | { kind: 'field'; chain: string[] } // `.` = []
  | { kind: 'var' } // `$`
  | { kind: 'lit'; value: unknown }
  | { kind: 'ident'; name: string }
  | { kind: 'pipe'; pipe: Pipeline };
type Command = Arg[];
type Pipeline = Command[];

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline }
  | { kind: 'if' | 'with' | 'range'; pipe: Pipeline; body: Node[]; else: Node[] };

type Token = { type: 'text'; text: string } | { type: 'action'; src: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ type: 'text', text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (src.startsWith('- ', start) || src.startsWith('-\t', start) || src.startsWith('-\n', start)) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text) out.push({ type: 'text', text });
    const close = findClose(src, start);
    if (close < 0) throw new TemplateError('unclosed action');
    let inner = src.slice(start, close);
    let next = close + 2;
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      while (next < src.length && /\s/.test(src[next]!)) next++;
    }
    out.push({ type: 'action', src: inner.trim() });
    i = next;
  }
  return out;
}

function findClose(src: string, from: number): number {
  let inStr = false;
  for (let i = from; i < src.length; i++) {
    const c = src[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '}' && src[i + 1] === '}') return i;
  }
  return -1;
}

function lexAction(src: string): string[] {
  const toks: string[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      toks.push(src.slice(i, j + 1));
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      toks.push(src.slice(i, j + 1));
      i = j + 1;
      continue;
    }
    if (c === '|' || c === '(' || c === ')') {
      toks.push(c);
      i++;
      continue;
    }
    let j = i;
    while (j < src.length && !/[\s|()"]/.test(src[j]!)) j++;
    toks.push(src.slice(i, j));
    i = j;
  }
  return toks;
}

function parsePipeline(toks: string[], pos: { i: number }, stopAtParen: boolean): Pipeline {
  const pipe: Pipeline = [];
  let cmd: Command = [];
  while (pos.i < toks.length) {
    const t = toks[pos.i++]!;
    if (t === ')') {
      if (!stopAtParen) throw new TemplateError('unexpected )');
      break;
    }
    if (t === '|') {
      if (!cmd.length) throw new TemplateError('missing command before |');
      pipe.push(cmd);
      cmd = [];
      continue;
    }
    if (t === '(') {
      cmd.push({ kind: 'pipe', pipe: parsePipeline(toks, pos, true) });
      continue;
    }
    cmd.push(parseOperand(t));
  }
  if (cmd.length) pipe.push(cmd);
  if (!pipe.length) throw new TemplateError('missing value for command');
  return pipe;
}

function parseOperand(t: string): Arg {
  if (t === '.') return { kind: 'field', chain: [] };
  if (t === '$') return { kind: 'var' };
  if (t.startsWith('.')) return { kind: 'field', chain: t.slice(1).split('.') };
  if (t.startsWith('$.')) return { kind: 'field', chain: t.slice(2).split('.') };
  if (t.startsWith('"')) return { kind: 'lit', value: JSON.parse(t) as string };
  if (t.startsWith('`')) return { kind: 'lit', value: t.slice(1, -1) };
  if (t === 'true' || t === 'false') return { kind: 'lit', value: t === 'true' };
  if (t === 'nil') return { kind: 'lit', value: null };
  if (/^-?\d+(\.\d+)?$/.test(t)) return { kind: 'lit', value: Number(t) };
  if (/^[A-Za-z_]\w*$/.test(t)) return { kind: 'ident', name: t };
  throw new TemplateError(`bad token ${JSON.stringify(t)}`);
}

function parseNodes(tokens: Token[], pos: { i: number }, terminators: string[]): { nodes: Node[]; end: string } {
  const nodes: Node[] = [];
  while (pos.i < tokens.length) {
    const tok = tokens[pos.i++]!;
    if (tok.type === 'text') {
      nodes.push({ kind: 'text', text: tok.text });
      continue;
    }
    const src = tok.src;
    if (src.startsWith('/*')) continue;
    const word = /^(\w+)/.exec(src)?.[1] ?? '';
    if (word === 'end' || word === 'else') {
      if (!terminators.includes(word)) throw new TemplateError(`unexpected {{${word}}}`);
      return { nodes, end: word };
    }
    if (word === 'if' || word === 'with' || word === 'range') {
      const pipe = parsePipeline(lexAction(src.slice(word.length)), { i: 0 }, false);
      const body = parseNodes(tokens, pos, ['end', 'else']);
      let elseNodes: Node[] = [];
      if (body.end === 'else') elseNodes = parseNodes(tokens, pos, ['end']).nodes;
      nodes.push({ kind: word, pipe, body: body.nodes, else: elseNodes });
      continue;
    }
    nodes.push({ kind: 'action', pipe: parsePipeline(lexAction(src), { i: 0 }, false) });
  }
  if (terminators.length) throw new TemplateError('unexpected EOF');
  return { nodes, end: '' };
}

const MISSING = Symbol('missing');

/** Go's %v rendering of a value. */
export function goString(v: unknown): string {
  if (v === MISSING || v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.toString === 'function' && o.toString !== Object.prototype.toString) return o.toString();
    const keys = Object.keys(o).filter((k) => typeof o[k] !== 'function').sort();
    return `map[${keys.map((k) => `${k}:${goString(o[k])}`).join(' ')}]`;
  }
  return String(v);
}

function truthy(v: unknown): boolean {
  if (v === MISSING || v === undefined || v === null) return false;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** JSON of an object the way docker's `json` function shows it: own data properties only. */
export function toJsonValue(v: unknown): unknown {
  if (v === MISSING) return null;
  if (v && typeof v === 'object' && !Array.isArray(v) && typeof (v as { toJSON?: unknown }).toJSON !== 'function') {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o)) if (typeof o[k] !== 'function') out[k] = o[k];
    return out;
  }
  return v;
}

function title(s: string): string {
  return s.replace(/(^|[^\p{L}\p{N}])(\p{L})/gu, (_m, a: string, b: string) => a + b.toUpperCase());
}

function printf(fmt: string, args: unknown[]): string {
  let k = 0;
  return fmt.replace(/%([-+ 0#]*\d*(?:\.\d+)?)([svdqtx%])/g, (_m, _flags: string, verb: string) => {
    if (verb === '%') return '%';
    const a = args[k++];
    if (verb === 'q') return JSON.stringify(goString(a));
    if (verb === 'd') return String(Math.trunc(Number(a)));
    return goString(a);
  });
}

const FUNCS: Record<string, (...a: unknown[]) => unknown> = {
  json: (v) => JSON.stringify(toJsonValue(v)) ?? 'null',
  upper: (v) => goString(v).toUpperCase(),
  lower: (v) => goString(v).toLowerCase(),
  title: (v) => title(goString(v)),
  join: (v, sep) => (Array.isArray(v) ? v.map(goString).join(String(sep)) : goString(v)),
  split: (v, sep) => goString(v).split(String(sep)),
  len: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) cur = cur == null ? undefined : (cur as Record<string, unknown>)[String(k)];
    return cur === undefined ? MISSING : cur;
  },
  println: (...a) => a.map(goString).join(' ') + '\n',
  print: (...a) => a.map(goString).join(''),
  printf: (fmt, ...a) => printf(String(fmt), a),
  truncate: (v, n) => [...goString(v)].slice(0, Number(n)).join(''),
  pad: (v, l, r) => ' '.repeat(Number(l)) + goString(v) + ' '.repeat(Number(r)),
  not: (v) => !truthy(v),
  eq: (a, ...b) => b.some((x) => x === a),
  ne: (a, b) => a !== b,
  and: (...a) => a.find((x) => !truthy(x)) ?? a[a.length - 1],
  or: (...a) => a.find((x) => truthy(x)) ?? a[a.length - 1],
};

function field(base: unknown, chain: string[], args: unknown[], root: unknown): unknown {
  let cur = base;
  let holder: unknown = undefined;
  for (const name of chain) {
    if (cur === MISSING || cur === undefined || cur === null) return MISSING;
    if (typeof cur !== 'object') throw new TemplateError(`can't evaluate field ${name} in type ${typeof cur}`);
    holder = cur;
    const o = cur as Record<string, unknown>;
    cur = name in o ? o[name] : MISSING;
  }
  void root;
  if (typeof cur === 'function') return (cur as (...a: unknown[]) => unknown).apply(holder, args);
  if (args.length) throw new TemplateError(`${chain.join('.')} is not a method but has arguments`);
  return cur;
}

class Exec {
  constructor(private readonly root: unknown) {}

  arg(a: Arg, dot: unknown): unknown {
    switch (a.kind) {
      case 'field':
        return field(dot, a.chain, [], this.root);
      case 'var':
        return this.root;
      case 'lit':
        return a.value;
      case 'pipe':
        return this.pipe(a.pipe, dot);
      case 'ident': {
        const f = FUNCS[a.name];
        if (!f) throw new TemplateError(`function "${a.name}" not defined`);
        return f();
      }
    }
  }

  command(cmd: Command, dot: unknown, piped: unknown[]): unknown {
    const [head, ...rest] = cmd;
    const args = [...rest.map((r) => this.arg(r, dot)), ...piped];
    if (head!.kind === 'ident') {
      const f = FUNCS[head!.name];
      if (!f) throw new TemplateError(`function "${head!.name}" not defined`);
      return f(...args);
    }
    if (head!.kind === 'field') return field(dot, head!.chain, args, this.root);
    if (args.length) throw new TemplateError('can\'t give argument to non-function');
    return this.arg(head!, dot);
  }

  pipe(p: Pipeline, dot: unknown): unknown {
    let v: unknown = undefined;
    p.forEach((cmd, k) => {
      v = this.command(cmd, dot, k === 0 ? [] : [v]);
    });
    return v;
  }

  nodes(ns: Node[], dot: unknown, out: string[]): void {
    for (const n of ns) {
      switch (n.kind) {
        case 'text':
          out.push(n.text);
          break;
        case 'action':
          out.push(goString(this.pipe(n.pipe, dot)));
          break;
        case 'if': {
          const v = this.pipe(n.pipe, dot);
          this.nodes(truthy(v) ? n.body : n.else, dot, out);
          break;
        }
        case 'with': {
          const v = this.pipe(n.pipe, dot);
          if (truthy(v)) this.nodes(n.body, v, out);
          else this.nodes(n.else, dot, out);
          break;
        }
        case 'range': {
          const v = this.pipe(n.pipe, dot);
          const items = Array.isArray(v)
            ? v
            : v && typeof v === 'object'
              ? Object.keys(v as object)
                  .sort()
                  .map((k) => (v as Record<string, unknown>)[k])
              : [];
          if (!items.length) this.nodes(n.else, dot, out);
          for (const it of items) this.nodes(n.body, it, out);
          break;
        }
      }
    }
  }
}

export interface Template {
  execute(data: unknown): string;
}

export function parseTemplate(src: string): Template {
  const { nodes } = parseNodes(tokenize(src), { i: 0 }, []);
  return {
    execute(data: unknown): string {
      const out: string[] = [];
      new Exec(data).nodes(nodes, data, out);
      return out.join('');
    },
  };
}

/**
 * docker's preprocessing of a `--format` value: `table` prefix, `json` as the whole format,
 * literal `\t` and `\n` escapes.
 */
export interface FormatSpec {
  table: boolean;
  template: string;
}

export function formatSpec(format: string, defaultTable: string): FormatSpec {
  let f = format;
  if (f === '' || f === 'table') f = defaultTable;
  else if (f === 'json') f = '{{json .}}';
  const table = f.startsWith('table');
  if (table) f = f.slice('table'.length).replace(/^\s+/, '');
  f = f.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return { table, template: f };
}
