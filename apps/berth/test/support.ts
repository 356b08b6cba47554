/**
 * Helpers to drive the built `berth` binary against a daemon (the reference dockerd now,
 * berthd later): `runBerth(args, { host })`, `daemonReachable(host)`, and a pty runner.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** apps/berth/bin/berth (this file compiles to apps/berth/dist/test/support.js). */
export const BERTH_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'berth');

export const REFERENCE_HOST = 'unix:///run/docker-ref.sock';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  host?: string;
  input?: string | Buffer;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

export function runBerth(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
    if (opts.host) env.BERTH_HOST = opts.host;
    const child = spawn(process.execPath, [BERTH_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** True when something accepts connections on the host's unix socket. */
export function daemonReachable(host: string): Promise<boolean> {
  if (!host.startsWith('unix://')) return Promise.resolve(true);
  return new Promise((resolve) => {
    const s = connect(host.slice('unix://'.length));
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A unique container name prefix per test process. */
export function uniqueName(tag: string): string {
  return `berth-e2e-${process.pid}-${Math.random().toString(36).slice(2, 8)}-${tag}`;
}

/**
 * Runs berth under a real pseudo-terminal (python's pty module), writing `steps` with pauses;
 * returns everything the terminal showed and the exit code.
 */
export function runBerthInPty(args: string[], steps: { write: string; waitMs: number }[], opts: RunOptions = {}): Promise<RunResult> {
  const script = `
import os, pty, sys, time, select, json
steps = json.loads(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out = b''
def readfor(t):
    global out
    end = time.time() + t
    while time.time() < end:
        r,_,_ = select.select([fd],[],[],0.05)
        if r:
            try: d = os.read(fd, 4096)
            except OSError: return
            if not d: return
            out += d
for s in steps:
    readfor(s['waitMs'] / 1000.0)
    if s['write']: os.write(fd, s['write'].encode())
readfor(0.5)
_, status = os.waitpid(pid, 0)
readfor(0.1)
sys.stdout.write(out.decode('utf8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
    if (opts.host) env.BERTH_HOST = opts.host;
    const child = spawn('python3', ['-c', script, JSON.stringify(steps), process.execPath, BERTH_BIN, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}
