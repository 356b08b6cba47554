import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { BerthError } from '@berth/errors';
import { Component, componentLogger, createCliLogger } from '@berth/log';
import { createCgroupManager } from '@berth/cgroups';
import { realSyscalls, type Syscalls } from '@berth/native';
import { Runtime, runtimeCgroups, validateSpec, type OciProcess } from '@berth/runtime';
import { parseArgs, one, str, type Parsed } from '../args.js';
import type { Globals } from '../main.js';

async function openRuntime(g: Globals): Promise<Runtime> {
  const root = createCliLogger(g.debug ? 'debug' : 'warn');
  const logger = componentLogger(root, Component.Runtime);
  const manager = await createCgroupManager({ logger: componentLogger(root, Component.Cgroups) });
  let sys: Syscalls | undefined;
  return new Runtime({ root: g.root, logger, cgroups: runtimeCgroups(manager), syscalls: () => (sys ??= realSyscalls()), keepSealedInit: false });
}

const createFlags = {
  bundle: { value: true, short: 'b' },
  'console-socket': { value: true },
  'pid-file': { value: true },
  'no-pivot': { value: false },
  'no-new-keyring': { value: false },
  'preserve-fds': { value: true },
  detach: { value: false, short: 'd' },
  keep: { value: false },
} as const;

function forwardSignals(forward: (s: NodeJS.Signals) => void): void {
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as NodeJS.Signals[])
    process.on(s, () => forward(s));
}

function execProcess(p: Parsed, base: OciProcess | undefined): OciProcess {
  const file = str(p, 'process');
  if (file) {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    const spec = validateSpec({ ociVersion: '1.0.2', root: { path: '/' }, process: raw });
    return spec.process!;
  }
  if (p.positionals.length < 2) throw new BerthError('BERTH_INVALID_ARGUMENT', 'exec needs a command (or --process FILE)');
  const proc: OciProcess = {
    ...(base ?? { user: { uid: 0, gid: 0 }, cwd: '/', args: [] }),
    args: p.positionals.slice(1),
    terminal: p.flags.tty === true,
  };
  const cwd = str(p, 'cwd');
  if (cwd) proc.cwd = cwd;
  const env = (p.flags.env as string[] | undefined) ?? [];
  if (env.length) proc.env = [...(proc.env ?? []), ...env];
  const user = str(p, 'user');
  if (user) {
    const [uid, gid] = user.split(':').map(Number);
    if (!Number.isInteger(uid) || (gid !== undefined && !Number.isInteger(gid)))
      throw new BerthError('BERTH_INVALID_ARGUMENT', `--user "${user}": expected UID[:GID]`);
    proc.user = { uid: uid as number, gid: gid ?? 0 };
  }
  if (p.flags['no-new-privs'] === true) proc.noNewPrivileges = true;
  return proc;
}

export async function runVerb(verb: string, argv: string[], g: Globals): Promise<number> {
  const rt = await openRuntime(g);
  switch (verb) {
    case 'create': {
      const p = parseArgs(argv, createFlags);
      await rt.create(one(p, 'container id'), resolve(str(p, 'bundle') ?? '.'), {
        consoleSocket: str(p, 'console-socket'), pidFile: str(p, 'pid-file'),
      });
      return 0;
    }
    case 'run': {
      const p = parseArgs(argv, createFlags);
      return rt.run(one(p, 'container id'), resolve(str(p, 'bundle') ?? '.'), {
        consoleSocket: str(p, 'console-socket'), pidFile: str(p, 'pid-file'), detach: p.flags.detach === true,
        keep: p.flags.keep === true, onStarted: forwardSignals,
      });
    }
    case 'start':
      await rt.start(one(parseArgs(argv, {}), 'container id'));
      return 0;
    case 'state':
      process.stdout.write(JSON.stringify(rt.state(one(parseArgs(argv, {}), 'container id')), null, 2) + '\n');
      return 0;
    case 'kill': {
      const p = parseArgs(argv, { all: { value: false, short: 'a' } });
      await rt.kill(one(p, 'container id'), p.positionals[1] ?? 'SIGTERM', p.flags.all === true);
      return 0;
    }
    case 'delete': {
      const p = parseArgs(argv, { force: { value: false, short: 'f' } });
      await rt.delete(one(p, 'container id'), p.flags.force === true);
      return 0;
    }
    case 'exec': {
      const p = parseArgs(argv, {
        process: { value: true, short: 'p' }, tty: { value: false, short: 't' }, cwd: { value: true },
        env: { value: true, short: 'e', repeat: true }, user: { value: true, short: 'u' },
        detach: { value: false, short: 'd' }, 'pid-file': { value: true }, 'console-socket': { value: true },
        'no-new-privs': { value: false },
      }, true);
      const id = one(p, 'container id');
      const rec = rt.store.load(id);
      const { loadSpec } = await import('@berth/runtime');
      const proc = execProcess(p, loadSpec(rec.bundle).process);
      return rt.exec(id, proc, {
        detach: p.flags.detach === true, pidFile: str(p, 'pid-file'), consoleSocket: str(p, 'console-socket'),
        onStarted: forwardSignals,
      });
    }
    case 'list': {
      const p = parseArgs(argv, { format: { value: true, short: 'f' }, quiet: { value: false, short: 'q' } });
      const states = rt.list();
      if (p.flags.quiet === true) process.stdout.write(states.map((s) => `${s.id}\n`).join(''));
      else if (str(p, 'format') === 'json') process.stdout.write(JSON.stringify(states) + '\n');
      else {
        const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'],
          ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created, s.owner])];
        const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
        process.stdout.write(rows.map((r) => r.map((v, c) => v.padEnd(widths[c]! + 3)).join('').trimEnd() + '\n').join(''));
      }
      return 0;
    }
    default:
      throw new BerthError('BERTH_INVALID_ARGUMENT', `unknown command ${verb}`);
  }
}
