import type { ImageRuntimeConfig } from '@berth/api';

/** An image config as stored (Docker's image JSON, a superset of the OCI image config). */
export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  comment?: string;
  docker_version?: string;
  config?: ImageRuntimeConfig;
  container_config?: ImageRuntimeConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: ImageHistory[];
  /** Docker's legacy local parent id (set by build, not by import). */
  parent?: string;
}

export interface ImageHistory {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** What the engine needs to create a container from an image. */
export interface ResolvedImage {
  /** `sha256:<64 hex>`. */
  id: string;
  config: ImageConfig;
  /** ChainID (`sha256:...`) of the top layer, null for an image without layers. */
  topLayer: string | null;
  /** Familiar `repo:tag` names of this image. */
  repoTags: string[];
}

export interface ImportTarOptions {
  /** `repo[:tag]` to tag the image with, or '' for none. */
  repo: string;
  /** Tag when `repo` has none; '' = latest. */
  tag: string;
  /** The history comment; '' = "Imported from -". */
  message: string;
  /** Dockerfile instructions applied to the config: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL. */
  changes: string[];
  /** Creation time to record; default now. A fixed value gives a stable image id. */
  created?: Date;
}

export interface RemoveImageOptions {
  force: boolean;
  noprune: boolean;
}

/**
 * Tells the store which container uses an image: null for none, else the container id (taken as
 * a stopped container) or `{ id, running }`. A running container makes the conflict unforceable,
 * as in Docker.
 */
export type ImageInUse = (imageId: string) => string | { id: string; running: boolean } | null;
