import type { NetworkDriverDescriptor } from '@berth/plugin-api';
import { createHostDriver, createNullDriver } from './driver.js';

export { SingletonNetworkDriver, createHostDriver, createNullDriver } from './driver.js';

/** The `host` driver (network `host`: the daemon's own network namespace). */
export const hostDriver: NetworkDriverDescriptor = {
  kind: 'network',
  name: 'host',
  create: async (deps) => createHostDriver(deps.logger.child({ driver: 'host' })),
};

/** The `null` driver (network `none`: a namespace with only lo). */
export const nullDriver: NetworkDriverDescriptor = {
  kind: 'network',
  name: 'null',
  create: async (deps) => createNullDriver(deps.logger.child({ driver: 'null' })),
};
