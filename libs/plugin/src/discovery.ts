/**
 * Finding v1 plugins by name (specs/plugin-protocol.md §1, §2): `<name>.sock` in the socket
 * dirs (Berth's, then Docker's), `<name>.spec` (a URL) and `<name>.json` ({Addr, TLSConfig})
 * in the spec dirs, each also as `<name>/<name>.<ext>`. Activation is cached per name for the
 * registry's lifetime; a failed activation is forgotten so the next use tries again.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BerthError } from '@berth/errors';
import { pluginSocketDirs, pluginSpecDirs, Subsystem, type DriverLogger } from '@berth/plugin-api';
import { activateWith, connect, type ConnectOptions, type RemoteAuthzPlugin, type RemoteGraphDriverClient, type RemoteIpamDriver, type RemoteNetworkDriver, type RemoteVolumeDriver } from './client.js';
import { PluginTransport, dockerRetryPolicy, noRetryPolicy, parseAddress, withRetry, type PluginTls, type RetryPolicy } from './transport.js';

export interface PluginSpec {
  name: string;
  /** unix:///..., tcp://..., http(s)://... */
  addr: string;
  tls?: PluginTls;
  /** The file it came from. */
  source: string;
}

export interface DiscoveryOptions {
  socketDirs?: readonly string[];
  specDirs?: readonly string[];
}

const validName = (name: string): boolean => name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');

async function isSocket(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isSocket();
  } catch {
    return false;
  }
}

async function readText(p: string): Promise<string | undefined> {
  try {
    return await fs.readFile(p, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Reads a `.spec` or `.json` file into a spec (errors name the file). */
export function parseSpecFile(name: string, file: string, text: string): PluginSpec {
  if (file.endsWith('.json')) {
    let j: { Addr?: unknown; TLSConfig?: PluginTls | null };
    try {
      j = JSON.parse(text) as typeof j;
    } catch (err) {
      throw new BerthError('BERTH_INVALID_ARGUMENT', `plugin spec ${file}: ${(err as Error).message}`);
    }
    if (typeof j?.Addr !== 'string' || j.Addr === '') throw new BerthError('BERTH_INVALID_ARGUMENT', `plugin spec ${file}: no Addr`);
    parseAddress(j.Addr);
    const tls = j.TLSConfig ?? undefined;
    // §1.3: a TLSConfig without CAFile does not verify the server.
    const spec: PluginSpec = { name, addr: j.Addr, source: file };
    if (tls !== undefined) spec.tls = { ...tls, InsecureSkipVerify: tls.InsecureSkipVerify === true || !tls.CAFile };
    return spec;
  }
  const url = text.trim();
  if (url === '' || !/^[a-z]+:\/\//.test(url)) throw new BerthError('BERTH_INVALID_ARGUMENT', `plugin spec ${file}: ${JSON.stringify(url)}: Unknown protocol`);
  parseAddress(url);
  return { name, addr: url, source: file, tls: { InsecureSkipVerify: true } };
}

/** One lookup, no retry: the first hit of §1.2's order, or undefined. */
export async function findPlugin(name: string, opts: DiscoveryOptions = {}): Promise<PluginSpec | undefined> {
  if (!validName(name)) return undefined;
  for (const dir of opts.socketDirs ?? pluginSocketDirs) {
    for (const p of [path.join(dir, `${name}.sock`), path.join(dir, name, `${name}.sock`)]) {
      if (await isSocket(p)) return { name, addr: `unix://${p}`, source: p };
    }
  }
  for (const dir of opts.specDirs ?? pluginSpecDirs) {
    for (const p of [path.join(dir, `${name}.spec`), path.join(dir, name, `${name}.spec`), path.join(dir, `${name}.json`), path.join(dir, name, `${name}.json`)]) {
      const text = await readText(p);
      if (text !== undefined) return parseSpecFile(name, p, text);
    }
  }
  return undefined;
}

/**
 * `findPlugin` retried on the engine's schedule (a name that never appears fails after ~15 s
 * with the default policy, as in Docker), then BERTH_PLUGIN_NOT_FOUND.
 */
export async function discover(name: string, opts: DiscoveryOptions & { retry?: Partial<RetryPolicy>; sleep?: (ms: number) => Promise<void> } = {}): Promise<PluginSpec> {
  const policy = { ...dockerRetryPolicy, ...opts.retry };
  const notFound = new BerthError('BERTH_PLUGIN_NOT_FOUND', `plugin "${name}" not found`);
  return withRetry(
    policy,
    async () => {
      const spec = await findPlugin(name, opts);
      if (spec === undefined) throw notFound;
      return spec;
    },
    (e) => e === notFound,
    opts.sleep,
  );
}

/** Every discoverable plugin (sockets, then spec files; first name wins), no retry. */
export async function scanPlugins(opts: DiscoveryOptions = {}): Promise<PluginSpec[]> {
  const names: string[] = [];
  const list = async (dir: string, exts: string[]): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return; // missing or unreadable dirs are skipped
    }
    for (const e of entries) {
      const ext = exts.find((x) => e.name.endsWith(x));
      if (ext !== undefined) names.push(e.name.slice(0, -ext.length));
      else if (e.isDirectory()) {
        for (const x of exts) {
          try {
            await fs.stat(path.join(dir, e.name, `${e.name}${x}`));
            names.push(e.name);
            break;
          } catch {
            // not a plugin dir
          }
        }
      }
    }
  };
  for (const dir of opts.socketDirs ?? pluginSocketDirs) await list(dir, ['.sock']);
  for (const dir of opts.specDirs ?? pluginSpecDirs) await list(dir, ['.spec', '.json']);
  const out: PluginSpec[] = [];
  for (const name of [...new Set(names)]) {
    try {
      const spec = await findPlugin(name, opts);
      if (spec !== undefined) out.push(spec);
    } catch {
      // a broken spec file does not hide the others
    }
  }
  return out;
}

export interface ActivatedPlugin {
  spec: PluginSpec;
  implements: readonly string[];
  transport: PluginTransport;
}

export interface PluginRegistryOptions extends DiscoveryOptions {
  /** Lookup and call retries (default Docker's: ~15 s). */
  retry?: Partial<RetryPolicy>;
  logger?: DriverLogger;
  sleep?: (ms: number) => Promise<void>;
}

const notImplements = (name: string, subsystem: string): BerthError =>
  new BerthError('BERTH_PLUGIN_NOT_FOUND', `plugin "${name}": Plugin does not implement the requested driver (${subsystem})`);

/** Discovery + activation cache + driver objects for v1 plugins. */
export class PluginRegistry {
  readonly #active = new Map<string, Promise<ActivatedPlugin>>();
  readonly #drivers = new Map<string, unknown>();

  constructor(private readonly opts: PluginRegistryOptions = {}) {}

  /** Finds and activates `name` once; a failure is not cached. */
  activate(name: string, retry = true): Promise<ActivatedPlugin> {
    let p = this.#active.get(name);
    if (p === undefined) {
      p = this.#activate(name, retry);
      this.#active.set(name, p);
      p.catch(() => this.#active.delete(name));
    }
    return p;
  }

  /** The plugin `name` as a driver of `subsystem`; "Plugin does not implement the requested driver" otherwise. */
  async network(name: string): Promise<RemoteNetworkDriver> {
    return this.#driver(name, Subsystem.network) as Promise<RemoteNetworkDriver>;
  }
  async ipam(name: string): Promise<RemoteIpamDriver> {
    return this.#driver(name, Subsystem.ipam) as Promise<RemoteIpamDriver>;
  }
  async graph(name: string, init?: ConnectOptions['graphInit']): Promise<RemoteGraphDriverClient> {
    return this.#driver(name, Subsystem.graph, init) as Promise<RemoteGraphDriverClient>;
  }
  async volume(name: string): Promise<RemoteVolumeDriver> {
    return this.#driver(name, Subsystem.volume) as Promise<RemoteVolumeDriver>;
  }
  async authz(name: string): Promise<RemoteAuthzPlugin> {
    return this.#driver(name, Subsystem.authz) as Promise<RemoteAuthzPlugin>;
  }

  /** Every discoverable plugin implementing `subsystem` (each activated once, without retry). */
  async all(subsystem: string): Promise<ActivatedPlugin[]> {
    const out: ActivatedPlugin[] = [];
    for (const spec of await scanPlugins(this.opts)) {
      try {
        const a = await this.activate(spec.name, false);
        if (a.implements.includes(subsystem)) out.push(a);
      } catch (err) {
        this.opts.logger?.warn({ plugin: spec.name, err: (err as Error).message }, 'plugin activation failed');
      }
    }
    return out;
  }

  /** Forgets every activation and closes the connections. */
  close(): void {
    for (const p of this.#active.values()) p.then((a) => a.transport.close(), () => undefined);
    this.#active.clear();
    this.#drivers.clear();
  }

  async #driver(name: string, subsystem: 'NetworkDriver' | 'IpamDriver' | 'GraphDriver' | 'VolumeDriver' | 'authz', init?: ConnectOptions['graphInit']): Promise<unknown> {
    const a = await this.activate(name);
    if (!a.implements.includes(subsystem)) throw notImplements(name, subsystem);
    const key = `${subsystem}\0${name}`;
    let d = this.#drivers.get(key);
    if (d === undefined) {
      const base: ConnectOptions = { name, transport: a.transport, ...(init === undefined ? {} : { graphInit: init }) };
      d =
        subsystem === Subsystem.network ? connect(a.spec.addr, Subsystem.network, base)
        : subsystem === Subsystem.ipam ? connect(a.spec.addr, Subsystem.ipam, base)
        : subsystem === Subsystem.volume ? connect(a.spec.addr, Subsystem.volume, base)
        : subsystem === Subsystem.authz ? connect(a.spec.addr, Subsystem.authz, base)
        : connect(a.spec.addr, Subsystem.graph, base);
      this.#drivers.set(key, d);
    }
    return d;
  }

  async #activate(name: string, retry: boolean): Promise<ActivatedPlugin> {
    const policy = retry ? { ...dockerRetryPolicy, ...this.opts.retry } : noRetryPolicy;
    const spec = await discover(name, { ...this.opts, retry: policy });
    const transport = new PluginTransport(spec.addr, { retry: policy, ...(spec.tls === undefined ? {} : { tls: spec.tls }), ...(this.opts.sleep ? { sleep: this.opts.sleep } : {}) });
    try {
      const impl = await activateWith(transport, retry);
      this.opts.logger?.info({ plugin: name, addr: spec.addr, implements: impl }, 'plugin activated');
      return { spec, implements: impl, transport };
    } catch (err) {
      transport.close();
      throw err;
    }
  }
}
