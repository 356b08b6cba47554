import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { BerthError } from '@berth/errors';
import { makeTempDir } from './paths.js';

const execFileP = promisify(execFile);

/** The parts of an OCI runtime spec the tests touch; anything else passes through untouched. */
export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal?: boolean;
    user: { uid: number; gid: number; umask?: number; additionalGids?: number[] };
    args: string[];
    env?: string[];
    cwd: string;
    capabilities?: Partial<Record<'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient', string[]>>;
    rlimits?: { type: string; hard: number; soft: number }[];
    noNewPrivileges?: boolean;
    [key: string]: unknown;
  };
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts?: OciMount[];
  linux?: {
    namespaces?: { type: string; path?: string }[];
    uidMappings?: { containerID: number; hostID: number; size: number }[];
    gidMappings?: { containerID: number; hostID: number; size: number }[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
    cgroupsPath?: string;
    seccomp?: unknown;
    resources?: Record<string, unknown>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

let runcDefault: Promise<OciSpec> | undefined;

/**
 * runc's default spec, exactly as `runc spec` writes it (generated once per process, never
 * hand-copied, so it follows the installed runc).
 */
export function runcDefaultSpec(runc = 'runc'): Promise<OciSpec> {
  runcDefault ??= (async () => {
    const tmp = await makeTempDir('berth-spec');
    try {
      await execFileP(runc, ['spec'], { cwd: tmp.path });
      return JSON.parse(await readFile(path.join(tmp.path, 'config.json'), 'utf8')) as OciSpec;
    } catch (err) {
      throw new BerthError('BERTH_FIXTURE_UNAVAILABLE', `base spec: \`${runc} spec\` failed in ${tmp.path}: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      await tmp.remove();
    }
  })();
  return runcDefault.then((s) => structuredClone(s));
}

/** Where bundles put the probe inside the rootfs. */
export const PROBE_IN_CONTAINER = '/probe';

/**
 * The tests' base spec: runc's default with the changes every test wants: no terminal (the
 * test reads stdout through pipes) and the probe as the process. Everything else (namespaces,
 * masked and read-only paths, the read-only root, the three capabilities) stays runc's default.
 */
export async function baseSpec(): Promise<OciSpec> {
  const spec = await runcDefaultSpec();
  spec.process.terminal = false;
  spec.process.args = [PROBE_IN_CONTAINER];
  return spec;
}
