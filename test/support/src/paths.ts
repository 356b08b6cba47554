import { execFile } from 'node:child_process';
import { access, constants, mkdtemp, chmod, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BerthError } from '@berth/errors';

const execFileP = promisify(execFile);

/** The workspace root (this file is compiled to test/support/dist/src/paths.js). */
export function repoRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
}

/** Where `make -C test/probe` writes the static probe. */
export function probePath(): string {
  return path.join(repoRoot(), 'test/probe/build/probe');
}

let probeBuild: Promise<string> | undefined;

/**
 * The probe binary, built with make when missing or stale (make decides; it is a no-op when
 * up to date). One build per process.
 */
export function ensureProbe(): Promise<string> {
  probeBuild ??= (async () => {
    const dir = path.join(repoRoot(), 'test/probe');
    try {
      await execFileP('make', ['-s', '-C', dir], { maxBuffer: 1 << 22 });
      await access(probePath(), constants.X_OK);
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new BerthError('BERTH_FIXTURE_UNAVAILABLE', `probe: make -C ${dir} failed${stderr ? `: ${stderr}` : ''} (needs gcc and libc6-dev for -static)`, {
        cause: err,
        details: { path: dir },
      });
    }
    return probePath();
  })();
  return probeBuild;
}

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

/**
 * A fresh directory under /tmp named `<prefix>-<pid>-XXXXXX`. Mode 0755, not mkdtemp's 0700: a
 * container whose root is mapped to an unprivileged host uid must still be able to traverse it.
 */
export async function makeTempDir(prefix: string): Promise<TempDir> {
  const dir = await mkdtemp(path.join('/tmp', `${prefix}-${process.pid}-`));
  await chmod(dir, 0o755);
  return { path: dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A short random suffix for names of kernel objects and container ids. */
export function uniqueSuffix(): string {
  return `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}
