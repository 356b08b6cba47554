export { vfsDriver, VfsDriver } from './driver.js';
export type { VfsDriverOptions } from './driver.js';
export { applyTar, packDir, entryComponents } from './archive.js';
export type { ApplyTarOptions, ArchiveFs, PackOptions } from './archive.js';
export { readTar, encodeHeader } from './tar.js';
export type { TarHeader, TarEntry, EntryType } from './tar.js';
export { changesBetween, diskUsage } from './changes.js';
