export { repoRoot, probePath, ensureProbe, makeTempDir, uniqueSuffix } from './paths.js';
export type { TempDir } from './paths.js';
export { cachedBusyboxRootfs, copyRootfs, ROOTFS_CACHE_DIR } from './rootfs-cache.js';
export { runcDefaultSpec, baseSpec, PROBE_IN_CONTAINER } from './spec.js';
export type { OciSpec, OciMount } from './spec.js';
export { makeBundle } from './bundle.js';
export type { Bundle, BundleOptions } from './bundle.js';
export {
  ALL_RUNTIMES,
  RUNTIMES_ENV,
  DEFAULT_RUNTIMES,
  selectedRuntimes,
  resolveRuntime,
  createRuntime,
  requireAvailable,
  startRuntime,
  runRuntime,
  forceDelete,
  describeRun,
  which,
  berthRuntimeInTree,
  isCgroupHybrid,
  crunHybridWrapper,
} from './runtime.js';
export type { RuntimeName, RuntimeInfo, Runtime, RunOptions, RunResult, RunningRuntime } from './runtime.js';
export { snapshotLeaks, diffLeaks, assertNoLeaks, assertNoLeaksEventually } from './leaks.js';
export type { LeakScope, LeakSnapshot } from './leaks.js';
export { parseProbeOutput } from './probe.js';
export type { ProbeReport, ProbeMount, ProbeFdKind, ProbeSignalReport, ProbeWriteReport, ProbeSyscallReport } from './probe.js';
export { startDaemon, restartDaemon, berthdPath, berthCliPath, ping, referenceDockerd, REFERENCE_DOCKERD_SOCKET, uniqueNet, removeDaemonNet } from './daemon.js';
export type { Daemon, DaemonOptions, DaemonNet } from './daemon.js';
export { busyboxImageTar, redisImageTar } from './image.js';
export { berthCli, dockerCli, DOCKER_CLI } from './cli.js';
export type { BerthCli, CliOptions, CliResult } from './cli.js';
