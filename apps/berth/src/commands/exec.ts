/**
 * `exec`: inspect → POST /containers/{C}/exec → POST /exec/{id}/start (hijacked, or Detach) →
 * resize for a TTY → GET /exec/{id}/json for the exit code.
 */
import type { ExecCreateBody, ExecInspect } from '@berth/api/wire';
import { bool, list, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError, compareVersions } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { consoleSize, DEFAULT_DETACH_KEYS, monitorTtySize, runSession } from '../session.js';
import { envEntry, readEnvFile } from './run.js';

const execSpec: CommandSpec = {
  usage: 'exec [OPTIONS] CONTAINER COMMAND [ARG...]',
  description: 'Execute a command in a running container',
  minArgs: 2,
  stopAtFirstPositional: true,
  aliases: ['berth container exec', 'berth exec'],
  flags: [
    { name: 'detach', short: 'd', type: 'bool', description: 'Detached mode: run command in the background' },
    { name: 'detach-keys', type: 'string', valueName: 'string', description: 'Override the key sequence for detaching a container' },
    { name: 'env', short: 'e', type: 'list', valueName: 'list', description: 'Set environment variables' },
    { name: 'env-file', type: 'list', valueName: 'list', description: 'Read in a file of environment variables' },
    { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
    { name: 'privileged', type: 'bool', description: 'Give extended privileges to the command' },
    { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
    { name: 'user', short: 'u', type: 'string', valueName: 'string', description: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
    { name: 'workdir', short: 'w', type: 'string', valueName: 'string', description: 'Working directory inside the container' },
  ],
};

async function exec(ctx: Context, p: ParsedArgs): Promise<number> {
  const c = ctx.client;
  const [container, ...cmd] = p.args;
  const detach = bool(p, 'detach');
  const tty = bool(p, 'tty');
  const interactive = bool(p, 'interactive');
  if (interactive && tty && !detach && !process.stdin.isTTY) throw new CliError('the input device is not a TTY');
  await c.get(`/containers/${encodeURIComponent(container!)}/json`);
  const body: ExecCreateBody = {
    User: str(p, 'user'),
    Privileged: bool(p, 'privileged'),
    Tty: tty,
    AttachStdin: interactive && !detach,
    AttachStdout: !detach,
    AttachStderr: !detach,
    Detach: detach,
    Env: [...list(p, 'env-file').flatMap(readEnvFile), ...list(p, 'env').map(envEntry)],
    WorkingDir: str(p, 'workdir'),
    Cmd: cmd,
  };
  if (p.given.has('detach-keys')) body.DetachKeys = str(p, 'detach-keys');
  const newConsole = compareVersions(c.apiVersion, '1.42') >= 0;
  if (tty && newConsole) body.ConsoleSize = consoleSize();
  const { Id: execId } = await c.post<{ Id: string }>(`/containers/${encodeURIComponent(container!)}/exec`, undefined, body);
  const startBody: Record<string, unknown> = { Detach: detach, Tty: tty };
  if (tty && newConsole) startBody.ConsoleSize = consoleSize();
  if (detach) {
    await c.post(`/exec/${execId}/start`, undefined, startBody);
    return 0;
  }
  const h = await c.hijack(`/exec/${execId}/start`, { body: startBody, headers: { 'Content-Type': 'application/json' } });
  const detachKeys = p.given.has('detach-keys') ? str(p, 'detach-keys') : DEFAULT_DETACH_KEYS;
  const stopResize = tty ? monitorTtySize((hh, w) => c.call('POST', `/exec/${execId}/resize`, { query: { h: hh, w } })) : () => {};
  const how = await runSession({ socket: h.socket, head: h.head, tty, stdin: interactive, detachKeys }).finally(stopResize);
  if (how === 'detached') return 0;
  const inspect = await c.get<ExecInspect>(`/exec/${execId}/json`);
  return inspect.ExitCode ?? 0;
}

export const commands: Record<string, Command> = {
  exec: { spec: execSpec, run: exec },
};
