import { copyFile, link, writeFile, chmod, mkdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { ensureProbe, makeTempDir } from './paths.js';
import { cachedBusyboxRootfs, copyRootfs } from './rootfs-cache.js';
import { baseSpec, PROBE_IN_CONTAINER, type OciSpec } from './spec.js';

export interface BundleOptions {
  /** Parent directory; default a fresh temp dir under /tmp (removed by `remove()`). */
  parent?: string;
  /** Directory name inside `parent`; default "bundle". */
  name?: string;
  /** Edits the base spec (runc's default + probe); may mutate it or return a new one. */
  spec?: (spec: OciSpec) => OciSpec | void;
  /** Skip copying the busybox rootfs and the probe (for bad-input cases that build their own). */
  emptyRootfs?: boolean;
}

export interface Bundle {
  dir: string;
  rootfs: string;
  configPath: string;
  spec: OciSpec;
  /** Rewrites config.json. */
  writeSpec(spec: OciSpec): Promise<void>;
  /** Removes the bundle (and its temp parent when the bundle made it). */
  remove(): Promise<void>;
}

/**
 * Makes an OCI bundle: `<dir>/rootfs` holds the cached busybox rootfs (hard links) plus the
 * probe at /probe, `<dir>/config.json` the base spec with the caller's edits.
 */
export async function makeBundle(opts: BundleOptions = {}): Promise<Bundle> {
  const tmp = opts.parent === undefined ? await makeTempDir('berth-bundle') : undefined;
  const parent = opts.parent ?? tmp!.path;
  const dir = path.join(parent, opts.name ?? 'bundle');
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  const rootfs = path.join(dir, 'rootfs');
  if (opts.emptyRootfs) {
    await mkdir(rootfs);
    await chmod(rootfs, 0o755);
  } else {
    const [cache, probe] = await Promise.all([cachedBusyboxRootfs(), ensureProbe()]);
    await copyRootfs(cache, rootfs);
    const dest = path.join(rootfs, PROBE_IN_CONTAINER);
    try {
      await link(probe, dest);
    } catch {
      await copyFile(probe, dest);
      await chmod(dest, 0o755);
    }
  }
  let spec = await baseSpec();
  if (opts.spec) spec = opts.spec(spec) ?? spec;
  const configPath = path.join(dir, 'config.json');
  const bundle: Bundle = {
    dir,
    rootfs,
    configPath,
    spec,
    async writeSpec(s: OciSpec) {
      bundle.spec = s;
      await writeFile(configPath, `${JSON.stringify(s, null, 2)}\n`);
    },
    async remove() {
      await rm(tmp ? tmp.path : dir, { recursive: true, force: true });
    },
  };
  await bundle.writeSpec(spec);
  return bundle;
}
