import { descriptorHarness, graphDriverSuite } from '@berth/plugin-testkit';
import { vfsDriver } from '@berth/storage-vfs';

// Every case of the contract; device nodes, owners and security.capability need root (named
// skips otherwise).
graphDriverSuite(
  'vfs',
  descriptorHarness(vfsDriver),
  {},
);
