export { applyTar, packDir, entryComponents, OVERLAY_OPAQUE_XATTR } from './archive.js';
export type { ApplyTarOptions, ArchiveFs, PackOptions, WhiteoutFormat } from './archive.js';
export { readTar, encodeHeader } from './tar.js';
export type { TarHeader, TarEntry, EntryType } from './tar.js';
export { changesBetween, diskUsage } from './changes.js';
export { isZstd, zstdDecompress } from './zstd.js';
export type { ZstdOptions } from './zstd.js';
export { packChanges, changesSize, withViews, changesOfViews, diffSizeOfViews, diffOfViews, KeyedLock, ViewTable, mountAt, PrivateHome } from './union-views.js';
export type { LayerViews, HeldView, HomeMounts } from './union-views.js';
