export {
  conformanceCase,
  runtimesUnderTest,
  referenceOf,
  describeRuntimes,
  leakScope,
  runForeground,
  assertExit,
  isRoot,
  MARKER,
  MARKER_ENV,
} from './harness.js';
export type { CaseContext, CaseDef } from './harness.js';
export {
  normaliseMount,
  normaliseMounts,
  normaliseDev,
  normaliseCgroupLines,
  namespacesDifferingFromHost,
  capMask,
  NS_ENTRY_TO_OCI,
} from './normalise.js';
export type { MountView, MountContext } from './normalise.js';
