export { graphDriverSuite, CAP_NET_RAW_XATTR } from './graph/suite.js';
export type { GraphDriverHarness, GraphDriverSuiteOptions, GraphCapability } from './graph/suite.js';
export { FakeGraphDriver, fakeGraphDriver } from './graph/fake.js';
export { layerTar, drain } from './graph/tar.js';
export type { TarMember } from './graph/tar.js';
export { snapshotTree, snapshotDiff, listTree, WATCHED_XATTRS } from './graph/tree.js';
export type { TreeOptions } from './graph/tree.js';
export { descriptorHarness, silentDriverLogger } from './graph/harness.js';
