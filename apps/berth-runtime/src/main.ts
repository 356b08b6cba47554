/**
 * berth-runtime: an OCI runtime with runc's command line. Each verb's module is imported only
 * when used, so that `state` or `kill` stay quick. bin/berth-runtime calls main and exit
 * (tools/bundle/launch.cjs), from the bundle dist/berth-runtime.cjs while it is fresh.
 */
import { kindOf } from '@berth/errors';

const usage = `usage: berth-runtime [--root DIR] [--debug] COMMAND [ARGS]

commands:
  create  --bundle DIR [--console-socket PATH] [--pid-file PATH] ID
  start   ID
  state   ID
  kill    [--all] ID [SIGNAL]
  delete  [--force] ID
  run     --bundle DIR [--detach] [--console-socket PATH] [--pid-file PATH] [--keep] ID
  exec    [--process FILE] [--tty] [--cwd DIR] [--env K=V] [--user UID[:GID]] [--detach] ID [CMD...]
  list    [--format table|json] [--quiet]
  spec    [--bundle DIR]
  version
`;

export interface Globals {
  root: string;
  debug: boolean;
}

async function dispatch(argv: string[]): Promise<number> {
  const globals: Globals = { root: '/run/berth-runtime', debug: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--root') globals.root = argv[++i] ?? globals.root;
    else if (a.startsWith('--root=')) globals.root = a.slice(7);
    else if (a === '--debug') globals.debug = true;
    else if (a === '--log' || a === '--log-format') i++; // accepted for runc compatibility
    else if (a === '--systemd-cgroup') continue;
    else break;
  }
  const verb = argv[i];
  const rest = argv.slice(i + 1);
  switch (verb) {
    case 'create':
    case 'start':
    case 'state':
    case 'kill':
    case 'delete':
    case 'run':
    case 'exec':
    case 'list':
      return (await import('./commands/lifecycle.js')).runVerb(verb, rest, globals);
    case 'spec':
      return (await import('./commands/spec.js')).spec(rest);
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write('berth-runtime version 0.1.0\nspec: 1.0.2\n');
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return verb === undefined ? 2 : 0;
    default:
      process.stderr.write(`berth-runtime: unknown command "${verb}"\n${usage}`);
      return 2;
  }
}

/** Runs one command line; a failure is reported on stderr and becomes the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (err) {
    const e = err as { message?: string; details?: { exitCode?: unknown } };
    process.stderr.write(`berth-runtime: ${e.message ?? String(err)}\n`);
    if (argv.includes('--debug')) process.stderr.write(`(${kindOf(err)}) ${(err as Error).stack ?? ''}\n`);
    const code = e.details?.exitCode;
    return typeof code === 'number' ? code : 1;
  }
}

/** Ends the process with `code` once the event loop is idle (a running container's streams drain first). */
export function exit(code: number): void {
  process.exitCode = code;
}
