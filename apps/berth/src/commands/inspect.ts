/** `inspect`, `container inspect`, `image inspect`: JSON arrays indented by 4, or `--format` per object. */
import { str, bool, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError, DaemonError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { parseTemplate } from '../output/template.js';

const flags: CommandSpec['flags'] = [
  { name: 'format', short: 'f', type: 'string', valueName: 'string', description: 'Format output using a custom template' },
  { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes' },
];

type Kind = 'container' | 'image' | 'network';

async function fetchOne(ctx: Context, kind: Kind, name: string, size: boolean): Promise<unknown> {
  const path =
    kind === 'container' ? `/containers/${encodeURIComponent(name)}/json` : kind === 'image' ? `/images/${encodeURIComponent(name)}/json` : `/networks/${encodeURIComponent(name)}`;
  return ctx.client.get(path, kind === 'container' && size ? { size: '1' } : undefined);
}

function notFound(err: unknown): boolean {
  return err instanceof DaemonError && err.status === 404;
}

/** Renders inspected objects the docker way. */
export function renderInspect(objects: unknown[], format: string): string {
  if (!format || format === 'json') return objects.length ? `${JSON.stringify(objects, null, 4)}\n` : '[]\n';
  const tpl = parseTemplate(format.replace(/\\t/g, '\t').replace(/\\n/g, '\n'));
  return objects.map((o) => `${tpl.execute(o)}\n`).join('');
}

function makeInspect(fixed: Kind | undefined): Command['run'] {
  return async (ctx: Context, p: ParsedArgs): Promise<number> => {
    const type = fixed ?? (str(p, 'type') || undefined);
    if (type !== undefined && type !== 'container' && type !== 'image' && type !== 'network') throw new CliError(`"${type}" is not a valid value for --type`);
    const kinds: Kind[] = type ? [type as Kind] : ['container', 'image', 'network'];
    const found: unknown[] = [];
    const errors: string[] = [];
    for (const name of p.args) {
      let got: unknown;
      let lastErr: unknown;
      for (const k of kinds) {
        try {
          got = await fetchOne(ctx, k, name, bool(p, 'size'));
          break;
        } catch (err) {
          if (!notFound(err)) throw err;
          lastErr = err;
        }
      }
      if (got !== undefined) found.push(got);
      else if (fixed) errors.push((lastErr as Error).message);
      else errors.push(`Error: No such object: ${name}`);
    }
    const format = str(p, 'format');
    if (found.length || !format) ctx.out(renderInspect(found, format));
    for (const e of errors) ctx.err(`${e}\n`);
    return errors.length ? 1 : 0;
  };
}

export const commands: Record<string, Command> = {
  inspect: {
    spec: {
      usage: 'inspect [OPTIONS] NAME|ID [NAME|ID...]',
      description: 'Return low-level information on Berth objects',
      minArgs: 1,
      flags: [...flags, { name: 'type', type: 'string', valueName: 'string', description: 'Return JSON for specified type' }],
    },
    run: makeInspect(undefined),
  },
  'container inspect': {
    spec: { usage: 'inspect [OPTIONS] CONTAINER [CONTAINER...]', description: 'Display detailed information on one or more containers', minArgs: 1, flags },
    run: makeInspect('container'),
  },
  'image inspect': {
    spec: {
      usage: 'inspect [OPTIONS] IMAGE [IMAGE...]',
      description: 'Display detailed information on one or more images',
      minArgs: 1,
      flags: [flags[0]!],
    },
    run: makeInspect('image'),
  },
  'network inspect': {
    spec: {
      usage: 'inspect [OPTIONS] NETWORK [NETWORK...]',
      description: 'Display detailed information on one or more networks',
      minArgs: 1,
      flags: [flags[0]!, { name: 'verbose', short: 'v', type: 'bool', description: 'Verbose output for diagnostics' }],
    },
    run: makeInspect('network'),
  },
};
