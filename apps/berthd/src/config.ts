import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { BerthError } from '@berth/errors';
import type { Level } from '@berth/log';

/** berthd's settings, from flags and the config file (Docker's daemon.json key names). */
export interface DaemonConfig {
  dataRoot: string;
  execRoot: string;
  hosts: string[];
  logLevel: Level;
  storageDriver: string;
  liveRestore: boolean;
  pidfile: string;
  configFile: string;
  /** Registries reachable over plain HTTP: host[:port] or CIDR (loopback always is). */
  insecureRegistries: string[];
  /** The default network's Linux bridge; `none`: no networking (bridge mode = a private netns with lo). */
  bridge: string;
  /** The default bridge's address (CIDR): its gateway and subnet. '' = the first free default pool. */
  bip: string;
  mtu: number;
  icc: boolean;
  iptables: boolean;
  userlandProxy: boolean;
  /** berthd serves no TLS: false (set explicitly) lets a tcp listener on a non-loopback address through. */
  tls?: boolean;
  /** Group of the unix sockets (a name or a gid); unset: `berth` when that group exists. */
  group?: string;
  /** Authorization plugins, in chain order (`--authorization-plugin`, `authorization-plugins`). */
  authorizationPlugins: string[];
}

export const DEFAULTS = {
  dataRoot: '/var/lib/berth',
  execRoot: '/run/berth',
  hosts: ['unix:///run/berth/berth.sock'],
  logLevel: 'info' as Level,
  storageDriver: '',
  liveRestore: true,
  pidfile: '/run/berth/berthd.pid',
  configFile: '/etc/berth/daemon.json',
  insecureRegistries: [] as string[],
  bridge: 'berth0',
  bip: '',
  mtu: 1500,
  icc: true,
  iptables: true,
  userlandProxy: false,
  authorizationPlugins: [] as string[],
};

/** Config file key -> setting. Keys are Docker's daemon.json names. */
const FILE_KEYS = {
  'data-root': 'dataRoot',
  'exec-root': 'execRoot',
  hosts: 'hosts',
  'log-level': 'logLevel',
  'storage-driver': 'storageDriver',
  'live-restore': 'liveRestore',
  pidfile: 'pidfile',
  'insecure-registries': 'insecureRegistries',
  bridge: 'bridge',
  bip: 'bip',
  mtu: 'mtu',
  icc: 'icc',
  iptables: 'iptables',
  'userland-proxy': 'userlandProxy',
  tls: 'tls',
  group: 'group',
  'authorization-plugins': 'authorizationPlugins',
} as const satisfies Record<string, keyof DaemonConfig>;
type FileKey = keyof typeof FILE_KEYS;

const LEVELS: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const USAGE = `Usage: berthd [OPTIONS]

A container engine daemon that speaks the Docker Engine API.

Options:
      --config-file string      Daemon configuration file (default "${DEFAULTS.configFile}")
      --data-root string        Root directory of persistent state (default "${DEFAULTS.dataRoot}")
      --exec-root string        Root directory of execution state (default "${DEFAULTS.execRoot}")
  -H, --host list               Daemon socket(s) to listen on: unix:///path or tcp://host:port
                                (default ${DEFAULTS.hosts[0]})
  -G, --group string            Group of the unix sockets, a name or a gid (default "berth" when
                                that group exists)
  -l, --log-level string        fatal, error, warn, info, debug or trace (default "info")
      --live-restore            Keep containers alive while the daemon is down (default true;
                                --live-restore=false: they are killed when berthd starts again)
  -p, --pidfile string          Path of the daemon's pid file (default "${DEFAULTS.pidfile}")
  -s, --storage-driver string   Storage driver: overlay2 or vfs (default: the one holding data in the
                                data root, else the first of overlay2, vfs that works here)
      --insecure-registry list  Registry (host[:port] or CIDR) to reach over plain HTTP; 127.0.0.0/8
                                always is
  -b, --bridge string           Linux bridge of the default network, "none" for no networking
                                (default "berth0")
      --bip string             Address (CIDR) of the default bridge; it gives the subnet
      --mtu int                 MTU of the default network (default 1500)
      --icc                     Containers on the default network may talk to each other (default true)
      --iptables                Program iptables rules (default true)
      --userland-proxy          Publish ports through a proxy process in berthd instead of DNAT only
                                (default false)
      --authorization-plugin list
                                Authorization plugin to ask about every request (repeat the flag
                                for a chain, asked in order)
      --tls                     berthd serves no TLS; --tls=false lets -H tcp://<address other than
                                loopback> listen without it (whoever reaches it is root here)
  -h, --help                    Print usage
  -v, --version                 Print version information and quit
`;

const invalid = (message: string, field: string): BerthError => new BerthError('BERTH_INVALID_ARGUMENT', message, { details: { field } });

export interface ParsedArgs {
  help: boolean;
  version: boolean;
  /** Only the settings given as flags. */
  flags: Partial<DaemonConfig>;
  configFile: string | undefined;
}

export function parseFlags(argv: readonly string[]): ParsedArgs {
  // Go's boolean flags take `--live-restore=false`; node's parseArgs booleans take no value.
  let liveRestore: boolean | undefined;
  const args = argv.filter((a) => {
    const m = /^--live-restore=(.*)$/s.exec(a);
    if (m) liveRestore = flagBool(m[1]!, 'live-restore');
    return !m;
  });
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        'config-file': { type: 'string' },
        'data-root': { type: 'string' },
        'exec-root': { type: 'string' },
        host: { type: 'string', short: 'H', multiple: true },
        group: { type: 'string', short: 'G' },
        'log-level': { type: 'string', short: 'l' },
        'live-restore': { type: 'boolean' },
        pidfile: { type: 'string', short: 'p' },
        'storage-driver': { type: 'string', short: 's' },
        'insecure-registry': { type: 'string', multiple: true },
        bridge: { type: 'string', short: 'b' },
        bip: { type: 'string' },
        mtu: { type: 'string' },
        icc: { type: 'string' },
        iptables: { type: 'string' },
        'userland-proxy': { type: 'string' },
        tls: { type: 'string' },
        'authorization-plugin': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw invalid(`${err instanceof Error ? err.message : String(err)}\nSee 'berthd --help'.`, 'flags');
  }
  const v = parsed.values;
  const flags: Partial<DaemonConfig> = {};
  if (v['data-root'] !== undefined) flags.dataRoot = v['data-root'];
  if (v['exec-root'] !== undefined) flags.execRoot = v['exec-root'];
  if (v.host !== undefined) flags.hosts = v.host;
  if (v.group !== undefined) flags.group = v.group;
  if (v['log-level'] !== undefined) flags.logLevel = checkLevel(v['log-level']);
  if (v['live-restore'] !== undefined) flags.liveRestore = v['live-restore'];
  if (liveRestore !== undefined) flags.liveRestore = liveRestore;
  if (v.pidfile !== undefined) flags.pidfile = v.pidfile;
  if (v['storage-driver'] !== undefined) flags.storageDriver = v['storage-driver'];
  if (v['insecure-registry'] !== undefined) flags.insecureRegistries = v['insecure-registry'];
  if (v.bridge !== undefined) flags.bridge = v.bridge;
  if (v.bip !== undefined) flags.bip = v.bip;
  if (v.mtu !== undefined) flags.mtu = checkMtu(v.mtu, 'mtu');
  if (v.icc !== undefined) flags.icc = flagBool(v.icc, 'icc');
  if (v.iptables !== undefined) flags.iptables = flagBool(v.iptables, 'iptables');
  if (v['userland-proxy'] !== undefined) flags.userlandProxy = flagBool(v['userland-proxy'], 'userland-proxy');
  if (v.tls !== undefined) flags.tls = flagBool(v.tls, 'tls');
  if (v['authorization-plugin'] !== undefined) flags.authorizationPlugins = checkPluginNames(v['authorization-plugin'], 'authorization-plugin');
  return { help: v.help ?? false, version: v.version ?? false, flags, configFile: v['config-file'] };
}

/** Go's flag booleans: `--icc=false`; parseArgs gives strings so that `=false` is honoured. */
function flagBool(s: string, key: string): boolean {
  if (['1', 't', 'true', 'T', 'TRUE', 'True', ''].includes(s)) return true;
  if (['0', 'f', 'false', 'F', 'FALSE', 'False'].includes(s)) return false;
  throw invalid(`invalid boolean value ${JSON.stringify(s)} for --${key}`, key);
}

function checkMtu(v: unknown, key: string): number {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 68 || n > 65535) throw invalid(`invalid ${key} ${String(v)}: must be an integer from 68 to 65535`, key);
  return n;
}

/**
 * A plugin name is looked up as `<dir>/<name>.sock|.spec|.json`: no path separator, no NUL, no
 * blank, not `.` or `..`, and no leading `-` (a flag mistaken for a name).
 */
function checkPluginNames(names: readonly string[], key: string): string[] {
  for (const name of names) {
    if (name === '' || name === '.' || name === '..' || name.startsWith('-') || /[/\0\s]/.test(name))
      throw invalid(`invalid authorization plugin name ${JSON.stringify(name)}: want the name of a plugin in /run/berth/plugins, /run/docker/plugins or a spec dir`, key);
  }
  return [...names];
}

function checkLevel(s: string): Level {
  if (!(LEVELS as readonly string[]).includes(s)) throw invalid(`unknown log level ${JSON.stringify(s)}: use one of ${LEVELS.join(', ')}`, 'log-level');
  return s as Level;
}

/** Validates a parsed daemon.json into settings; names the file and the key on errors. */
export function parseConfigFile(text: string, path: string): Partial<DaemonConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalid(`unable to configure the daemon with file ${path}: ${err instanceof Error ? err.message : String(err)}`, 'config-file');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid(`unable to configure the daemon with file ${path}: not a JSON object`, 'config-file');
  const entries = Object.entries(raw as Record<string, unknown>);
  const unknown = entries.map(([k]) => k).filter((k) => !(k in FILE_KEYS));
  if (unknown.length)
    throw invalid(`unable to configure the daemon with file ${path}: the following directives don't match any configuration option: ${unknown.join(', ')}`, unknown[0]!);
  const out: Partial<DaemonConfig> = {};
  const bad = (key: string, want: string): BerthError => invalid(`unable to configure the daemon with file ${path}: ${key} must be ${want}`, key);
  for (const [key, value] of entries as [FileKey, unknown][]) {
    switch (key) {
      case 'hosts':
        if (!Array.isArray(value) || !value.every((h) => typeof h === 'string')) throw bad(key, 'an array of strings');
        out.hosts = value as string[];
        break;
      case 'authorization-plugins':
        if (!Array.isArray(value) || !value.every((h) => typeof h === 'string')) throw bad(key, 'an array of strings');
        out.authorizationPlugins = checkPluginNames(value as string[], key);
        break;
      case 'insecure-registries':
        if (!Array.isArray(value) || !value.every((h) => typeof h === 'string')) throw bad(key, 'an array of strings');
        out.insecureRegistries = value as string[];
        break;
      case 'live-restore':
        if (typeof value !== 'boolean') throw bad(key, 'a boolean');
        out.liveRestore = value;
        break;
      case 'icc':
      case 'iptables':
      case 'userland-proxy':
      case 'tls':
        if (typeof value !== 'boolean') throw bad(key, 'a boolean');
        out[FILE_KEYS[key]] = value;
        break;
      case 'mtu':
        out.mtu = checkMtu(value, key);
        break;
      case 'bip':
        if (typeof value !== 'string') throw bad(key, 'a string');
        out.bip = value;
        break;
      case 'log-level':
        if (typeof value !== 'string') throw bad(key, 'a string');
        out.logLevel = checkLevel(value);
        break;
      default: {
        if (typeof value !== 'string' || value === '') throw bad(key, 'a non-empty string');
        const setting = FILE_KEYS[key] as 'dataRoot' | 'execRoot' | 'storageDriver' | 'pidfile' | 'bridge' | 'group';
        out[setting] = value;
      }
    }
  }
  return out;
}

const fileKeyOf = (setting: string): string => Object.entries(FILE_KEYS).find(([, s]) => s === setting)![0];

/** Flags over file over defaults; a setting given both as a flag and in the file is an error (as in Docker). */
export function mergeConfig(flags: Partial<DaemonConfig>, file: Partial<DaemonConfig>, configFile: string): DaemonConfig {
  const both = Object.keys(flags).filter((k) => k in file) as (keyof DaemonConfig)[];
  if (both.length) {
    const list = both.map((k) => `${fileKeyOf(k)}: (from flag: ${show(flags[k])}, from file: ${show(file[k])})`).join(', ');
    throw invalid(
      `unable to configure the daemon with file ${configFile}: the following directives are specified both as a flag and in the configuration file: ${list}`,
      fileKeyOf(both[0]!),
    );
  }
  return { ...DEFAULTS, ...file, ...flags, configFile };
}

function show(v: unknown): string {
  return Array.isArray(v) ? `[${v.join(' ')}]` : String(v);
}

/**
 * Reads the settings: flags, then the config file. A missing file is no file (unlike dockerd,
 * which refuses a missing --config-file: test/support points every daemon at a file that does
 * not exist to keep the host's /etc/berth/daemon.json out); `fileFound` tells the caller.
 */
export async function loadConfig(parsed: ParsedArgs): Promise<DaemonConfig & { fileFound: boolean }> {
  const path = parsed.configFile ?? DEFAULTS.configFile;
  let file: Partial<DaemonConfig> = {};
  let fileFound = true;
  try {
    file = parseConfigFile(await readFile(path, 'utf8'), path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fileFound = false;
  }
  return { ...mergeConfig(parsed.flags, file, path), fileFound };
}
