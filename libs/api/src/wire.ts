/**
 * The light entry `@berth/api/wire`: wire types, stream framing, filters and the name rule,
 * without the body schemas and their checker (the CLI needs neither).
 */
export * from './types.js';
export type * from './network.js';
export { StreamType, MULTIPLEXED_STREAM, RAW_STREAM, frame, frameHeader, Demuxer } from './stream.js';
export { parseFilters, encodeFilters } from './filters.js';
export { CONTAINER_NAME_PATTERN, isValidContainerName } from './names.js';
export { humanDuration } from './human.js';
export { GoFileMode, goModeIsDir, goModeIsSymlink } from './path-stat.js';
export type { ContainerPathStat } from './path-stat.js';
export type * from './kernel.js';
