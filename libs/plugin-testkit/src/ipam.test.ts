import { fakeIpamDriver } from './ipam/fake.js';
import { ipamDriverSuite } from './ipam/suite.js';

// The suite is satisfiable with every claim: the in-memory fake passes it, in-process and over the socket.
ipamDriverSuite('fake', async () => ({ driver: fakeIpamDriver(), cleanup: async () => {} }), {
  claims: { dynamicPools: true, subPool: true, v6: true, dynamicV6: true, avoidOption: true, serial: true, dockerErrors: true },
});
