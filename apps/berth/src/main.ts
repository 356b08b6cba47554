/**
 * `berth`: docker's verbs and flags over the Engine API. This file only parses the global
 * flags and picks the command; every command module is imported lazily so `berth --help` and
 * `berth version` load almost nothing.
 */
import { UsageError, parseArgs, renderHelp, type CommandSpec, type ParsedArgs } from './cli/args.js';
import type { Context } from './context.js';
import { stdoutPending, stdout, writeOut } from './output/stdio.js';

export interface Command {
  spec: CommandSpec;
  run(ctx: Context, p: ParsedArgs): Promise<number>;
}

type Loader = () => Promise<Record<string, Command>>;

const lifecycle: Loader = async () => (await import('./commands/lifecycle.js')).commands;
const run: Loader = async () => (await import('./commands/run.js')).commands;
const ps: Loader = async () => (await import('./commands/ps.js')).commands;
const inspect: Loader = async () => (await import('./commands/inspect.js')).commands;
const logs: Loader = async () => (await import('./commands/logs.js')).commands;
const attach: Loader = async () => (await import('./commands/attach.js')).commands;
const exec: Loader = async () => (await import('./commands/exec.js')).commands;
const misc: Loader = async () => (await import('./commands/misc.js')).commands;
const images: Loader = async () => (await import('./commands/images.js')).commands;
const system: Loader = async () => (await import('./commands/system.js')).commands;
const registry: Loader = async () => (await import('./commands/registry.js')).commands;
const imageOps: Loader = async () => (await import('./commands/image-ops.js')).commands;
const archive: Loader = async () => (await import('./commands/archive.js')).commands;
const login: Loader = async () => (await import('./commands/login.js')).commands;
const network: Loader = async () => (await import('./commands/network.js')).commands;
const volume: Loader = async () => (await import('./commands/volume.js')).commands;
const stats: Loader = async () => (await import('./commands/stats.js')).commands;
const update: Loader = async () => (await import('./commands/update.js')).commands;
const buildCmd: Loader = async () => (await import('./commands/build.js')).commands;
const kernel: Loader = async () => (await import('./commands/kernel.js')).commands;

/** name -> [loader, key in the module, one-line description for `berth --help`]. */
const TOP: Record<string, [Loader, string, string]> = {
  run: [run, 'run', 'Create and run a new container from an image'],
  exec: [exec, 'exec', 'Execute a command in a running container'],
  ps: [ps, 'ps', 'List containers'],
  images: [images, 'images', 'List images'],
  version: [system, 'version', 'Show the Berth version information'],
  info: [system, 'info', 'Display system-wide information'],
  attach: [attach, 'attach', "Attach local standard input, output, and error streams to a running container"],
  build: [buildCmd, 'build', 'Build an image from a Dockerfile'],
  commit: [imageOps, 'commit', "Create a new image from a container's changes"],
  cp: [imageOps, 'cp', 'Copy files/folders between a container and the local filesystem'],
  create: [run, 'create', 'Create a new container'],
  diff: [imageOps, 'diff', "Inspect changes to files or directories on a container's filesystem"],
  events: [misc, 'events', 'Get real time events from the server'],
  export: [misc, 'export', "Export a container's filesystem as a tar archive"],
  history: [imageOps, 'history', 'Show the history of an image'],
  import: [images, 'import', 'Import the contents from a tarball to create a filesystem image'],
  inspect: [inspect, 'inspect', 'Return low-level information on Berth objects'],
  kill: [lifecycle, 'kill', 'Kill one or more running containers'],
  load: [archive, 'load', 'Load an image from a tar archive or STDIN'],
  login: [login, 'login', 'Log in to a registry'],
  logout: [login, 'logout', 'Log out from a registry'],
  logs: [logs, 'logs', 'Fetch the logs of a container'],
  pause: [lifecycle, 'pause', 'Pause all processes within one or more containers'],
  port: [network, 'port', 'List port mappings or a specific mapping for the container'],
  pull: [registry, 'pull', 'Download an image from a registry'],
  push: [registry, 'push', 'Upload an image to a registry'],
  rename: [lifecycle, 'rename', 'Rename a container'],
  restart: [lifecycle, 'restart', 'Restart one or more containers'],
  rm: [lifecycle, 'rm', 'Remove one or more containers'],
  rmi: [images, 'rmi', 'Remove one or more images'],
  save: [archive, 'save', 'Save one or more images to a tar archive (streamed to STDOUT by default)'],
  start: [lifecycle, 'start', 'Start one or more stopped containers'],
  stats: [stats, 'stats', 'Display a live stream of container(s) resource usage statistics'],
  stop: [lifecycle, 'stop', 'Stop one or more running containers'],
  tag: [images, 'tag', 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE'],
  top: [misc, 'top', 'Display the running processes of a container'],
  unpause: [lifecycle, 'unpause', 'Unpause all processes within one or more containers'],
  update: [update, 'update', 'Update configuration of one or more containers'],
  wait: [lifecycle, 'wait', 'Block until one or more containers stop, then print their exit codes'],
};

const CONTAINER: Record<string, [Loader, string]> = {
  attach: [attach, 'attach'],
  commit: [imageOps, 'commit'],
  cp: [imageOps, 'cp'],
  create: [run, 'create'],
  diff: [imageOps, 'diff'],
  exec: [exec, 'exec'],
  export: [misc, 'export'],
  inspect: [inspect, 'container inspect'],
  kernel: [kernel, 'container kernel'],
  kill: [lifecycle, 'kill'],
  logs: [logs, 'logs'],
  ls: [ps, 'ps'],
  list: [ps, 'ps'],
  ps: [ps, 'ps'],
  pause: [lifecycle, 'pause'],
  port: [network, 'port'],
  prune: [imageOps, 'container prune'],
  rename: [lifecycle, 'rename'],
  restart: [lifecycle, 'restart'],
  rm: [lifecycle, 'rm'],
  remove: [lifecycle, 'rm'],
  run: [run, 'run'],
  start: [lifecycle, 'start'],
  stats: [stats, 'stats'],
  stop: [lifecycle, 'stop'],
  top: [misc, 'top'],
  unpause: [lifecycle, 'unpause'],
  update: [update, 'update'],
  wait: [lifecycle, 'wait'],
};

const IMAGE: Record<string, [Loader, string]> = {
  build: [buildCmd, 'build'],
  history: [imageOps, 'history'],
  prune: [imageOps, 'image prune'],
  import: [images, 'import'],
  inspect: [inspect, 'image inspect'],
  load: [archive, 'load'],
  save: [archive, 'save'],
  ls: [images, 'images'],
  list: [images, 'images'],
  pull: [registry, 'pull'],
  push: [registry, 'push'],
  rm: [images, 'rmi'],
  remove: [images, 'rmi'],
  tag: [images, 'tag'],
};

const NETWORK: Record<string, [Loader, string]> = {
  connect: [network, 'network connect'],
  create: [network, 'network create'],
  disconnect: [network, 'network disconnect'],
  inspect: [inspect, 'network inspect'],
  ls: [network, 'network ls'],
  list: [network, 'network ls'],
  prune: [network, 'network prune'],
  rm: [network, 'network rm'],
  remove: [network, 'network rm'],
};

const VOLUME: Record<string, [Loader, string]> = {
  create: [volume, 'volume create'],
  inspect: [volume, 'volume inspect'],
  ls: [volume, 'volume ls'],
  list: [volume, 'volume ls'],
  prune: [volume, 'volume prune'],
  rm: [volume, 'volume rm'],
  remove: [volume, 'volume rm'],
};

const SYSTEM: Record<string, [Loader, string]> = {
  df: [imageOps, 'system df'],
  events: [misc, 'events'],
  info: [system, 'info'],
  prune: [imageOps, 'system prune'],
};

const GLOBAL: CommandSpec = {
  usage: '[OPTIONS] COMMAND',
  description: 'A self-sufficient runtime for containers',
  stopAtFirstPositional: true,
  flags: [
    { name: 'host', short: 'H', type: 'list', valueName: 'list', description: 'Daemon socket to connect to' },
    { name: 'debug', short: 'D', type: 'bool', description: 'Enable debug mode' },
    { name: 'log-level', short: 'l', type: 'string', valueName: 'string', description: 'Set the logging level ("debug", "info", "warn", "error", "fatal")', default: 'info' },
    { name: 'config', type: 'string', valueName: 'string', description: 'Location of client config files', hidden: true },
    { name: 'version', short: 'v', type: 'bool', description: 'Print version information and quit' },
  ],
};

function mainHelp(): string {
  const names = Object.keys(TOP);
  const w = Math.max(...names.map((n) => n.length)) + 4;
  const cmds = names.map((n) => `  ${n.padEnd(w)}${TOP[n]![2]}`).join('\n');
  return (
    renderHelp('berth', GLOBAL).replace(/\nOptions:/, '\nManagement Commands:\n  container   Manage containers\n  image       Manage images\n  network     Manage networks\n  system      Manage Berth\n  volume      Manage volumes\n\nCommands:\n' + cmds + '\n\nGlobal Options:') +
    "\nRun 'berth COMMAND --help' for more information on a command.\n"
  );
}

/** `berth <group> --help`: each subcommand with its description, as docker lists them (an alias of one already listed, such as `list` of `ls`, left out). */
async function subHelp(group: string, table: Record<string, [Loader, string]>): Promise<string> {
  const seen = new Set<string>();
  const rows: string[] = [];
  for (const [name, [load, key]] of Object.entries(table)) {
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push(`  ${name.padEnd(11)}${(await load())[key]?.spec.description ?? ''}`);
  }
  const what = group === 'system' ? 'Manage Berth' : `Manage ${group}s`;
  return `\nUsage:  berth ${group} COMMAND\n\n${what}\n\nCommands:\n${rows.join('\n')}\n\nRun 'berth ${group} COMMAND --help' for more information on a command.\n`;
}

function writeErr(s: string): void {
  process.stderr.write(s.endsWith('\n') ? s : s + '\n');
}

export async function main(argv: string[]): Promise<number> {
  let g: ParsedArgs;
  try {
    g = parseArgs(GLOBAL, argv);
  } catch (err) {
    writeErr(`${(err as Error).message}\nSee 'berth --help'.`);
    return 125;
  }
  if (g.flags.version) {
    writeOut('Berth version 0.1.0\n');
    return 0;
  }
  const [name, ...rest] = g.args;
  if (!name || (g.help && !name)) {
    writeOut(mainHelp());
    return 0;
  }
  let entry: [Loader, string] | undefined;
  let path = name;
  let argsLeft = rest;
  if (name === 'container' || name === 'image' || name === 'network' || name === 'volume' || name === 'system') {
    const table = name === 'container' ? CONTAINER : name === 'image' ? IMAGE : name === 'network' ? NETWORK : name === 'volume' ? VOLUME : SYSTEM;
    const sub = rest[0];
    if (!sub || sub === '--help' || sub === '-h') {
      writeOut(await subHelp(name, table));
      return 0;
    }
    entry = table[sub];
    if (!entry) {
      writeErr(`berth: '${name} ${sub}' is not a berth command.\nSee 'berth ${name} --help'`);
      return 1;
    }
    path = `${name} ${sub}`;
    argsLeft = rest.slice(1);
  } else {
    const top = TOP[name];
    if (!top) {
      if (name === 'help') {
        writeOut(mainHelp());
        return 0;
      }
      writeErr(`berth: '${name}' is not a berth command.\nSee 'berth --help'`);
      return 1;
    }
    entry = [top[0], top[1]];
  }
  const mod = await entry[0]();
  const cmd = mod[entry[1]]!;
  let p: ParsedArgs;
  try {
    p = parseArgs(cmd.spec, argsLeft);
  } catch (err) {
    if (err instanceof UsageError) {
      writeErr(`${err.message}\n\nUsage:  berth ${cmd.spec.usage}\n\nRun 'berth ${path} --help' for more information`);
      return 125;
    }
    throw err;
  }
  if (p.help) {
    writeOut(renderHelp('berth', { ...cmd.spec, usage: cmd.spec.usage.replace(/^\S+/, path) }));
    return 0;
  }
  const min = cmd.spec.minArgs ?? 0;
  const max = cmd.spec.maxArgs;
  if (p.args.length < min || (max !== undefined && p.args.length > max)) {
    const what =
      max === min
        ? `exactly ${min} argument${min === 1 ? '' : 's'}`
        : p.args.length < min
          ? `at least ${min} argument${min === 1 ? '' : 's'}`
          : max === 0
            ? 'no arguments'
            : `at most ${max} argument${max === 1 ? '' : 's'}`;
    writeErr(`berth: 'berth ${path}' requires ${what}\n\nUsage:  berth ${cmd.spec.usage.replace(/^\S+/, path)}\n\nRun 'berth ${path} --help' for more information`);
    return 1;
  }
  const hosts = g.flags.host as string[];
  const { makeContext } = await import('./context.js');
  const ctx = makeContext(hosts[hosts.length - 1] ?? process.env.BERTH_HOST ?? undefined, path);
  try {
    return await cmd.run(ctx, p);
  } catch (err) {
    const { reportError } = await import('./context.js');
    return reportError(err);
  }
}

/** Exit once stdout has drained (a hijacked socket or stdin must not keep the process alive). */
export function exit(code: number): void {
  const done = (): never => process.exit(code);
  if (stdoutPending() > 0) stdout().once('drain', done);
  else done();
}
