import { networkDescriptorHarness, networkDriverSuite } from '@berth/plugin-testkit';
import { hostDriver, nullDriver } from '@berth/network-host';

// host and null hold one network each, accept endpoint ids they never saw (restarts) and
// move no interface at Join; in-process and over the plugin socket.
networkDriverSuite('host', networkDescriptorHarness(hostDriver), { singleton: true, joinInterface: 'never' });
networkDriverSuite('null', networkDescriptorHarness(nullDriver), { singleton: true, joinInterface: 'never' });
