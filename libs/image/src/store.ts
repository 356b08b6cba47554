import type { Readable } from 'node:stream';
import type { Filters, ImageDeleteItem, ImageInspect, ImageSummary, JsonMessage } from '@berth/api';
import { BerthError } from '@berth/errors';
import type { Logger } from '@berth/log';
import type { GraphDriver } from '@berth/plugin-api';
import type { ImageInUse, ImportTarOptions, RemoveImageOptions, ResolvedImage } from './types.js';

export interface ImageStoreOptions {
  /** Image root, e.g. /var/lib/berth/image/vfs: imagedb/, layerdb/, repositories.json. */
  root: string;
  driver: GraphDriver;
  logger: Logger;
}

function todo(what: string): never {
  throw new BerthError('BERTH_INTERNAL', `image store: ${what} not implemented yet`);
}

/** Images, layers and container layers over one GraphDriver. */
export class ImageStore {
  private constructor(private readonly opts: ImageStoreOptions) {}

  /** Opens (creating if needed) the store at `opts.root`, loading images, layers and mounts. */
  static async open(opts: ImageStoreOptions): Promise<ImageStore> {
    return new ImageStore(opts);
  }

  /** Imports a rootfs tarball (plain or gzip) as a one-layer image; answers `sha256:<id>`. */
  async importTar(_src: Readable, _opts: ImportTarOptions, _progress?: (msg: JsonMessage) => void): Promise<string> {
    return todo('importTar');
  }
  async list(_opts: { all?: boolean; filters?: Filters } = {}): Promise<ImageSummary[]> {
    return todo('list');
  }
  async inspect(_ref: string): Promise<ImageInspect> {
    return todo('inspect');
  }
  /** Name, `sha256:<id>`, or id prefix -> the image. Throws BERTH_IMAGE_NOT_FOUND `No such image: <ref>`. */
  async resolve(_ref: string): Promise<ResolvedImage> {
    return todo('resolve');
  }
  async tag(_ref: string, _repo: string, _tag: string): Promise<void> {
    return todo('tag');
  }
  async remove(_ref: string, _opts: RemoveImageOptions, _isInUse: ImageInUse): Promise<ImageDeleteItem[]> {
    return todo('remove');
  }
  /** Number of images (for `docker info`). */
  count(): number {
    return todo('count');
  }
  async createContainerLayer(_containerId: string, _imageId: string): Promise<void> {
    return todo('createContainerLayer');
  }
  /** Mounts (counted) and answers the container's rootfs path. */
  async mountContainerLayer(_containerId: string): Promise<string> {
    return todo('mountContainerLayer');
  }
  async unmountContainerLayer(_containerId: string): Promise<void> {
    return todo('unmountContainerLayer');
  }
  async removeContainerLayer(_containerId: string): Promise<void> {
    return todo('removeContainerLayer');
  }
  /** A tar of the container's merged filesystem (docker export). */
  async exportContainer(_containerId: string): Promise<Readable> {
    return todo('exportContainer');
  }
  /** SizeRw: bytes of the container's own changes. */
  async size(_containerId: string): Promise<number> {
    return todo('size');
  }
  /** GraphDriver name and data for container inspect. */
  async containerGraphDriver(_containerId: string): Promise<{ Name: string; Data: Record<string, string> | null }> {
    return todo('containerGraphDriver');
  }
}
