export { createCgroupManager } from './manager.js';
export type { CreateCgroupManagerOptions } from './manager.js';
export type { BlkioEntry, BlkioStats, CgroupHandle, CgroupManager, CgroupStats, CpuStats, DestroyOptions, MemoryStats, PidsStats } from './types.js';
export { parseBlkioV1, parseIoStatV2 } from './common.js';
export { detectLayout, findUnifiedMount, parseMountinfo, parseProcCgroups } from './detect.js';
export type { CgroupLayout, DetectInput, MountInfoEntry, ProcCgroupsEntry, UnifiedMount, V1Hierarchy } from './detect.js';
export { realCgroupFs, realProcessKiller } from './fs.js';
export type { CgroupDirEntry, CgroupFs, ProcessKiller } from './fs.js';
export { normalizeCgroupPath } from './path.js';
export { blkioWeightToIoWeight, sharesToWeight, swapToV2, validateResources } from './resources.js';
export type {
  BlockIOResources,
  CgroupWarning,
  CpuResources,
  DeviceRule,
  HugepageLimit,
  MemoryResources,
  PidsResources,
  Resources,
  ThrottleDevice,
  WeightDevice,
} from './resources.js';
export { deviceRule } from './v1.js';
export { compileDeviceFilter, deviceFilterInsns, disassembleDeviceFilter, encodeInsns, installDeviceFilter, realDeviceBpf } from './device-filter.js';
export type { BpfInsn, DeviceBpf, DeviceFilterInstall } from './device-filter.js';
