/** start, stop, kill, restart, rm, wait, pause, unpause, rename. */
import type { ContainerInspect, WaitResponse } from '@berth/api/wire';
import { bool, int, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError, DaemonError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { DEFAULT_DETACH_KEYS, monitorTtySize, proxySignals, runSession } from '../session.js';
import { startErrorStatus, startWait } from './run.js';

function id(s: string): string {
  return encodeURIComponent(s);
}

/** Runs `op` for each container; prints the name on success, the error otherwise; exit 1 if any failed. */
async function each(ctx: Context, names: string[], op: (name: string) => Promise<string | void>): Promise<number> {
  let failed = 0;
  for (const n of names) {
    try {
      const printed = await op(n);
      ctx.out(`${printed ?? n}\n`);
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      failed++;
      ctx.err(`${err.message}\n`);
    }
  }
  return failed ? 1 : 0;
}

const startSpec: CommandSpec = {
  usage: 'start [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Start one or more stopped containers',
  minArgs: 1,
  flags: [
    { name: 'attach', short: 'a', type: 'bool', description: 'Attach STDOUT/STDERR and forward signals' },
    { name: 'detach-keys', type: 'string', valueName: 'string', description: 'Override the key sequence for detaching a container' },
    { name: 'interactive', short: 'i', type: 'bool', description: "Attach container's STDIN" },
  ],
};

async function start(ctx: Context, p: ParsedArgs): Promise<number> {
  const c = ctx.client;
  if (!bool(p, 'attach') && !bool(p, 'interactive')) {
    const failed: string[] = [];
    for (const n of p.args) {
      try {
        await c.call('POST', `/containers/${id(n)}/start`);
        ctx.out(`${n}\n`);
      } catch (err) {
        if (!(err instanceof CliError)) throw err;
        ctx.err(`${err.message}\n`);
        failed.push(n);
      }
    }
    if (failed.length) throw new CliError(`Error: failed to start containers: ${failed.join(', ')}`);
    return 0;
  }
  if (p.args.length > 1) throw new CliError('Error: you cannot start and attach multiple containers at once');
  const info = await c.get<ContainerInspect>(`/containers/${id(p.args[0]!)}/json`);
  const tty = info.Config.Tty;
  const stdin = bool(p, 'interactive') && info.Config.OpenStdin;
  const detachKeys = p.given.has('detach-keys') ? str(p, 'detach-keys') : DEFAULT_DETACH_KEYS;
  const query: Record<string, string> = { stream: '1', stdout: '1', stderr: '1' };
  if (stdin) query.stdin = '1';
  if (p.given.has('detach-keys')) query.detachKeys = detachKeys;
  if (stdin && tty && !process.stdin.isTTY) throw new CliError('the input device is not a TTY');
  const h = await c.hijack(`/containers/${info.Id}/attach`, { query });
  const session = runSession({ socket: h.socket, head: h.head, tty, stdin, detachKeys });
  session.catch(() => {});
  const wait = await startWait(c, info.Id, info.HostConfig.AutoRemove ? 'removed' : 'next-exit');
  try {
    await c.call('POST', `/containers/${info.Id}/start`);
  } catch (err) {
    h.socket.destroy();
    wait.cancel();
    const msg = err instanceof DaemonError ? err.daemonMessage : (err as Error).message;
    throw new CliError((err as Error).message, startErrorStatus(msg) === 125 ? 1 : startErrorStatus(msg));
  }
  const stopResize = tty ? monitorTtySize((hh, w) => c.call('POST', `/containers/${info.Id}/resize`, { query: { h: hh, w } })) : () => {};
  const stopProxy = !tty ? proxySignals((signal) => c.call('POST', `/containers/${info.Id}/kill`, { query: { signal } })) : () => {};
  const how = await session.finally(stopResize);
  stopProxy();
  if (how === 'detached') {
    wait.cancel();
    return 0;
  }
  const status = await wait.result;
  return status.StatusCode;
}

const stopSpec: CommandSpec = {
  usage: 'stop [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Stop one or more running containers',
  minArgs: 1,
  flags: [
    { name: 'signal', short: 's', type: 'string', valueName: 'string', description: 'Signal to send to the container' },
    { name: 'time', short: 't', type: 'int', valueName: 'int', description: 'Seconds to wait before killing the container' },
  ],
};

function stopQuery(p: ParsedArgs): Record<string, string | number | undefined> {
  return { t: p.given.has('time') ? int(p, 'time') : undefined, signal: str(p, 'signal') || undefined };
}

const restartSpec: CommandSpec = { ...stopSpec, usage: 'restart [OPTIONS] CONTAINER [CONTAINER...]', description: 'Restart one or more containers' };

const killSpec: CommandSpec = {
  usage: 'kill [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Kill one or more running containers',
  minArgs: 1,
  flags: [{ name: 'signal', short: 's', type: 'string', valueName: 'string', description: 'Signal to send to the container' }],
};

const rmSpec: CommandSpec = {
  usage: 'rm [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Remove one or more containers',
  minArgs: 1,
  aliases: ['berth container rm', 'berth container remove', 'berth rm'],
  flags: [
    { name: 'force', short: 'f', type: 'bool', description: 'Force the removal of a running container (uses SIGKILL)' },
    { name: 'link', short: 'l', type: 'bool', description: 'Remove the specified link' },
    { name: 'volumes', short: 'v', type: 'bool', description: 'Remove anonymous volumes associated with the container' },
  ],
};

const waitSpec: CommandSpec = {
  usage: 'wait CONTAINER [CONTAINER...]',
  description: 'Block until one or more containers stop, then print their exit codes',
  minArgs: 1,
  flags: [],
};

const simple = (verb: string, description: string): CommandSpec => ({
  usage: `${verb} CONTAINER [CONTAINER...]`,
  description,
  minArgs: 1,
  flags: [],
});

export const commands: Record<string, Command> = {
  start: { spec: startSpec, run: start },
  stop: {
    spec: stopSpec,
    run: (ctx, p) => each(ctx, p.args, (n) => ctx.client.call('POST', `/containers/${id(n)}/stop`, { query: stopQuery(p) }).then(() => {})),
  },
  restart: {
    spec: restartSpec,
    run: (ctx, p) => each(ctx, p.args, (n) => ctx.client.call('POST', `/containers/${id(n)}/restart`, { query: stopQuery(p) }).then(() => {})),
  },
  kill: {
    spec: killSpec,
    run: (ctx, p) =>
      each(ctx, p.args, (n) => ctx.client.call('POST', `/containers/${id(n)}/kill`, { query: { signal: str(p, 'signal') || undefined } }).then(() => {})),
  },
  rm: {
    spec: rmSpec,
    run: (ctx, p) =>
      each(ctx, p.args, (n) =>
        ctx.client
          .call('DELETE', `/containers/${id(n.replace(/^\//, ''))}`, {
            query: { force: bool(p, 'force') || undefined, v: bool(p, 'volumes') || undefined, link: bool(p, 'link') || undefined },
          })
          .then(() => {}),
      ),
  },
  wait: {
    spec: waitSpec,
    run: (ctx, p) =>
      each(ctx, p.args, async (n) => {
        const r = await ctx.client.call<WaitResponse>('POST', `/containers/${id(n)}/wait`);
        return String(r.StatusCode);
      }),
  },
  pause: {
    spec: simple('pause', 'Pause all processes within one or more containers'),
    run: (ctx, p) => each(ctx, p.args, (n) => ctx.client.call('POST', `/containers/${id(n)}/pause`).then(() => {})),
  },
  unpause: {
    spec: simple('unpause', 'Unpause all processes within one or more containers'),
    run: (ctx, p) => each(ctx, p.args, (n) => ctx.client.call('POST', `/containers/${id(n)}/unpause`).then(() => {})),
  },
  rename: {
    spec: { usage: 'rename CONTAINER NEW_NAME', description: 'Rename a container', minArgs: 2, maxArgs: 2, flags: [] },
    run: async (ctx, p) => {
      const [oldName, newName] = [p.args[0]!.trim(), p.args[1]!.trim()];
      if (oldName === '' || newName === '') {
        ctx.err('Error: Neither old nor new names may be empty\n');
        return 1;
      }
      try {
        await ctx.client.call('POST', `/containers/${id(oldName)}/rename`, { query: { name: newName } });
      } catch (err) {
        if (!(err instanceof CliError)) throw err;
        // docker prints the daemon's error, then its own line.
        ctx.err(`${err.message}\nError: failed to rename container named ${oldName}\n`);
        return 1;
      }
      return 0;
    },
  },
};
