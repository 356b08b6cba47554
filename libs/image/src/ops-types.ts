import type { ImageDeleteItem, ImageRuntimeConfig, ImageSummary } from '@berth/api';

/** One item of `GET /containers/{id}/changes`: Kind 0 modified, 1 added, 2 deleted. */
export interface ContainerChange {
  Path: string;
  Kind: 0 | 1 | 2;
}

/** One item of `GET /images/{name}/history`, newest first. */
export interface ImageHistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

/** `POST /images/prune`. */
export interface ImagesPruneResponse {
  ImagesDeleted: ImageDeleteItem[] | null;
  SpaceReclaimed: number;
}

export interface PruneImagesOptions {
  /** Every unused image, not only the dangling ones (`docker image prune -a`). */
  all: boolean;
  /** Only images created before this (unix seconds). */
  until?: number | undefined;
  /** `label=k` / `label=k=v` (must match) and `label!=...` (must not). */
  labels?: string[];
  notLabels?: string[];
}

export interface CommitOptions {
  /** The container's image (its config and history are the base); may be gone (force-removed). */
  imageId: string;
  /** The new image's runtime config (the container's, merged with the overrides and changes). */
  config: ImageRuntimeConfig;
  /** The container's config as it was (Docker's `container_config`). */
  containerConfig?: ImageRuntimeConfig;
  author: string;
  comment: string;
  /** The history entry's `created_by` (Docker: the container's Cmd joined by spaces). */
  createdBy: string;
  /** `repo[:tag]` to tag the new image with, or ''. */
  repo: string;
  tag: string;
}

/** The image part of `GET /system/df`. */
export interface ImageDiskUsage {
  LayersSize: number;
  /** ImageSummary with SharedSize filled in (Containers is the engine's). */
  Images: ImageSummary[];
}
