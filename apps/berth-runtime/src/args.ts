/** A small getopt for runc's command line: flags before positionals, `--` ends flags. */
import { BerthError } from '@berth/errors';

export interface FlagSpec {
  /** Long name -> takes a value? */
  [name: string]: { value: boolean; short?: string; repeat?: boolean };
}

export interface Parsed {
  flags: Record<string, string | boolean | string[]>;
  positionals: string[];
}

export function parseArgs(argv: readonly string[], spec: FlagSpec, stopAtFirstPositional = false): Parsed {
  const flags: Parsed['flags'] = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(spec).flatMap(([k, v]) => (v.short ? [[v.short, k] as const] : [])));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('-') && a !== '-' && !(stopAtFirstPositional && positionals.length > 0)) {
      const long = a.startsWith('--');
      let name = long ? a.slice(2) : a.slice(1);
      let inline: string | undefined;
      const eq = name.indexOf('=');
      if (eq >= 0) {
        inline = name.slice(eq + 1);
        name = name.slice(0, eq);
      }
      const key = long ? name : byShort.get(name) ?? name;
      const def = spec[key];
      if (!def) throw new BerthError('BERTH_INVALID_ARGUMENT', `unknown flag ${a}`);
      let value: string | boolean = true;
      if (def.value) {
        value = inline ?? (argv[++i] as string | undefined) ?? '';
        if (inline === undefined && i >= argv.length) throw new BerthError('BERTH_INVALID_ARGUMENT', `flag ${a} needs a value`);
      }
      if (def.repeat) ((flags[key] ??= []) as string[]).push(String(value));
      else flags[key] = value;
      continue;
    }
    positionals.push(a);
  }
  return { flags, positionals };
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function one(p: Parsed, what: string): string {
  const v = p.positionals[0];
  if (!v) throw new BerthError('BERTH_INVALID_ARGUMENT', `missing ${what}`);
  return v;
}
