export { vfsDriver, VfsDriver } from './driver.js';
export type { VfsDriverOptions } from './driver.js';
export { applyTar, packDir } from './archive.js';
export type { ApplyTarOptions, ArchiveFs } from './archive.js';
