/**
 * One sealed memfd copy of berth-init kept for the life of a Runtime. berth-init never runs
 * from the host file (CVE-2019-5736: a container process that execs /proc/self/exe in time
 * could hold the file and write it later); the shim execs a sealed copy, and making one costs
 * about 0.3 ms per start. With this copy the shim execs it as it is (after checking its seals).
 *
 * The copy is made by `berth-shim --sealed-init PATH`, which holds it at fd 100 until its stdin
 * closes; the runtime opens /proc/PID/fd/100 of that child (its own, not yet reaped) and keeps
 * the fd. Until then, and whenever berth-init changed on disk, the shim copies for each start.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import type { NativePaths } from '@berth/native';

const SEALED_FD = 100;

export class SealedInit {
  private fd: number | null = null;
  private key: string | null = null;
  private priming = false;

  constructor(private readonly paths: NativePaths) {}

  /** The fd of a sealed copy of berth-init as it is on disk now, or null (starts making one). */
  current(): number | null {
    let key: string;
    try {
      const st = statSync(this.paths.init);
      key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return null;
    }
    if (this.fd !== null && this.key === key) return this.fd;
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
      this.key = null;
    }
    if (!this.priming) {
      this.priming = true;
      void this.prime(key).finally(() => {
        this.priming = false;
      });
    }
    return null;
  }

  /** Resolves once a copy is held (or making it failed); for tests. */
  async ready(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.current() === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.fd !== null;
  }

  private prime(key: string): Promise<void> {
    return new Promise((resolve) => {
      // The key is taken before the copy is made: a file swapped in between is seen as changed.
      const child = spawn(this.paths.shim, ['--sealed-init', this.paths.init], { stdio: ['pipe', 'pipe', 'ignore'] });
      let out = '';
      child.on('error', () => resolve());
      child.on('exit', () => resolve());
      child.stdin!.on('error', () => undefined);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (!out.includes('ready\n')) return;
        // Still our child (not reaped), so the pid is not anyone else's.
        if (child.exitCode === null && child.signalCode === null && this.fd === null) {
          try {
            this.fd = openSync(`/proc/${child.pid}/fd/${SEALED_FD}`, 'r');
            this.key = key;
          } catch {
            // no copy this time: the shim copies per start
          }
        }
        child.stdin!.end();
      });
      // Neither the child nor its pipes keep a short-lived process (the CLI) alive.
      child.unref();
      (child.stdin as unknown as { unref?: () => void }).unref?.();
      (child.stdout as unknown as { unref?: () => void }).unref?.();
    });
  }
}
