export { vfsDriver, VfsDriver } from './driver.js';
export type { VfsDriverOptions } from './driver.js';
// The tar helpers moved to @berth/archive; re-exported here for existing importers.
export { applyTar, packDir, entryComponents, readTar, encodeHeader, changesBetween, diskUsage } from '@berth/archive';
export type { ApplyTarOptions, ArchiveFs, PackOptions, TarHeader, TarEntry, EntryType } from '@berth/archive';
