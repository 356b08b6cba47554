export type {
  Engine,
  WaitCondition,
  WaitHandle,
  AttachOptions,
  StreamSession,
  LogsOptions,
  LogsStream,
  StopOptions,
  ImportOptions,
  EventsOptions,
  EventSubscription,
} from './contract.js';
export type { ContainerUpdateBody, ContainerUpdateResponse, ContainerStatsJson, ContainerCpuStats, StatsOptions } from './contract.js';
export type { CommitBody, SystemDfResponse, ContainerChange, ContainerPathStat, ImageHistoryItem, ImagesPruneResponse } from './contract.js';
export { createEngine, BerthEngine } from './engine.js';
export type { BuildOptions } from './contract.js';
export { defaultBuildOptions, checkBuildOptions } from './builder/builder.js';
export { parseDockerfile } from './builder/parse.js';
export { decodeRegistryAuth, decodeRegistryConfig, encodeRegistryAuth } from '@berth/registry';
export type { RegistryAuth } from './contract.js';
export type { EngineOptions } from './engine.js';
export { buildSpec, resolveUser, containerCapabilities, parseSecurityOpts, dockerMaskedPaths, dockerReadonlyPaths } from './oci-spec.js';
export type { SpecInput, ResolvedUser, SecurityOptions } from './oci-spec.js';
export { normaliseConfig, normaliseHostConfig, mergeImageConfig, commandLine, parseBind } from './config.js';
export type { Volume, VolumeCreateRequest } from '@berth/api';
export { volumeNameProblem, ANONYMOUS_LABEL } from './volumes.js';
export { parseDetachKeys, DetachScanner, DEFAULT_DETACH_KEYS } from './detach.js';
export { humanDuration, rfc3339Nano, ZERO_TIME } from './time.js';
export { statusText, commandText } from './status.js';
