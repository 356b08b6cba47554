export * from './types.js';
export { StreamType, MULTIPLEXED_STREAM, RAW_STREAM, frame, frameHeader, Demuxer } from './stream.js';
export { parseFilters, encodeFilters } from './filters.js';
export { CONTAINER_NAME_PATTERN, isValidContainerName } from './names.js';
export {
  ContainerCreateBodySchema,
  HostConfigBodySchema,
  EndpointSettingsBodySchema,
  HealthConfigSchema,
  ExecCreateBodySchema,
  ExecStartBodySchema,
  checkBody,
} from './schemas.js';
export type { BodySchema } from './schemas.js';
export { humanDuration } from './human.js';
export { GoFileMode, goModeIsDir, goModeIsSymlink } from './path-stat.js';
export type { ContainerPathStat } from './path-stat.js';
export * from './network.js';
export type * from './kernel.js';
