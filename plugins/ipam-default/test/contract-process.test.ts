import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, spawnDriverHost } from '@berth/plugin';
import { ipamDriverSuite } from '@berth/plugin-testkit';

// The IPAM contract against the default IPAM in a process of its own (how --isolate-drivers
// runs built-ins): the suite talks to connect()'s client only.
ipamDriverSuite(
  'default (own process)',
  async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-ipam-proc-${process.pid}-`));
    const host = await spawnDriverHost({ module: '@berth/ipam-default', export: 'defaultIpam', socketPath: path.join(dir, 'default.sock'), deps: { stateDir: dir } });
    const driver = connect(host.socketPath, 'IpamDriver', { name: 'default', retry: { timeoutMs: 0 } });
    return {
      driver,
      cleanup: async () => {
        driver.close();
        await host.stop();
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  },
  { transports: ['in-process'], claims: { dynamicV6: true, avoidOption: true, serial: true } },
);
