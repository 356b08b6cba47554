import { ipamDescriptorHarness, ipamDriverSuite } from '@berth/plugin-testkit';
import { defaultIpam } from '@berth/ipam-default';

// The whole IPAM contract, in-process and over the plugin socket, with every claim.
ipamDriverSuite('default', ipamDescriptorHarness(defaultIpam), {
  claims: { dynamicPools: true, subPool: true, v6: true, dynamicV6: true, avoidOption: true, serial: true, dockerErrors: true },
});
