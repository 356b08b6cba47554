/**
 * The Dockerfile parser of the classic builder: parser directives (`# escape=`, `# syntax=`),
 * comments, line continuations, one `Instruction` per logical line with its flags and its
 * arguments split as Docker splits them (JSON exec form, shell form, name=value pairs), and
 * the stages (`FROM x [AS name]`) with the ARGs before the first FROM. Pure: variables are
 * substituted later, at dispatch, by `shell-word.ts` (`expandWord`), as Docker does.
 *
 * Every error is Docker's text, `dockerfile parse error line N: ...`, an InvalidArgument (400
 * before the build stream starts).
 */
import { BerthError } from '@berth/errors';
import { jsonArray } from '@berth/image';

export interface Instruction {
  /** Lower-case keyword: `run`, `copy`, ... */
  cmd: string;
  /** The logical line as written (continuations joined), for `Step i/n : <original>`. */
  original: string;
  /** 1-based line of the instruction's first line. */
  line: number;
  /** `--name=value` flags before the arguments (COPY, ADD, FROM, RUN, HEALTHCHECK). */
  flags: Map<string, string>;
  /** Exec (JSON array) form. */
  json: boolean;
  /**
   * The arguments: for the JSON form the array's strings; for the shell form of RUN, CMD,
   * ENTRYPOINT one string (the rest of the line); for ENV, LABEL, ARG alternating name, value
   * (ARG: a value of null = no default); otherwise the whitespace-separated words, quotes kept
   * (substitution removes them).
   */
  args: string[];
  /** ARG without a default. */
  argNoDefault?: boolean[];
  /** HEALTHCHECK CMD / ONBUILD: the instruction they carry. */
  sub?: Instruction;
}

export interface Stage {
  /** `FROM <image>` as written (substituted with the meta ARGs at build). */
  base: string;
  /** `AS <name>`, lower-cased, or ''. */
  name: string;
  from: Instruction;
  instructions: Instruction[];
}

export interface Dockerfile {
  escape: string;
  /** `# syntax=` when given: Berth's classic builder ignores it (a frontend image is BuildKit's). */
  syntax: string | null;
  /** The ARG instructions before the first FROM. */
  metaArgs: Instruction[];
  stages: Stage[];
}

const KNOWN = new Set([
  'from', 'run', 'cmd', 'entrypoint', 'env', 'arg', 'label', 'maintainer', 'expose', 'user', 'volume',
  'workdir', 'copy', 'add', 'stopsignal', 'shell', 'healthcheck', 'onbuild',
]);

/** Instructions whose words get variables substituted at dispatch (Docker's list). */
export const EXPANDS = new Set(['add', 'copy', 'env', 'expose', 'from', 'label', 'stopsignal', 'onbuild', 'user', 'volume', 'workdir', 'arg']);

/**
 * dockerd words errors of its line parser (before instructions are made) differently, without
 * a line: `failed to parse Dockerfile: ENV must have two arguments`; parseDockerfile adds the
 * file's name.
 */
class SyntaxFault extends Error {}
function syntaxError(msg: string): SyntaxFault {
  return new SyntaxFault(msg);
}

export function parseError(line: number, msg: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', `dockerfile parse error line ${line}: ${msg}`, { details: { field: 'dockerfile', line } });
}

interface Logical {
  text: string;
  line: number;
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

/** Splits the file into logical lines (continuations joined, comments and blank lines gone). */
function logicalLines(src: string): { lines: Logical[]; escape: string; syntax: string | null } {
  const raw = src.replace(/^\uFEFF/, '').split(/\r?\n/);
  let escape = '\\';
  let syntax: string | null = null;
  let i = 0;
  // Parser directives: only at the very top, before any blank line, comment or instruction.
  const seen = new Set<string>();
  for (; i < raw.length; i++) {
    const m = DIRECTIVE.exec(raw[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (key !== 'escape' && key !== 'syntax' && key !== 'check') break;
    if (seen.has(key)) throw parseError(i + 1, `only one ${key} parser directive can be used`);
    seen.add(key);
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw parseError(i + 1, `invalid ESCAPE '${m[2]}'. Must be \` or \\`);
      escape = m[2]!;
    } else if (key === 'syntax') syntax = m[2]!;
  }
  const lines: Logical[] = [];
  let cur: string | null = null;
  let start = 0;
  for (; i < raw.length; i++) {
    const line = raw[i]!;
    const trimmed = line.trim();
    if (cur === null) {
      if (trimmed === '' || trimmed.startsWith('#')) continue;
      start = i + 1;
      cur = '';
    } else if (trimmed.startsWith('#') || trimmed === '') {
      // Comments and empty lines inside a continuation are dropped, as Docker does.
      continue;
    }
    const body = line.replace(/\s+$/, '');
    if (body.endsWith(escape)) {
      cur += body.slice(0, -1);
      continue;
    }
    cur += cur === '' ? body.replace(/^\s+/, '') : body;
    lines.push({ text: cur, line: start });
    cur = null;
  }
  if (cur !== null && cur.trim() !== '') lines.push({ text: cur, line: start });
  return { lines, escape, syntax };
}

/** Whitespace-separated words; quotes and escapes kept, but they hold a word together. */
export function splitWords(text: string, escape: string): string[] {
  const out: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === null && /\s/.test(ch)) {
      if (inWord) out.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === escape && i + 1 < text.length && quote !== "'") {
      word += ch + text[i + 1]!;
      i++;
      continue;
    }
    if (quote === null && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = null;
    word += ch;
  }
  if (inWord) out.push(word);
  return out;
}

/** Leading `--name=value` flags. */
function takeFlags(text: string, line: number, allowed: readonly string[], cmd: string): { flags: Map<string, string>; rest: string } {
  const flags = new Map<string, string>();
  let rest = text.trimStart();
  for (;;) {
    const m = /^--([a-zA-Z-]+)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!m) break;
    const name = m[1]!;
    if (!allowed.includes(name)) throw parseError(line, `unknown flag: ${name}`);
    if (m[2] === undefined) throw parseError(line, `missing a value on flag: ${name}`);
    flags.set(name, m[2]);
    rest = rest.slice(m[0].length);
  }
  void cmd;
  return { flags, rest };
}

/** ENV/LABEL name=value pairs (or the legacy `ENV name value`). */
function nameValues(cmd: string, rest: string, line: number, escape: string): string[] {
  const words = splitWords(rest, escape);
  const upper = cmd.toUpperCase();
  if (words.length === 0) throw parseError(line, `${upper} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    // Legacy `ENV name value with spaces`: the rest of the line is the value.
    const name = words[0]!;
    const value = rest.trim().slice(name.length).trim();
    if (value === '') throw syntaxError(`${upper} must have two arguments`);
    return [name, value];
  }
  const out: string[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq === -1) throw syntaxError(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    if (eq === 0) throw parseError(line, `${upper} names can not be blank`);
    out.push(w.slice(0, eq), w.slice(eq + 1));
  }
  return out;
}

function heredocCheck(cmd: string, rest: string, line: number): void {
  if ((cmd === 'run' || cmd === 'copy' || cmd === 'add') && /(^|\s)<<-?["']?[A-Za-z_][A-Za-z0-9_]*["']?/.test(rest) && jsonArray(rest) === null)
    throw new BerthError('BERTH_INVALID_ARGUMENT', `dockerfile parse error line ${line}: heredocs are not supported by Berth's classic builder (BuildKit syntax)`, {
      details: { field: 'dockerfile', line },
    });
}

/** One logical line to an instruction. */
export function parseInstruction(text: string, line: number, escape: string): Instruction {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(text.trim());
  const word = m?.[1] ?? '';
  const cmd = word.toLowerCase();
  const rest0 = m?.[2] ?? '';
  if (!KNOWN.has(cmd)) throw parseError(line, `unknown instruction: ${word.toUpperCase()}`);
  const upper = cmd.toUpperCase();
  const ins: Instruction = { cmd, original: text.trim(), line, flags: new Map(), json: false, args: [] };
  heredocCheck(cmd, rest0, line);
  const flagSets: Record<string, readonly string[]> = {
    from: ['platform'],
    copy: ['chown', 'from', 'chmod', 'link'],
    add: ['chown', 'chmod', 'link', 'checksum'],
    run: ['network', 'mount', 'security'],
    healthcheck: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
  };
  const { flags, rest } = flagSets[cmd] ? takeFlags(rest0, line, flagSets[cmd], cmd) : { flags: new Map<string, string>(), rest: rest0 };
  ins.flags = flags;
  switch (cmd) {
    case 'run':
    case 'cmd':
    case 'entrypoint':
    case 'shell': {
      const arr = jsonArray(rest);
      if (arr !== null) {
        ins.json = true;
        ins.args = arr;
      } else {
        if (cmd === 'shell') throw parseError(line, 'SHELL requires the arguments to be in JSON form');
        if (rest.trim() === '' && cmd === 'run') throw parseError(line, 'RUN requires at least one argument');
        ins.args = rest.trim() === '' ? [] : [rest.trim()];
      }
      if (cmd === 'shell' && ins.args.length === 0) throw parseError(line, 'SHELL requires at least one argument');
      for (const f of ['mount', 'security']) if (flags.has(f)) throw parseError(line, `the --${f} option requires BuildKit`);
      break;
    }
    case 'env':
    case 'label':
      ins.args = nameValues(cmd, rest, line, escape);
      break;
    case 'arg': {
      const words = splitWords(rest, escape);
      if (words.length === 0) throw parseError(line, 'ARG requires exactly one argument');
      if (words.length > 1) throw parseError(line, 'ARG requires exactly one argument');
      const w = words[0]!;
      const eq = w.indexOf('=');
      ins.args = eq === -1 ? [w, ''] : [w.slice(0, eq), w.slice(eq + 1)];
      ins.argNoDefault = [eq === -1];
      if (ins.args[0] === '') throw parseError(line, 'ARG names can not be blank');
      break;
    }
    case 'maintainer':
    case 'workdir':
    case 'user':
    case 'stopsignal':
      if (rest.trim() === '') throw parseError(line, `${upper} requires exactly one argument`);
      ins.args = cmd === 'maintainer' ? [rest.trim()] : splitWords(rest, escape);
      if (cmd === 'workdir' && ins.args.length > 1) ins.args = [rest.trim()];
      if ((cmd === 'user' || cmd === 'stopsignal') && ins.args.length !== 1) throw parseError(line, `${upper} requires exactly one argument`);
      break;
    case 'expose':
      ins.args = splitWords(rest, escape);
      if (ins.args.length === 0) throw parseError(line, 'EXPOSE requires at least one argument');
      break;
    case 'volume': {
      const arr = jsonArray(rest);
      ins.json = arr !== null;
      ins.args = arr ?? splitWords(rest, escape);
      if (ins.args.length === 0) throw parseError(line, 'VOLUME requires at least one argument');
      break;
    }
    case 'copy':
    case 'add': {
      const arr = jsonArray(rest);
      ins.json = arr !== null;
      ins.args = arr ?? splitWords(rest, escape);
      if (ins.args.length < 2)
        throw parseError(line, `${upper} requires at least two arguments, but only ${ins.args.length === 0 ? 'zero were' : 'one was'} provided. Destination could not be determined`);
      break;
    }
    case 'from': {
      const words = splitWords(rest, escape);
      if (words.length !== 1 && !(words.length === 3 && words[1]!.toLowerCase() === 'as')) throw parseError(line, 'FROM requires either one or three arguments');
      ins.args = words;
      break;
    }
    case 'healthcheck': {
      for (const f of ['interval', 'timeout', 'start-period', 'start-interval']) {
        const v = flags.get(f);
        if (v !== undefined && parseDuration(v) === null) throw parseError(line, `time: invalid duration ${JSON.stringify(v)}`);
      }
      const words = rest.trim();
      const kw = /^(\S+)\s*([\s\S]*)$/.exec(words);
      const type = (kw?.[1] ?? '').toUpperCase();
      if (type === 'NONE') {
        if ((kw?.[2] ?? '').trim() !== '') throw parseError(line, 'HEALTHCHECK NONE takes no arguments');
        ins.args = ['NONE'];
      } else if (type === 'CMD') {
        const body = (kw?.[2] ?? '').trim();
        if (body === '') throw parseError(line, 'Missing command after HEALTHCHECK CMD');
        const arr = jsonArray(body);
        ins.json = arr !== null;
        ins.args = ['CMD', ...(arr ?? [body])];
      } else throw parseError(line, 'Unknown type "' + type + '" in HEALTHCHECK (try CMD)');
      break;
    }
    case 'onbuild': {
      const t = rest.trim();
      if (t === '') throw parseError(line, 'ONBUILD requires at least one argument');
      const sub = parseInstruction(t, line, escape);
      if (sub.cmd === 'onbuild') throw parseError(line, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (sub.cmd === 'from' || sub.cmd === 'maintainer') throw parseError(line, `${sub.cmd.toUpperCase()} isn't allowed as an ONBUILD trigger`);
      ins.sub = sub;
      ins.args = [t];
      break;
    }
  }
  return ins;
}

/** Parses a Dockerfile's text into meta ARGs and stages. */
export function parseDockerfile(src: string, name = 'Dockerfile'): Dockerfile {
  const { lines, escape, syntax } = logicalLines(src);
  const out: Dockerfile = { escape, syntax, metaArgs: [], stages: [] };
  let parsed: Instruction[];
  try {
    parsed = lines.map((l) => parseInstruction(l.text, l.line, escape));
  } catch (err) {
    if (err instanceof SyntaxFault) throw new BerthError('BERTH_INVALID_ARGUMENT', `failed to parse ${name}: ${err.message}`, { details: { field: 'dockerfile' } });
    throw err;
  }
  if (parsed.length === 0) throw new BerthError('BERTH_INVALID_ARGUMENT', 'the Dockerfile (Dockerfile) cannot be empty', { details: { field: 'dockerfile' } });
  for (const ins of parsed) {
    if (ins.cmd === 'from') {
      const name = ins.args.length === 3 ? ins.args[2]!.toLowerCase() : '';
      if (name !== '' && !/^[a-z][a-z0-9-_.]*$/.test(name)) throw parseError(ins.line, `invalid name for build stage: "${ins.args[2]}", name can't start with a number or contain symbols`);
      if (name !== '' && out.stages.some((s) => s.name === name)) throw parseError(ins.line, `duplicate name ${name}`);
      out.stages.push({ base: ins.args[0]!, name, from: ins, instructions: [] });
      continue;
    }
    const stage = out.stages[out.stages.length - 1];
    if (stage === undefined) {
      if (ins.cmd === 'arg') {
        out.metaArgs.push(ins);
        continue;
      }
      throw new BerthError('BERTH_INVALID_ARGUMENT', 'no build stage in current context', { details: { field: 'dockerfile', line: ins.line } });
    }
    stage.instructions.push(ins);
  }
  if (out.stages.length === 0) throw new BerthError('BERTH_INVALID_ARGUMENT', 'no build stage in current context', { details: { field: 'dockerfile' } });
  return out;
}

/** A Go duration (`5s`, `1m30s`, `500ms`) in nanoseconds, or null when it is not one. */
export function parseDuration(v: string): number | null {
  if (v === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let consumed = 0;
  for (const m of v.matchAll(re)) {
    if (m.index !== consumed) return null;
    total += Number(m[1]) * unit[m[2]!]!;
    consumed += m[0].length;
  }
  if (consumed !== v.length || consumed === 0) return null;
  return Math.round(total);
}
