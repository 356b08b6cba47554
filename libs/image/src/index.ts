export { ImageStore } from './store.js';
export type { ImageStoreOptions } from './store.js';
export type { ImageConfig, ImageHistory, ResolvedImage, ImportTarOptions, RemoveImageOptions, ImageInUse } from './types.js';
export {
  parseNormalizedReference,
  parseTaggedReference,
  isValidTag,
  fullName,
  familiarName,
  familiarString,
  fullString,
  asFullImageId,
  idPrefixOf,
  shortId,
  DEFAULT_DOMAIN,
  DEFAULT_TAG,
} from './reference.js';
export type { Reference } from './reference.js';
export { chainIdOf, chainIds, sha256Digest } from './chain.js';
export { applyChanges, jsonArray } from './changes.js';
export type { AddImageInput, AddImageLayer, ImageParts } from './parts.js';
export { parseImageConfig, parseTags } from './parts.js';
export type { CommitOptions, ContainerChange, ImageDiskUsage, ImageHistoryItem, ImagesPruneResponse, PruneImagesOptions } from './ops-types.js';
export { resolveInRoot, pinDir, containerPathOf } from './scoped-path.js';
export type { PinnedDir } from './scoped-path.js';
export { statContainerPath, archiveContainerPath, extractToContainer, goFileMode } from './container-archive.js';
export { goModeIsDir, goModeIsSymlink } from '@berth/api/wire';
export type { ExtractOptions } from './container-archive.js';
export type { ContainerPathStat } from '@berth/api/wire';
export { planSave, writeSave } from './save.js';
export type { SaveImage } from './save.js';
export { loadArchive } from './load.js';
export type { LoadOptions, LoadedImage } from './load.js';
