/**
 * Shared setup of the shim tests: a runtime on a scratch state root, bundles on the busybox
 * fixture (read-only root), frame decoding, and a leak check scoped to this test process.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { createCgroupManager } from '@berth/cgroups';
import { silentLogger } from '@berth/log';
import { realSyscalls } from '@berth/native';
import { Runtime, runtimeCgroups, defaultSpec, type OciSpec, type ContainerIo } from '../../src/index.js';

export const FIXTURE = '/var/lib/berth/fixtures/busybox-rootfs';

export interface Env {
  uniq: string;
  work: string;
  rt: Runtime;
  /** A bundle whose process runs args (sh -c when a string). */
  bundle(name: string, args: string[] | string, mod?: (s: OciSpec) => void): string;
  /** io with the socket and log in the work dir. */
  io(name: string, over?: Partial<ContainerIo>): ContainerIo & { logFile: string };
  cgroupDirs(id: string): string[];
  dispose(): void;
}

export async function setup(tag: string): Promise<Env> {
  const uniq = `${tag}-${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
  const work = mkdtempSync(join(tmpdir(), `bs-${uniq}-`));
  const manager = await createCgroupManager();
  const rt = new Runtime({ root: join(work, 'state'), logger: silentLogger(), cgroups: runtimeCgroups(manager), syscalls: realSyscalls });
  return {
    uniq, work, rt,
    bundle(name, args, mod) {
      const dir = join(work, name);
      mkdirSync(dir, { recursive: true });
      const s = defaultSpec();
      s.root = { path: FIXTURE, readonly: true };
      s.process!.terminal = false;
      s.process!.args = typeof args === 'string' ? ['sh', '-c', args] : args;
      s.process!.env!.push(`BERTH_TEST_MARK=${uniq}`);
      mod?.(s);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(s));
      return dir;
    },
    io(name, over = {}) {
      return { socket: join(work, `${name}.sock`), logFile: join(work, `${name}.log`), tty: false, stdin: false, stdinOnce: false, ...over };
    },
    cgroupDirs(id) {
      return Object.values(manager.open(`berth/${id}`)?.paths() ?? {}).filter((p) => existsSync(p));
    },
    dispose() {
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Processes whose environment or command line carries the mark (containers, shims of this test). */
export function markedProcesses(mark: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const env = readFileSync(`/proc/${name}/environ`, 'utf8');
      if (cmd.includes(mark) || env.includes(mark)) out.push(`${name} ${cmd.replace(/\0/g, ' ')}`);
    } catch {
      // gone
    }
  }
  return out;
}

export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
}

export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

export interface Frames {
  stdout: string;
  stderr: string;
  frames: { stream: number; data: Buffer }[];
}

/** Decodes Docker's multiplexed stream; throws on a malformed header. */
export function demux(buf: Buffer): Frames {
  const frames: { stream: number; data: Buffer }[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 8) throw new Error(`truncated frame header at ${off}`);
    const stream = buf[off]!;
    if ((stream !== 1 && stream !== 2) || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) throw new Error(`bad frame header at ${off}`);
    const size = buf.readUInt32BE(off + 4);
    if (buf.length - off - 8 < size) throw new Error(`truncated frame at ${off}`);
    frames.push({ stream, data: buf.subarray(off + 8, off + 8 + size) });
    off += 8 + size;
  }
  const text = (n: number): string => Buffer.concat(frames.filter((f) => f.stream === n).map((f) => f.data)).toString('utf8');
  return { stdout: text(1), stderr: text(2), frames };
}

/** Everything the socket sends until it ends. */
export function collect(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.resume();
  });
}

export async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

export function readLog(path: string): LogEntry[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogEntry);
}
