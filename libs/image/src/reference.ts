import { BerthError } from '@berth/errors';

/**
 * Docker image references (distribution/reference): `[domain/]path[:tag][@digest]`, normalised
 * the way the docker CLI and daemon do (`busybox` -> `docker.io/library/busybox`).
 */
export interface Reference {
  /** Registry host[:port], `docker.io` for Docker Hub. */
  domain: string;
  /** Repository path, `library/busybox`. */
  path: string;
  tag?: string;
  /** `algo:hex`. */
  digest?: string;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainRe = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const pathComponent = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const nameRe = `(?:${domainRe}/)?${pathComponent}(?:/${pathComponent})*`;
const tagRe = '[\\w][\\w.-]{0,127}';
const digestRe = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE = new RegExp(`^(${nameRe})(?::(${tagRe}))?(?:@(${digestRe}))?$`);
const TAG = new RegExp(`^${tagRe}$`);
const HEX64 = /^[a-f0-9]{64}$/;
const NAME_TOTAL_MAX = 255;

function invalid(ref: string, why: string): BerthError {
  return new BerthError('BERTH_REFERENCE_INVALID', `invalid reference format: ${why}: ${JSON.stringify(ref)}`, {
    details: { reference: ref },
  });
}

function splitDomain(name: string): { domain: string; path: string } {
  const i = name.indexOf('/');
  let domain: string;
  let path: string;
  const first = i === -1 ? '' : name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    path = name;
  } else {
    domain = first;
    path = name.slice(i + 1);
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  return { domain, path };
}

/** Parses a user-supplied reference into its normalised form (no default tag added). */
export function parseNormalizedReference(ref: string): Reference {
  if (ref === '') throw invalid(ref, 'empty reference');
  if (HEX64.test(ref)) throw invalid(ref, 'cannot specify 64-byte hexadecimal strings as a repository name');
  const m = REFERENCE.exec(ref);
  if (m === null) {
    const bare = ref.split('@')[0]!.replace(/:[^/]*$/, '');
    if (bare !== bare.toLowerCase() && REFERENCE.test(ref.toLowerCase())) throw invalid(ref, 'repository name must be lowercase');
    throw invalid(ref, 'not a valid repository/tag');
  }
  const name = m[1]!;
  const { domain, path } = splitDomain(name);
  if (/[A-Z]/.test(path)) throw invalid(ref, 'repository name must be lowercase');
  if (`${domain}/${path}`.length > NAME_TOTAL_MAX) throw invalid(ref, `repository name must not be more than ${NAME_TOTAL_MAX} characters`);
  const out: Reference = { domain, path };
  if (m[2] !== undefined) out.tag = m[2];
  if (m[3] !== undefined) out.digest = m[3].toLowerCase();
  return out;
}

/** `parseNormalizedReference` plus the `latest` tag when neither tag nor digest is given. */
export function parseTaggedReference(ref: string): Reference {
  const r = parseNormalizedReference(ref);
  if (r.tag === undefined && r.digest === undefined) r.tag = DEFAULT_TAG;
  return r;
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Full name: `docker.io/library/busybox`. */
export function fullName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** Familiar name: `busybox`, `user/app`, `localhost:5000/app`. */
export function familiarName(r: Reference): string {
  if (r.domain !== DEFAULT_DOMAIN) return `${r.domain}/${r.path}`;
  const rest = r.path.startsWith(OFFICIAL_PREFIX) ? r.path.slice(OFFICIAL_PREFIX.length) : r.path;
  return rest.includes('/') ? r.path : rest;
}

function suffix(r: Reference): string {
  return `${r.tag === undefined ? '' : `:${r.tag}`}${r.digest === undefined ? '' : `@${r.digest}`}`;
}

/** `busybox:latest` (as shown in RepoTags and "Untagged:"). */
export function familiarString(r: Reference): string {
  return familiarName(r) + suffix(r);
}

/** `docker.io/library/busybox:latest`. */
export function fullString(r: Reference): string {
  return fullName(r) + suffix(r);
}

/** The image id form: `sha256:<hex>` from either `<hex>` or `sha256:<hex>`, or null. */
export function asFullImageId(s: string): string | null {
  const hex = s.startsWith('sha256:') ? s.slice(7) : s;
  return HEX64.test(hex) ? `sha256:${hex}` : null;
}

/** An id prefix (`sha256:` optional), lower-case hex: the hex part, or null when `s` is not one. */
export function idPrefixOf(s: string): string | null {
  const hex = s.startsWith('sha256:') ? s.slice(7) : s;
  return /^[a-f0-9]{1,64}$/.test(hex) ? hex : null;
}

/** Docker's 12-character short id (without `sha256:`). */
export function shortId(id: string): string {
  const hex = id.startsWith('sha256:') ? id.slice(7) : id;
  return hex.slice(0, 12);
}
