/**
 * berth-runtime: an OCI runtime with runc's command line. Each verb's module is imported only
 * when used, so that `state` or `kill` stay quick.
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

async function main(argv: string[]): Promise<number> {
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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as { message?: string; details?: { exitCode?: unknown } };
    process.stderr.write(`berth-runtime: ${e.message ?? String(err)}\n`);
    if (process.argv.includes('--debug')) process.stderr.write(`(${kindOf(err)}) ${(err as Error).stack ?? ''}\n`);
    const code = e.details?.exitCode;
    process.exitCode = typeof code === 'number' ? code : 1;
  },
);
