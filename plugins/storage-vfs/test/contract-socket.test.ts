import { descriptorHarness, graphDriverSuite, graphOverSocket } from '@berth/plugin-testkit';
import { vfsDriver } from '@berth/storage-vfs';

// The graph contract with vfs behind the plugin socket (serve() + connect()): every Diff is a
// tar streamed over HTTP, every ApplyDiff a tar streamed as a request body.
graphDriverSuite('vfs over the plugin socket', graphOverSocket(descriptorHarness(vfsDriver)), {});
