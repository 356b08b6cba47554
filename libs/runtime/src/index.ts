export { Runtime } from './runtime.js';
export type { RuntimeOptions, RuntimeCgroups, OciState, ContainerStatus, CreateOptions, RunOptions } from './runtime.js';
export { runtimeCgroups } from './cgroup-binding.js';
export { loadSpec, validateSpec, namespaceTypes } from './spec.js';
export type { OciSpec, OciProcess, OciMount, OciLinux, OciNamespace, OciUser, OciCapabilities, OciDevice, OciIdMapping, NamespaceType } from './spec.js';
export { buildCreatePlan, buildExecPlan, applyProcess, defaultDevices, namespaceFlags, namespaceFiles } from './plan-builder.js';
export type { PlanContext, CgroupMountSource } from './plan-builder.js';
export { capabilityMask, capabilityNumbers, dockerDefaultCapabilities } from './capabilities.js';
export { parseSignal } from './signals.js';
export { parseMountOptions } from './mount-options.js';
export { checkInRoot } from './root-paths.js';
export { StateStore, validateId } from './state-store.js';
export type { ContainerRecord } from './state-store.js';
export { describeFailure, parseFailure } from './launch.js';
export { defaultSpec } from './default-spec.js';
// The seccomp profile conversion lands in ./seccomp/ (export added with it).
