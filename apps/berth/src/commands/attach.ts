/** `attach`: hijacked attach to a running container; exit code from wait once the output ends. */
import type { ContainerInspect } from '@berth/api/wire';
import { bool, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { DEFAULT_DETACH_KEYS, monitorTtySize, proxySignals, runSession } from '../session.js';
import { startWait } from './run.js';

const attachSpec: CommandSpec = {
  usage: 'attach [OPTIONS] CONTAINER',
  description: 'Attach local standard input, output, and error streams to a running container',
  minArgs: 1,
  maxArgs: 1,
  flags: [
    { name: 'detach-keys', type: 'string', valueName: 'string', description: 'Override the key sequence for detaching a container' },
    { name: 'no-stdin', type: 'bool', description: 'Do not attach STDIN' },
    { name: 'sig-proxy', type: 'bool', default: true, description: 'Proxy all received signals to the process' },
  ],
};

async function attach(ctx: Context, p: ParsedArgs): Promise<number> {
  const c = ctx.client;
  const info = await c.get<ContainerInspect>(`/containers/${encodeURIComponent(p.args[0]!)}/json`);
  if (!info.State.Running) throw new CliError('You cannot attach to a stopped container, start it first');
  if (info.State.Paused) throw new CliError('You cannot attach to a paused container, unpause it first');
  if (info.State.Restarting) throw new CliError('You cannot attach to a restarting container, wait until it is running');
  const tty = info.Config.Tty;
  const stdin = !bool(p, 'no-stdin') && info.Config.OpenStdin;
  if (stdin && tty && !process.stdin.isTTY) throw new CliError('the input device is not a TTY');
  const detachKeys = p.given.has('detach-keys') ? str(p, 'detach-keys') : DEFAULT_DETACH_KEYS;
  const query: Record<string, string> = { stream: '1', stdout: '1', stderr: '1' };
  if (stdin) query.stdin = '1';
  if (p.given.has('detach-keys')) query.detachKeys = detachKeys;
  const h = await c.hijack(`/containers/${info.Id}/attach`, { query });
  const wait = await startWait(c, info.Id, 'not-running');
  const stopResize = tty ? monitorTtySize((hh, w) => c.call('POST', `/containers/${info.Id}/resize`, { query: { h: hh, w } })) : () => {};
  const stopProxy = !tty && bool(p, 'sig-proxy') ? proxySignals((signal) => c.call('POST', `/containers/${info.Id}/kill`, { query: { signal } })) : () => {};
  const how = await runSession({ socket: h.socket, head: h.head, tty, stdin, detachKeys }).finally(() => {
    stopResize();
    stopProxy();
  });
  if (how === 'detached') {
    wait.cancel();
    return 0;
  }
  const status = await wait.result;
  return status.StatusCode;
}

export const commands: Record<string, Command> = {
  attach: { spec: attachSpec, run: attach },
};
