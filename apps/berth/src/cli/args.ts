/**
 * A small parser for docker's flag grammar (cobra/pflag): `-it` clusters, `-e K=V` and `-eK=V`,
 * `--env K=V` and `--env=K=V`, repeated list flags, `--rm=false`, `--` ending the flags, and
 * (for run/create/exec) flags ending at the first positional so `run IMG sh -c "..."` keeps
 * `-c` for the container. Hand-written because it loads in well under a millisecond.
 */

export type FlagType = 'bool' | 'string' | 'list' | 'int';

export interface FlagSpec {
  /** Long name without dashes, e.g. `env`. Also the key in the parsed result. */
  name: string;
  short?: string;
  type: FlagType;
  /** Extra long names (`net` for `network`). */
  aliases?: string[];
  description?: string;
  default?: string | boolean | number;
  /** The value placeholder in help (`list`, `string`, `int`). */
  valueName?: string;
  hidden?: boolean;
}

export interface CommandSpec {
  /** Usage after `berth`, e.g. `run [OPTIONS] IMAGE [COMMAND] [ARG...]`. */
  usage: string;
  description: string;
  flags: FlagSpec[];
  /** Flags end at the first positional (run, create, exec). */
  stopAtFirstPositional?: boolean;
  /** Minimum and maximum number of positionals (max undefined = unlimited). */
  minArgs?: number;
  maxArgs?: number;
  aliases?: string[];
}

export type FlagValue = string | boolean | number | string[];

export interface ParsedArgs {
  flags: Record<string, FlagValue>;
  /** Flags the user actually gave (to tell `-t 0` from "not given"). */
  given: Set<string>;
  args: string[];
  help: boolean;
}

/** A usage error: docker prints it with the usage line and exits 125. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function initial(spec: FlagSpec): FlagValue {
  if (spec.default !== undefined) return spec.default;
  switch (spec.type) {
    case 'bool':
      return false;
    case 'list':
      return [];
    case 'int':
      return 0;
    default:
      return '';
  }
}

function parseBool(raw: string, flag: string): boolean {
  const v = raw.toLowerCase();
  if (['1', 't', 'true'].includes(v)) return true;
  if (['0', 'f', 'false'].includes(v)) return false;
  throw new UsageError(`invalid argument "${raw}" for "${flag}" flag: strconv.ParseBool: parsing "${raw}": invalid syntax`);
}

export function parseArgs(spec: Pick<CommandSpec, 'flags' | 'stopAtFirstPositional'>, argv: readonly string[]): ParsedArgs {
  const byLong = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const f of spec.flags) {
    byLong.set(f.name, f);
    for (const a of f.aliases ?? []) byLong.set(a, f);
    if (f.short) byShort.set(f.short, f);
  }
  const flags: Record<string, FlagValue> = {};
  for (const f of spec.flags) flags[f.name] = initial(f);
  const given = new Set<string>();
  const args: string[] = [];
  let help = false;

  const set = (f: FlagSpec, raw: string, shown: string): void => {
    given.add(f.name);
    switch (f.type) {
      case 'bool':
        flags[f.name] = parseBool(raw, shown);
        break;
      case 'list':
        (flags[f.name] as string[]).push(raw);
        break;
      case 'int': {
        if (!/^-?\d+$/.test(raw.trim()))
          throw new UsageError(`invalid argument "${raw}" for "${shown}" flag: strconv.ParseInt: parsing "${raw}": invalid syntax`);
        flags[f.name] = Number.parseInt(raw, 10);
        break;
      }
      default:
        flags[f.name] = raw;
    }
  };

  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (name === 'help') {
        help = true;
        continue;
      }
      const f = byLong.get(name);
      if (!f) throw new UsageError(`unknown flag: --${name}`);
      const shown = `--${f.name}`;
      if (eq >= 0) set(f, a.slice(eq + 1), shown);
      else if (f.type === 'bool') set(f, 'true', shown);
      else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        set(f, argv[++i]!, shown);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // a cluster of shorthands: -it, -dit, -p80:80, -eK=V, -t=false
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        if (c === 'h' && !byShort.has('h')) {
          help = true;
          continue;
        }
        const f = byShort.get(c);
        if (!f) throw new UsageError(`unknown shorthand flag: '${c}' in ${a}`);
        const shown = `-${c}, --${f.name}`;
        const rest = a.slice(j + 1);
        if (f.type === 'bool') {
          if (rest.startsWith('=')) {
            set(f, rest.slice(1), shown);
            break;
          }
          set(f, 'true', shown);
          continue;
        }
        if (rest.length > 0) set(f, rest.startsWith('=') ? rest.slice(1) : rest, shown);
        else {
          if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${c}' in -${c}`);
          set(f, argv[++i]!, shown);
        }
        break;
      }
      continue;
    }
    args.push(a);
    if (spec.stopAtFirstPositional) {
      i++;
      break;
    }
  }
  for (; i < argv.length; i++) args.push(argv[i]!);
  return { flags, given, args, help };
}

/** Help text in docker's layout. */
export function renderHelp(prog: string, spec: CommandSpec): string {
  const lines = [`Usage:  ${prog} ${spec.usage}`, '', spec.description, ''];
  if (spec.aliases?.length) lines.push('Aliases:', `  ${spec.aliases.join(', ')}`, '');
  const visible = spec.flags.filter((f) => !f.hidden);
  if (visible.length) {
    lines.push('Options:');
    const left = visible.map((f) => {
      const short = f.short ? `-${f.short}, ` : '    ';
      const value = f.type === 'bool' ? '' : ` ${f.valueName ?? f.type}`;
      return `  ${short}--${f.name}${value}`;
    });
    const width = Math.max(...left.map((l) => l.length)) + 3;
    visible.forEach((f, k) => {
      let d = f.description ?? '';
      if (f.default !== undefined && f.default !== false && f.default !== '') d += ` (default ${JSON.stringify(f.default)})`;
      lines.push(left[k]!.padEnd(width) + d);
    });
  }
  return lines.join('\n') + '\n';
}

/** Accessors with the right types, so command code reads cleanly. */
export function str(p: ParsedArgs, name: string): string {
  return p.flags[name] as string;
}
export function bool(p: ParsedArgs, name: string): boolean {
  return p.flags[name] as boolean;
}
export function list(p: ParsedArgs, name: string): string[] {
  return p.flags[name] as string[];
}
export function int(p: ParsedArgs, name: string): number {
  return p.flags[name] as number;
}
