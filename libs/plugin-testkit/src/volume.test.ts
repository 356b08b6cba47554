import { fakeVolumeDriver } from './volume/fake.js';
import { volumeDriverSuite } from './volume/suite.js';

// The suite is satisfiable with every claim: the fake passes it, in-process and over the socket.
volumeDriverSuite('fake', fakeVolumeDriver, { claims: { hostPaths: true, persistent: true } });
