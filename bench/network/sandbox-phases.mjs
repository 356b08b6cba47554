// Where a container's network setup and teardown spend their time: the controller with the real
// bridge driver and default IPAM (no daemon, no container), N sandboxes made and removed in a
// row, mean ms per phase. Its own bridge, subnet and chain prefix; removed at the end.
//   node bench/network/sandbox-phases.mjs [N]
import { NetworkController } from '@berth/network';
import { bridgeDriver } from '@berth/network-bridge';
import { hostDriver, nullDriver } from '@berth/network-host';
import { defaultIpam } from '@berth/ipam-default';
import { createRootLogger } from '@berth/log';
import { createNetns, deleteNetns, netnsExists, inNetns } from '@berth/native';
import { openNetlink, openNetlinkIn } from '@berth/netlink';
import { mkdtempSync, mkdirSync } from 'node:fs';
const log = createRootLogger('silent');
const dir = mkdtempSync('/tmp/ctlb-');
const tag = (process.pid % 100000).toString(36);
const bridge = `bp${tag}`;
const prefix = `BP${tag.toUpperCase()}`;
const acc = new Map();
const timed = (name, fn) => async (...a) => { const t = performance.now(); try { return await fn(...a); } finally { acc.set(name, (acc.get(name) ?? 0) + performance.now() - t); } };
const timedSync = (name, fn) => (...a) => { const t = performance.now(); try { return fn(...a); } finally { acc.set(name, (acc.get(name) ?? 0) + performance.now() - t); } };
import { networkDriverMethods } from '@berth/plugin-api';
const NL = ['links','link','createBridge','createVeth','deleteLink','setLink','setHairpin','addresses','addAddress','delAddress','routes','addRoute','delRoute'];
const wrap = (obj, prefix) => { const names = prefix === 'drv.' ? Object.values(networkDriverMethods) : NL; for (const k of names) obj[k] = timed(prefix + k, obj[k].bind(obj)); return obj; };
const mk = async (d, opts = {}) => { const s = `${dir}/${d.name}`; mkdirSync(s); return d.create({ stateDir: s, logger: log, options: opts }); };
const br = wrap(await mk(bridgeDriver, { 'chain-prefix': prefix }), 'drv.');
const drivers = new Map([['bridge', br], ['host', await mk(hostDriver)], ['null', await mk(nullDriver)]]);
const ipams = new Map([['default', await mk(defaultIpam)]]);
const c = await NetworkController.open({ stateDir: `${dir}/state`, netnsDir: `${dir}/netns`, logger: log, drivers, ipams, defaultBridge: { name: bridge, subnet: '10.219.3.0/24', gateway: '10.219.3.1' },
  netlink: () => wrap(openNetlink(), 'nl.'), netlinkIn: (p) => { const t = performance.now(); const n = openNetlinkIn(p, inNetns); acc.set('nlIn.open', (acc.get('nlIn.open') ?? 0) + performance.now() - t); return wrap(n, 'nlIn.'); },
  netns: { create: timedSync('netns.create', createNetns), remove: timedSync('netns.remove', (p) => deleteNetns(p)), exists: (p) => netnsExists(p) } });
const N = Number(process.argv[2] ?? 10);
for (let i = 0; i < N + 2; i++) {
  if (i === 2) acc.clear();
  const id = `c${i}`.padEnd(64, '0');
  await timed('TOTAL.create', () => c.createSandbox({ containerId: id, containerName: `/x${i}`, networks: [{ network: 'bridge' }], portBindings: [], exposed: [] }))();
  await timed('TOTAL.remove', () => c.removeSandbox(id))();
}
await c.settled();
for (const [k, v] of [...acc].sort((a, b) => b[1] - a[1])) console.log((v / N).toFixed(2).padStart(7), k);
// Clean up: the bridge and the chains (jumps first).
const { execFileSync } = await import('node:child_process');
const sh = (cmd, args) => { try { return execFileSync(cmd, args, { encoding: 'utf8' }); } catch { return ''; } };
sh('ip', ['link', 'del', bridge]);
for (const t of ['nat', 'filter']) {
  const rules = sh('iptables', ['-w', '-t', t, '-S']).split('\n');
  for (const r of rules) if (r.startsWith('-A ') && r.includes(`-j ${prefix}`) && !r.split(' ')[1].startsWith(prefix)) sh('iptables', ['-w', '-t', t, '-D', ...r.slice(3).split(' ')]);
  for (const r of rules) { const m = /^-N (\S+)$/.exec(r); if (m && m[1].startsWith(prefix)) { sh('iptables', ['-w', '-t', t, '-F', m[1]]); sh('iptables', ['-w', '-t', t, '-X', m[1]]); } }
}
process.exit(0);
