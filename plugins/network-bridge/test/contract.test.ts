// The NetworkDriver contract suite against the bridge driver, in-process and over the plugin
// socket: once over fakes (netlink model, the real Firewall over FakeIptables, an in-memory
// /proc; runs anywhere), and as root once over the real kernel, each case inside a fresh
// network namespace it makes and removes (links, iptables and sysctls of the machine untouched).
import { mkdtempSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIptables } from '@berth/iptables';
import { FakeIptables } from '@berth/iptables/testing';
import { openNetlinkIn } from '@berth/netlink';
import { createNetns, deleteNetns, inNetns } from '@berth/native';
import { FakeNetworkKernel } from '@berth/netlink/testing';
import { createBridgeDriver, procFiles, type ProcFiles } from '@berth/network-bridge';
import { networkDriverSuite, silentDriverLogger } from '@berth/plugin-testkit';

function memProc(): ProcFiles {
  const files = new Map<string, string>([
    ['/proc/sys/net/ipv4/ip_forward', '0\n'],
    ['/proc/sys/net/ipv4/ip_local_port_range', '32768\t60999\n'],
    ['/proc/sys/net/bridge/bridge-nf-call-iptables', '0\n'],
  ]);
  return {
    read: async (p) => {
      const v = files.get(p);
      if (v !== undefined) return v;
      if (p.startsWith('/proc/net/')) return 'header\n';
      throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
    },
    write: async (p, d) => void files.set(p, d),
  };
}

networkDriverSuite(
  'bridge (fakes)',
  async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'bridge-contract-'));
    const driver = await createBridgeDriver({
      stateDir,
      logger: silentDriverLogger,
      netlink: new FakeNetworkKernel().netlink(),
      iptables: new FakeIptables(),
      proc: memProc(),
      loadBrNetfilter: async () => undefined,
    });
    return { driver, cleanup: async () => rmSync(stateDir, { recursive: true, force: true }) };
  },
  { joinInterface: 'always' },
);

const root = typeof process.getuid === 'function' && process.getuid() === 0;
const base = `/run/berth-test/bridge-contract-${process.pid}-${randomBytes(3).toString('hex')}`;
let n = 0;

function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(prefix));
}

networkDriverSuite(
  'bridge (kernel, fresh netns)',
  async () => {
    const ns = `${base}/ns${n++}`;
    const stateDir = mkdtempSync(join(tmpdir(), 'bridge-contract-'));
    createNetns(ns);
    const netlink = openNetlinkIn(ns, inNetns);
    try {
      const driver = await createBridgeDriver({
        stateDir,
        logger: silentDriverLogger,
        netlink,
        iptables: createIptables({ netnsPath: ns }),
        proc: procFiles(ns),
        loadBrNetfilter: async () => undefined,
      });
      return {
        driver,
        cleanup: async () => {
          const left = (await netlink.links()).map((l) => l.name).filter((x) => x !== 'lo');
          netlink.close();
          deleteNetns(ns);
          rmSync(stateDir, { recursive: true, force: true });
          try {
            rmdirSync(base);
          } catch {
            // other cases' namespaces are still there
          }
          if (left.length > 0) throw new Error(`links left in the driver's namespace after the case: ${left.join(', ')}`);
          if (mountsUnder(ns).length > 0) throw new Error(`netns ${ns} still mounted`);
        },
      };
    } catch (err) {
      netlink.close();
      deleteNetns(ns);
      throw err;
    }
  },
  { joinInterface: 'always', ...(root ? {} : { transports: [] }) },
);
