export {
  dockerProfileToOci,
  loadSeccompProfile,
  parseSeccompProfile,
  validateDockerSeccompProfile,
} from './docker-profile.js';
export type {
  DockerSeccompProfile,
  DockerSeccompSyscall,
  DockerSeccompFilter,
  DockerSeccompArchMap,
  DockerProfileOptions,
} from './docker-profile.js';
export { SeccompCache, seccompProfileHash } from './cache.js';
export type { SeccompProgram, SeccompCacheOptions } from './cache.js';
export type { OciSeccomp, OciSeccompSyscall, OciSeccompArg, SeccompAction, SeccompOperator } from '@berth/native';
