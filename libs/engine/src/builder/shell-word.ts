/**
 * Docker's word processing for the instructions that substitute variables (ENV, ARG, WORKDIR,
 * COPY/ADD, LABEL, EXPOSE, USER, VOLUME, STOPSIGNAL, FROM): `$VAR`, `${VAR}`, `${VAR:-x}`,
 * `${VAR-x}`, `${VAR:+x}`, `${VAR+x}`, `${VAR:?msg}`; single quotes are literal, double quotes
 * substitute, the escape character makes the next character literal. Quotes are removed.
 */
import { BerthError } from '@berth/errors';

export type Env = ReadonlyMap<string, string>;

/** KEY=value list to a map (last wins). */
export function envMap(list: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of list) {
    const i = e.indexOf('=');
    if (i === -1) m.set(e, '');
    else m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

const NAME = /[A-Za-z0-9_]/;

function subError(msg: string): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', msg, { details: { field: 'dockerfile' } });
}

class Lexer {
  i = 0;
  constructor(
    readonly s: string,
    readonly env: Env,
    readonly escape: string,
  ) {}

  /** Processes until `stop` (a char ending a ${...} word) or the end. */
  word(stop: string | null): string {
    let out = '';
    while (this.i < this.s.length) {
      const ch = this.s[this.i]!;
      if (stop !== null && ch === stop) return out;
      if (ch === "'") {
        this.i++;
        const end = this.s.indexOf("'", this.i);
        if (end === -1) throw subError('unexpected end of statement while looking for matching single-quote');
        out += this.s.slice(this.i, end);
        this.i = end + 1;
      } else if (ch === '"') {
        this.i++;
        out += this.doubleQuoted();
      } else if (ch === '$') {
        this.i++;
        out += this.dollar();
      } else if (ch === this.escape) {
        this.i++;
        if (this.i < this.s.length) out += this.s[this.i++]!;
      } else {
        out += ch;
        this.i++;
      }
    }
    return out;
  }

  private doubleQuoted(): string {
    let out = '';
    while (this.i < this.s.length) {
      const ch = this.s[this.i]!;
      if (ch === '"') {
        this.i++;
        return out;
      }
      if (ch === '$') {
        this.i++;
        out += this.dollar();
      } else if (ch === this.escape) {
        const next = this.s[this.i + 1];
        if (next === '"' || next === '$' || next === this.escape) {
          out += next;
          this.i += 2;
        } else {
          out += ch;
          this.i++;
        }
      } else {
        out += ch;
        this.i++;
      }
    }
    throw subError('unexpected end of statement while looking for matching double-quote');
  }

  private name(): string {
    let n = '';
    while (this.i < this.s.length && NAME.test(this.s[this.i]!)) n += this.s[this.i++]!;
    return n;
  }

  private dollar(): string {
    const ch = this.s[this.i];
    if (ch === '{') {
      this.i++;
      const name = this.name();
      if (name === '') throw subError(`bad substitution: missing name in \${...}`);
      const val = this.env.get(name);
      const c = this.s[this.i];
      if (c === '}') {
        this.i++;
        return val ?? '';
      }
      let colon = false;
      if (c === ':') {
        colon = true;
        this.i++;
      }
      const mod = this.s[this.i];
      if (mod !== '-' && mod !== '+' && mod !== '?') throw subError(`unsupported modifier (${mod ?? ''}) in substitution`);
      this.i++;
      const word = this.word('}');
      if (this.s[this.i] !== '}') throw subError('syntax error: missing }');
      this.i++;
      const set = colon ? val !== undefined && val !== '' : val !== undefined;
      if (mod === '-') return set ? val! : word;
      if (mod === '+') return set ? word : '';
      if (!set) throw subError(`${name}: ${word === '' ? 'is not allowed to be unset' : word}`);
      return val!;
    }
    const name = this.name();
    if (name === '') return '$';
    return this.env.get(name) ?? '';
  }
}

/** One word substituted, quotes and escapes removed. */
export function expandWord(word: string, env: Env, escape = '\\'): string {
  return new Lexer(word, env, escape).word(null);
}
