import { fakeNetworkDriver } from './network/fake.js';
import { networkDriverSuite } from './network/suite.js';

// The suite is satisfiable: the in-memory fake passes it, in-process and over the socket.
networkDriverSuite('fake', async () => ({ driver: fakeNetworkDriver(), cleanup: async () => {} }), { joinInterface: 'always' });
