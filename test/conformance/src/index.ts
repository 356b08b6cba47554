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
  badInputCase,
  BAD_INPUT_RUNTIMES_ENV,
} from './harness.js';
export type { CaseContext, CaseDef, BadInputContext, BadInputDef } from './harness.js';
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
