export { applyTar, packDir, entryComponents, OVERLAY_OPAQUE_XATTR } from './archive.js';
export type { ApplyTarOptions, ArchiveFs, PackOptions, WhiteoutFormat } from './archive.js';
export { readTar, encodeHeader } from './tar.js';
export type { TarHeader, TarEntry, EntryType } from './tar.js';
export { changesBetween, diskUsage } from './changes.js';
