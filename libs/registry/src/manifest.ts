import { createHash } from 'node:crypto';
import { BerthError } from '@berth/errors';

export const MediaType = {
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciNondistributableLayer: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciNondistributableLayerGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
} as const;

/** What a pull asks for, preferred first (Docker sends the same set). */
export const MANIFEST_ACCEPT = [MediaType.DockerManifest, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.OciIndex].join(', ');

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ManifestIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

export interface FetchedManifestImage {
  digest: string;
  mediaType: string;
  raw: Buffer;
  parsed: { kind: 'image'; mediaType: string; manifest: ImageManifest };
}

export type ParsedManifest = { kind: 'image'; mediaType: string; manifest: ImageManifest } | { kind: 'index'; mediaType: string; index: ManifestIndex };

/** The compression of a layer media type; `undefined` for a media type that is not a layer. */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'none' | undefined {
  switch (mediaType) {
    case MediaType.DockerLayerGzip:
    case MediaType.DockerForeignLayerGzip:
    case MediaType.OciLayerGzip:
    case MediaType.OciNondistributableLayerGzip:
      return 'gzip';
    case MediaType.OciLayerZstd:
      return 'zstd';
    case MediaType.OciLayer:
    case MediaType.OciNondistributableLayer:
      return 'none';
    default:
      return undefined;
  }
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

export function sha256Of(buf: Buffer): string {
  return `sha256:${createHash('sha256').update(buf).digest('hex')}`;
}

function malformed(source: string, why: string): BerthError {
  return new BerthError('BERTH_REGISTRY_PROTOCOL', `malformed manifest from ${source}: ${why}`, { details: { source } });
}

function descriptor(v: unknown, where: string, source: string): Descriptor {
  if (typeof v !== 'object' || v === null) throw malformed(source, `${where} is not an object`);
  const d = v as Record<string, unknown>;
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) throw malformed(source, `${where} has no valid sha256 digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw malformed(source, `${where} has no valid size`);
  const out: Descriptor = { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size };
  if (Array.isArray(d.urls)) out.urls = d.urls.filter((u): u is string => typeof u === 'string');
  if (typeof d.platform === 'object' && d.platform !== null) {
    const p = d.platform as Record<string, unknown>;
    if (typeof p.architecture === 'string' && typeof p.os === 'string') {
      out.platform = { architecture: p.architecture, os: p.os };
      if (typeof p.variant === 'string') out.platform.variant = p.variant;
    }
  }
  return out;
}

/**
 * Parses and checks a manifest body. The media type comes from the body's `mediaType`, else
 * the Content-Type, else its shape (OCI allows leaving it out). Schema 1 is refused as Docker
 * 28 does by default.
 */
export function parseManifest(body: Buffer, contentType: string | undefined, source: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw malformed(source, 'not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw malformed(source, 'not a JSON object');
  const m = json as Record<string, unknown>;
  const ct = contentType?.split(';')[0]?.trim();
  let mediaType = typeof m.mediaType === 'string' ? m.mediaType : ct !== undefined && ct !== '' && ct !== 'application/json' ? ct : '';
  if (mediaType === '') mediaType = Array.isArray(m.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  if (m.schemaVersion === 1 || mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed)
    throw new BerthError(
      'BERTH_REGISTRY_PROTOCOL',
      `${source} is an image manifest of version 2, schema 1, which is not supported: push it again with a current client (schema 2 or OCI)`,
      { details: { source, mediaType } },
    );
  if (m.schemaVersion !== 2) throw malformed(source, `schemaVersion is ${JSON.stringify(m.schemaVersion)}, not 2`);
  if (mediaType === MediaType.DockerManifestList || mediaType === MediaType.OciIndex) {
    if (!Array.isArray(m.manifests)) throw malformed(source, 'an index without "manifests"');
    const manifests = m.manifests.map((d, i) => descriptor(d, `manifests[${i}]`, source));
    return { kind: 'index', mediaType, index: { schemaVersion: 2, mediaType, manifests } };
  }
  if (mediaType === MediaType.DockerManifest || mediaType === MediaType.OciManifest) {
    if (!Array.isArray(m.layers)) throw malformed(source, 'an image manifest without "layers"');
    const config = descriptor(m.config, 'config', source);
    const layers = m.layers.map((d, i) => descriptor(d, `layers[${i}]`, source));
    return { kind: 'image', mediaType, manifest: { schemaVersion: 2, mediaType, config, layers } };
  }
  throw new BerthError('BERTH_REGISTRY_PROTOCOL', `${source}: unsupported manifest media type ${JSON.stringify(mediaType)}`, {
    details: { source, mediaType },
  });
}

/**
 * The entry of an index for a platform: os and architecture equal, and the variant when the
 * wanted platform names one (an entry without variant matches too). Docker's text otherwise.
 */
export function pickPlatform(index: ManifestIndex, want: Platform): Descriptor {
  const candidates = index.manifests.filter((d) => d.platform !== undefined && d.platform.os === want.os && d.platform.architecture === want.architecture);
  const exact = want.variant === undefined ? candidates : candidates.filter((d) => d.platform?.variant === want.variant);
  const picked = exact[0] ?? candidates.find((d) => d.platform?.variant === undefined);
  if (picked === undefined) {
    const p = `${want.os}/${want.architecture}${want.variant === undefined ? '' : `/${want.variant}`}`;
    throw new BerthError('BERTH_REGISTRY_NOT_FOUND', `no matching manifest for ${p} in the manifest list entries`, { details: { platform: p } });
  }
  return picked;
}

/** The platform this daemon runs images for. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}
