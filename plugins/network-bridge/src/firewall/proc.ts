import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { BerthError } from '@berth/errors';
import type { ProcFiles } from './types.js';

function nsenter(netnsPath: string, argv: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netnsPath}`, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString());
      else {
        const msg = Buffer.concat(err).toString().trim();
        const e = new BerthError('BERTH_NETWORK', `${argv.join(' ')} in ${netnsPath}: ${msg || `exit ${code}`}`) as BerthError & { errno?: string };
        if (/No such file/.test(msg)) e.errno = 'ENOENT';
        reject(e);
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/**
 * /proc as seen from a network namespace: the daemon's own (plain file access), or the one
 * bound at netnsPath (each access runs `nsenter --net`; /proc/sys/net and /proc/net are per
 * network namespace of the reading process).
 */
export function procFiles(netnsPath?: string): ProcFiles {
  if (netnsPath === undefined) {
    return {
      read: (p) => readFile(p, 'utf8'),
      write: (p, d) => writeFile(p, d),
    };
  }
  return {
    read: (p) => nsenter(netnsPath, ['cat', p]),
    // sh reads the value from stdin so neither path nor value is parsed by a shell
    write: async (p, d) => void (await nsenter(netnsPath, ['sh', '-c', 'cat > "$0"', p], d)),
  };
}

/** True when a /proc write failed because the file (a sysctl of a link) does not exist. */
export function isMissingFile(err: unknown): boolean {
  const e = err as { code?: string; errno?: string } | undefined;
  return e?.code === 'ENOENT' || e?.errno === 'ENOENT';
}

/** A socket bound to a local port, from /proc/net/{tcp,udp}[6]. */
export interface BoundSocket {
  proto: 'tcp' | 'udp';
  /** Dotted IPv4, or '::'/'::ffff:a.b.c.d'/other v6 text. */
  ip: string;
  port: number;
}

function hexIpv4(h: string): string {
  // /proc prints the address as a host-order (little-endian here) 32-bit word
  const n = parseInt(h, 16);
  return `${n & 255}.${(n >>> 8) & 255}.${(n >>> 16) & 255}.${n >>> 24}`;
}

function hexIpv6(h: string): string {
  if (/^0{32}$/.test(h)) return '::';
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    const w = parseInt(h.slice(i * 8, i * 8 + 8), 16);
    words.push(((w & 255) << 8) | ((w >>> 8) & 255), (((w >>> 16) & 255) << 8) | (w >>> 24));
  }
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) return `::ffff:${words[6]! >> 8}.${words[6]! & 255}.${words[7]! >> 8}.${words[7]! & 255}`;
  return words.map((w) => w.toString(16)).join(':');
}

/**
 * Parses one /proc/net/{tcp,tcp6,udp,udp6} file: TCP sockets in LISTEN, UDP sockets bound
 * to a port (any state). One pass over the text, no per-port work.
 */
export function parseProcNet(text: string, proto: 'tcp' | 'udp', v6: boolean): BoundSocket[] {
  const out: BoundSocket[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 4) continue;
    const local = f[1]!;
    const st = f[3]!;
    if (proto === 'tcp' && st !== '0A') continue;
    const c = local.indexOf(':');
    const port = parseInt(local.slice(c + 1), 16);
    if (!port) continue;
    const ipHex = local.slice(0, c);
    out.push({ proto, ip: v6 ? hexIpv6(ipHex) : hexIpv4(ipHex), port });
  }
  return out;
}

/** Every listening TCP and bound UDP socket of the namespace `proc` looks at. */
export async function boundSockets(proc: ProcFiles): Promise<BoundSocket[]> {
  const files: [string, 'tcp' | 'udp', boolean][] = [
    ['/proc/net/tcp', 'tcp', false],
    ['/proc/net/tcp6', 'tcp', true],
    ['/proc/net/udp', 'udp', false],
    ['/proc/net/udp6', 'udp', true],
  ];
  const parts = await Promise.all(
    files.map(async ([p, proto, v6]) => {
      try {
        return parseProcNet(await proc.read(p), proto, v6);
      } catch {
        return []; // no IPv6 in this kernel
      }
    }),
  );
  return parts.flat();
}
