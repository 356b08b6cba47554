/**
 * Test peers: Debian's `docker-registry` on 127.0.0.1 with a scratch storage dir (optionally
 * behind htpasswd Basic auth), `skopeo`, and an OCI image layout made from a rootfs tar.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const run = promisify(execFile);

export const DOCKER_REGISTRY = '/usr/bin/docker-registry';
export const SKOPEO = '/usr/bin/skopeo';
export const HTPASSWD = '/usr/bin/htpasswd';

/** Why the peer tests cannot run here, or undefined when they can. */
export function peerSkipReason(): string | undefined {
  for (const bin of [DOCKER_REGISTRY, SKOPEO, HTPASSWD]) if (!existsSync(bin)) return `${bin} is missing (tools/setup.sh installs docker-registry, skopeo, apache2-utils)`;
  return undefined;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface TestRegistry {
  /** `127.0.0.1:<port>` */
  domain: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts `docker-registry serve` on a free loopback port; `auth` adds htpasswd Basic auth. */
export async function startDockerRegistry(opts: { auth?: { username: string; password: string } } = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-registry-peer-'));
  let child: ChildProcess | undefined;
  try {
    let authBlock = '';
    if (opts.auth !== undefined) {
      const { stdout } = await run(HTPASSWD, ['-Bbn', opts.auth.username, opts.auth.password]);
      await writeFile(join(dir, 'htpasswd'), stdout);
      authBlock = `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${join(dir, 'htpasswd')}\n`;
    }
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const config = `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${authBlock}`;
      await writeFile(join(dir, 'config.yml'), config);
      const c = spawn(DOCKER_REGISTRY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = c;
      let stderr = '';
      c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const up = await waitUp(port, c);
      if (up) {
        const domain = `127.0.0.1:${port}`;
        return {
          domain,
          dir,
          stop: async () => {
            if (c.exitCode === null && c.signalCode === null) {
              const gone = new Promise<void>((r) => c.once('exit', () => r()));
              c.kill('SIGTERM');
              await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
              if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
            }
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      c.kill('SIGKILL');
      if (attempt >= 2) throw new Error(`docker-registry did not start: ${stderr}`);
    }
  } catch (err) {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function waitUp(port: number, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return true;
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await run(SKOPEO, ['--insecure-policy', ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface OciLayoutImage {
  dir: string;
  /** The image config bytes; its sha256 is the image id. */
  config: Buffer;
  configDigest: string;
  diffId: string;
  layerDigest: string;
  manifestDigest: string;
}

/**
 * Writes an OCI image layout with one image made of one layer (the gzip of `rootfsTar`)
 * under `tag`. With `extraPlatforms`, the index also lists images for those architectures
 * (each with its own config and the same layer) so `skopeo copy --all` pushes an index.
 */
export async function writeOciLayout(dir: string, rootfsTar: Buffer, tag: string, opts: { extraPlatforms?: string[]; cmd?: string[] } = {}): Promise<OciLayoutImage> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (b: Buffer): Promise<string> => {
    const d = sha(b);
    await writeFile(join(dir, 'blobs', 'sha256', d.slice(7)), b);
    return d;
  };
  const layer = gzipSync(rootfsTar);
  const layerDigest = await put(layer);
  const diffId = sha(rootfsTar);
  const image = async (arch: string): Promise<{ config: Buffer; configDigest: string; manifest: Buffer; manifestDigest: string }> => {
    const config = Buffer.from(
      JSON.stringify({
        created: '2024-01-01T00:00:00Z',
        architecture: arch,
        os: 'linux',
        config: { Cmd: opts.cmd ?? ['sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
        rootfs: { type: 'layers', diff_ids: [diffId] },
        history: [{ created: '2024-01-01T00:00:00Z', created_by: 'berth test fixture' }],
      }),
    );
    const configDigest = await put(config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
      }),
    );
    return { config, configDigest, manifest, manifestDigest: await put(manifest) };
  };
  const main = await image('amd64');
  const manifests: unknown[] = [];
  if (opts.extraPlatforms !== undefined && opts.extraPlatforms.length > 0) {
    const entries = [{ arch: 'amd64', img: main }];
    for (const arch of opts.extraPlatforms) entries.unshift({ arch, img: await image(arch) });
    const nested = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: entries.map((e) => ({
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: e.img.manifestDigest,
          size: e.img.manifest.length,
          platform: { architecture: e.arch, os: 'linux' },
        })),
      }),
    );
    const nestedDigest = await put(nested);
    manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: nestedDigest, size: nested.length, annotations: { 'org.opencontainers.image.ref.name': tag } });
  } else {
    manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: main.manifestDigest, size: main.manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } });
  }
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
  return { dir, config: main.config, configDigest: main.configDigest, diffId, layerDigest, manifestDigest: main.manifestDigest };
}

/** The busybox rootfs tar made by `node tools/fixtures/bin/make-busybox-tar`. */
export const BUSYBOX_TAR = '/var/lib/berth/fixtures/busybox.tar';

export async function readBusyboxTar(): Promise<Buffer | undefined> {
  return existsSync(BUSYBOX_TAR) ? readFile(BUSYBOX_TAR) : undefined;
}
