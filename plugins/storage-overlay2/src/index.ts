export { overlay2Driver, Overlay2Driver, shortId, isMountPoint } from './driver.js';
export type { Overlay2DriverOptions, OverlaySyscalls } from './driver.js';
export { skipReason, probeOverlay, plainFormatOptions, backingFsName } from './probe.js';
export type { OverlayFacts } from './probe.js';
