import type { ProcFiles } from './types.js';

/** An in-memory /proc for unit tests: sysctls and /proc/net files as strings. */
export class FakeProc implements ProcFiles {
  readonly files = new Map<string, string>([
    ['/proc/sys/net/ipv4/ip_forward', '1\n'],
    ['/proc/sys/net/ipv4/ip_local_port_range', '32768\t60999\n'],
    ['/proc/net/tcp', '  sl  local_address rem_address   st\n'],
    ['/proc/net/tcp6', '  sl  local_address rem_address   st\n'],
    ['/proc/net/udp', '  sl  local_address rem_address   st\n'],
    ['/proc/net/udp6', '  sl  local_address rem_address   st\n'],
  ]);
  readonly writes: [string, string][] = [];
  /** Directories whose files may be written even when absent (per-link sysctls). */
  readonly links = new Set<string>();

  async read(path: string): Promise<string> {
    const v = this.files.get(path);
    if (v === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return v;
  }

  async write(path: string, data: string): Promise<void> {
    const link = /^\/proc\/sys\/net\/ipv4\/conf\/([^/]+)\//.exec(path)?.[1];
    if (!this.files.has(path) && !(link !== undefined && this.links.has(link))) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    this.writes.push([path, data]);
    this.files.set(path, data);
  }

  /** Adds a listening TCP (or bound UDP) socket on ip:port as the kernel prints it. */
  listen(proto: 'tcp' | 'udp', ip: string, port: number): void {
    const hex = ip
      .split('.')
      .map((o) => Number(o).toString(16).padStart(2, '0'))
      .reverse()
      .join('')
      .toUpperCase();
    const line = `   0: ${hex}:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 ${proto === 'tcp' ? '0A' : '07'} 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000\n`;
    const f = `/proc/net/${proto}`;
    this.files.set(f, this.files.get(f)! + line);
  }
}
