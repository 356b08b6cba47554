/**
 * Networking end to end (issue 5's scenario): the berth CLI against a berthd with its own
 * default bridge, subnet and iptables chains. A server published with -p answers on 127.0.0.1
 * and on the host's own address through DNAT; the host reaches the container; containers on one
 * user network reach each other by name and not across networks; connect and disconnect work on
 * a running container; bad input gets Docker's statuses and leaves the kernel as it was; a
 * container that died while berthd was down has its network removed at the next start.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { berthCli, busyboxImageTar, redisImageTar, repoRoot, restartDaemon, startDaemon, type Daemon } from '@berth/test-support';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let daemon: Daemon;

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const cli = berthCli(() => daemon.host, { timeoutMs: 30_000 });
/**
 * The br-<id> bridges of this daemon's user networks: every one it made here or listed so far (one
 * that outlives its network is still this daemon's). Other test files' daemons make and remove
 * user networks of their own meanwhile; their bridges are not this file's to count.
 */
const ownBridges = new Set<string>();
const berth = cli.run;
/** cli.ok, noting the bridge of each user network it makes (see ownBridges). */
async function ok(args: string[]): Promise<string> {
  const out = await cli.ok(args);
  if (args[0] === 'network' && args[1] === 'create') ownBridges.add(`br-${out.trim().slice(0, 12)}`);
  return out;
}

async function fails(args: string[], code: number, pattern: RegExp): Promise<void> {
  const r = await berth(args);
  assert.equal(r.code, code, `berth ${args.join(' ')}: want exit ${code}, got ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, pattern);
}

const tag = `${process.pid}${Math.random().toString(16).slice(2, 6)}`;
const name = (what: string): string => `n-${what}-${tag}`;

/** A host TCP port nobody listens on (bound, then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The host's own non-loopback IPv4 address (not one of the test's bridges). */
function hostAddress(): string | undefined {
  for (const [ifname, addrs] of Object.entries(networkInterfaces())) {
    if (ifname.startsWith('bt') || ifname.startsWith('br-') || ifname.startsWith('docker') || ifname.startsWith('veth')) continue;
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}


/** What this daemon has in the kernel: links on its bridges, netns files, rules in its chains. */
async function kernelState(): Promise<string[]> {
  const net = daemon.net!;
  for (const id of (await ok(['network', 'ls', '-q', '--no-trunc'])).split('\n').filter(Boolean)) ownBridges.add(`br-${id.slice(0, 12)}`);
  const links = (await sh('ip', ['-o', 'link', 'show'])).stdout
    .split('\n')
    .map((l) => ({ line: l, name: (l.split(':')[1] ?? '').trim().split('@')[0]! }))
    .filter(({ line, name }) => line.includes(`master ${net.bridge}`) || ownBridges.has(name))
    .map(({ name }) => name);
  let netns: string[] = [];
  try {
    netns = readdirSync(join(daemon.execRoot, 'netns')).map((f) => `netns ${f}`);
  } catch {
    // no sandbox yet
  }
  const rules: string[] = [];
  for (const table of ['nat', 'filter']) {
    for (const l of (await sh('iptables', ['-w', '-t', table, '-S'])).stdout.split('\n')) {
      if (l.includes(net.chainPrefix) && (l.includes('DNAT') || l.includes('-j ACCEPT') && l.includes('--dport'))) rules.push(`${table} ${l}`);
    }
  }
  return [...links.map((l) => `link ${l}`), ...netns, ...rules].sort();
}

/** The kernel comes back to `want`: veths go with their namespace, in the background, shortly after. */
async function settles(want: string[], timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let got = await kernelState();
  while (JSON.stringify(got) !== JSON.stringify(want) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    got = await kernelState();
  }
  assert.deepEqual(got, want);
}

async function ipOf(container: string, network = ''): Promise<string> {
  if (!network) return (await ok(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', container])).trim();
  const nets = JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', container])) as Record<string, { IPAddress: string }>;
  return nets[network]?.IPAddress ?? '';
}

describe('networking: bridge, published ports, user networks, DNS', { timeout: 240_000 }, () => {
  let baseline: string[] = [];

  before(async () => {
    daemon = await startDaemon();
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
    baseline = await kernelState();
  });
  after(async () => {
    await daemon?.cleanup();
  });

  test('the predefined networks: bridge on the daemon bridge, host and none', async () => {
    const ls = await ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}']);
    assert.deepEqual(ls.trim().split('\n').sort(), ['bridge bridge local', 'host host local', 'none null local']);
    const inspect = JSON.parse(await ok(['network', 'inspect', 'bridge'])) as { Options: Record<string, string>; IPAM: { Config: { Subnet: string; Gateway: string }[] } }[];
    assert.equal(inspect[0]!.Options['com.docker.network.bridge.name'], daemon.net!.bridge);
    assert.equal(inspect[0]!.IPAM.Config[0]!.Gateway, daemon.net!.bip.split('/')[0]);
    await fails(['network', 'rm', 'bridge'], 1, /bridge is a pre-defined network and cannot be removed/);
    // none: a namespace of its own with lo up (Docker's sandbox), gone with the container.
    const links = await ok(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'ip -o link | cut -d" " -f2,3; ping -c1 -W2 127.0.0.1 >/dev/null && echo lo-answers']);
    assert.equal(links, 'lo: <LOOPBACK,UP,LOWER_UP>\nlo-answers\n');
    assert.deepEqual(readdirSync(join(daemon.execRoot, 'netns')), []);
  });

  test('a server published with -p answers on 127.0.0.1 and on the host address, through DNAT in the kernel', async (t) => {
    const tar = await redisImageTar();
    if (!tar) return t.skip('redis-server is not installed on the host');
    await ok(['import', '-c', 'CMD ["redis-server", "--protected-mode", "no"]', tar, `redis:${tag}`]);
    const port = await freePort();
    const c = name('redis');
    await ok(['run', '-d', '--name', c, '-p', `${port}:6379`, `redis:${tag}`]);
    const ip = await ipOf(c);
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
    const pong = async (host: string): Promise<string> => {
      for (let i = 0; i < 50; i++) {
        const r = await sh('redis-cli', ['-h', host, '-p', String(port), 'ping']);
        if (r.stdout.trim() === 'PONG') return 'PONG';
        await new Promise((res) => setTimeout(res, 100));
      }
      return 'no answer';
    };
    assert.equal(await pong('127.0.0.1'), 'PONG');
    const hostIp = hostAddress();
    if (hostIp) assert.equal(await pong(hostIp), 'PONG');
    const nat = (await sh('iptables', ['-w', '-t', 'nat', '-S', daemon.net!.chainPrefix])).stdout;
    assert.match(nat, new RegExp(`--dport ${port} -j DNAT --to-destination ${ip.replace(/\./g, '\\.')}:6379`));
    // No userland proxy on the data path: nothing but redis in the container listens, and berthd holds no socket on the port.
    const ss = (await sh('ss', ['-ltnp', `sport = :${port}`])).stdout;
    assert.doesNotMatch(ss, /berthd|node/);
    assert.equal((await sh('busybox', ['ping', '-c', '1', '-W', '2', ip])).code, 0, 'the host pings the container');
    const links = (await sh('ip', ['-o', 'link', 'show', 'master', daemon.net!.bridge])).stdout;
    assert.match(links, /veth[0-9a-f]+@/, 'the container veth is on the bridge');
    assert.equal((await ok(['port', c])).trim(), `6379/tcp -> 0.0.0.0:${port}`);
    assert.match(await ok(['ps', '--format', '{{.Ports}}', '--filter', `name=${c}`]), new RegExp(`0\\.0\\.0\\.0:${port}->6379/tcp`));
    // The port is Berth's now: a second container asking for it gets 409.
    await fails(['run', '-d', '--name', name('redis2'), '-p', `${port}:6379`, `redis:${tag}`], 125, /port is already allocated/);
    await ok(['rm', '-f', c, name('redis2')]).catch(() => ok(['rm', '-f', c]));
    assert.notEqual((await sh('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ping'])).stdout.trim(), 'PONG');
    await settles(baseline);
  });

  test('-P publishes every exposed port on an ephemeral host port; berth port lists them', async () => {
    const c = name('pall');
    await ok(['run', '-d', '--name', c, '-P', '--expose', '8080', '--expose', '53/udp', 'busybox', 'sleep', '60']);
    const lines = (await ok(['port', c])).trim().split('\n').sort();
    assert.equal(lines.length, 2);
    const [lo, hi] = (await sh('cat', ['/proc/sys/net/ipv4/ip_local_port_range'])).stdout.trim().split(/\s+/).map(Number);
    for (const [i, want] of ['53/udp', '8080/tcp'].entries()) {
      const m = new RegExp(`^${want} -> 0\\.0\\.0\\.0:(\\d+)$`).exec(lines[i]!);
      assert.ok(m, lines[i]);
      assert.ok(Number(m[1]) >= lo! && Number(m[1]) <= hi!, `${m[1]} in ${lo}-${hi}`);
    }
    await ok(['rm', '-f', c]);
    await settles(baseline);
  });

  test('--mac-address, --dns, --dns-search, --add-host and -h reach the container', async () => {
    const c = name('opts');
    await ok(['run', '-d', '--name', c, '--mac-address', '02:42:ac:11:99:99', '--dns', '10.9.9.9', '--dns-search', 'example.test', '--add-host', 'foo:10.1.2.3', '-h', 'myhost', 'busybox', 'sleep', '60']);
    assert.match(await ok(['exec', c, 'ip', '-o', 'link', 'show', 'eth0']), /link\/ether 02:42:ac:11:99:99/);
    assert.equal((await ok(['inspect', '-f', '{{.NetworkSettings.MacAddress}}', c])).trim(), '02:42:ac:11:99:99');
    const resolv = await ok(['exec', c, 'cat', '/etc/resolv.conf']);
    assert.deepEqual(resolv.split('\n').filter((l) => /^(nameserver|search) /.test(l)), ['nameserver 10.9.9.9', 'search example.test']);
    assert.match(await ok(['exec', c, 'cat', '/etc/hosts']), /^10\.1\.2\.3\tfoo$/m);
    assert.match(await ok(['exec', c, 'cat', '/etc/hosts']), /^\d+\.\d+\.\d+\.\d+\tmyhost$/m);
    assert.equal((await ok(['exec', c, 'hostname'])).trim(), 'myhost');
    await ok(['rm', '-f', c]);
    await settles(baseline);
  });

  test('a port another program listens on is refused with 409 and nothing is made', async () => {
    const srv: Server = createServer();
    await new Promise<void>((r) => srv.listen(0, '0.0.0.0', () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      await fails(['run', '-d', '--name', name('busy'), '-p', `${port}:80`, 'busybox', 'sleep', '30'], 125, /port is already allocated/);
      assert.equal((await ok(['inspect', '-f', '{{.State.Status}}', name('busy')])).trim(), 'created');
      await settles(baseline);
    } finally {
      srv.close();
      await berth(['rm', '-f', name('busy')]);
    }
  });

  test('two containers on one user network reach each other by name and alias; not across networks', async () => {
    const a = name('neta');
    const b = name('netb');
    await ok(['network', 'create', a]);
    await ok(['network', 'create', '--subnet', '10.251.77.0/24', '--gateway', '10.251.77.254', b]);
    const insp = JSON.parse(await ok(['network', 'inspect', b])) as { IPAM: { Config: { Subnet: string; Gateway: string }[] }; Options: Record<string, string> }[];
    assert.deepEqual(insp[0]!.IPAM.Config[0], { Subnet: '10.251.77.0/24', Gateway: '10.251.77.254' });
    const srv = name('srv');
    await ok(['run', '-d', '--name', srv, '--network', a, '--network-alias', 'db', 'busybox', 'sleep', '120']);
    const other = name('other');
    await ok(['run', '-d', '--name', other, '--network', b, '--ip', '10.251.77.9', 'busybox', 'sleep', '120']);
    assert.equal(await ipOf(other, b), '10.251.77.9');
    const byName = await ok(['run', '--rm', '--network', a, 'busybox', 'sh', '-c', `ping -c1 -W2 ${srv} >/dev/null && ping -c1 -W2 db >/dev/null && echo reached`]);
    assert.equal(byName.trim(), 'reached');
    const resolv = await ok(['run', '--rm', '--network', a, 'busybox', 'cat', '/etc/resolv.conf']);
    assert.match(resolv, /^nameserver 127\.0\.0\.11$/m);
    // Across networks: neither the name resolves nor the address answers.
    const across = await berth(['run', '--rm', '--network', b, 'busybox', 'sh', '-c', `nslookup ${srv} 127.0.0.11 >/dev/null 2>&1 && echo resolved; ping -c1 -W1 ${await ipOf(srv, a)} >/dev/null 2>&1 && echo reached; echo done`]);
    assert.equal(across.stdout.trim(), 'done');
    // A static address in use and one outside the subnet.
    await fails(['run', '-d', '--name', name('dup'), '--network', b, '--ip', '10.251.77.9', 'busybox', 'sleep', '5'], 125, /10\.251\.77\.9|in use|allocated/i);
    await fails(['run', '-d', '--name', name('outside'), '--network', b, '--ip', '10.9.9.9', 'busybox', 'sleep', '5'], 125, /does not belong|subnet/);
    await berth(['rm', '-f', name('dup'), name('outside')]);
    // In use: rm is refused; after the containers go, it succeeds.
    await fails(['network', 'rm', a], 1, /has active endpoints/);
    await ok(['rm', '-f', srv, other]);
    await ok(['network', 'rm', a, b]);
    await settles(baseline);
  });

  test('connect and disconnect a running container', async () => {
    const n = name('conn');
    await ok(['network', 'create', n]);
    const c = name('conn-c');
    const peer = name('conn-peer');
    await ok(['run', '-d', '--name', peer, '--network', n, 'busybox', 'sleep', '120']);
    await ok(['run', '-d', '--name', c, 'busybox', 'sleep', '120']);
    await ok(['network', 'connect', '--alias', 'second', n, c]);
    const addrs = await ok(['exec', c, 'ip', '-o', '-4', 'addr', 'show']);
    assert.match(addrs, /eth0/);
    assert.match(addrs, /eth1/);
    // c keeps the resolv.conf of the default bridge (as in Docker); the peer resolves c's alias on the user network.
    assert.equal((await ok(['exec', c, 'sh', '-c', `ping -c1 -W2 ${await ipOf(peer, n)} >/dev/null && echo ok`])).trim(), 'ok');
    assert.equal((await ok(['exec', peer, 'sh', '-c', 'ping -c1 -W2 second >/dev/null && echo ok'])).trim(), 'ok');
    const nets = JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', c])) as Record<string, { IPAddress: string }>;
    assert.deepEqual(Object.keys(nets).sort(), ['bridge', n].sort());
    await fails(['network', 'connect', n, c], 1, /already exists/);
    await ok(['network', 'disconnect', n, c]);
    assert.doesNotMatch(await ok(['exec', c, 'ip', '-o', 'link', 'show']), /eth1/);
    await fails(['network', 'disconnect', n, c], 1, new RegExp(`container [0-9a-f]{64} is not connected to the network ${n}`));
    // dockerd's order and words: the container first; a forced disconnect of a gone one names its endpoint.
    await fails(['network', 'connect', name('nonet'), name('nocont')], 1, new RegExp(`No such container: ${name('nocont')}`));
    await fails(['network', 'disconnect', '-f', n, name('nocont')], 1, new RegExp(`endpoint ${name('nocont')} not found`));
    await ok(['rm', '-f', c, peer]);
    await ok(['network', 'rm', n]);
    await settles(baseline);
  });

  test('events: network connect before the container starts, disconnect after it dies, one per network (as dockerd)', async () => {
    const n = name('ev');
    const netId = (await ok(['network', 'create', n])).trim();
    const since = String(Math.floor(Date.now() / 1000) - 1);
    const id = (await ok(['run', '-d', '--network', n, 'busybox', 'true'])).trim();
    assert.equal((await ok(['wait', id])).trim(), '0');
    await ok(['rm', id]);
    const until = String(Math.ceil(Date.now() / 1000) + 1);
    const lines = (await ok(['events', '--since', since, '--until', until, '--format', '{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.container}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}}']))
      .split('\n')
      .filter((l) => l.includes(id));
    assert.deepEqual(
      lines.map((l) => l.split(' ').slice(0, 2).join(' ')),
      ['container create', 'network connect', 'container start', 'container die', 'network disconnect', 'container destroy'],
      lines.join('\n'),
    );
    for (const l of lines.filter((x) => x.startsWith('network '))) assert.equal(l.split(' ').slice(2).join(' '), `${netId} ${id} ${n} bridge`);
    await ok(['network', 'rm', n]);
  });

  test('bad input: Docker statuses, and the kernel left as it was', async () => {
    await fails(['network', 'create', '--subnet', '10.250.0.0/33', name('bad1')], 1, /invalid/i);
    await fails(['network', 'create', '--subnet', '10.250.1.0/24', '--gateway', '10.250.2.1', name('bad2')], 1, /no matching subnet|not in the subnet/);
    await fails(['network', 'create', '-d', 'nosuchdriver', name('bad3')], 1, /plugin "nosuchdriver" not found/);
    await fails(['network', 'create', '--subnet', daemon.net!.bip.replace(/\.1\/24$/, '.0/24'), name('bad4')], 1, /overlaps/);
    await ok(['network', 'create', name('dup')]);
    await fails(['network', 'create', name('dup')], 1, /network with name .* already exists/);
    await ok(['network', 'rm', name('dup')]);
    await fails(['network', 'rm', name('nosuch')], 1, /not found/);
    for (const predefined of ['bridge', 'host', 'none']) await fails(['network', 'create', predefined], 1, new RegExp(`^Error response from daemon: operation is not permitted on predefined ${predefined} network \n$`));
    await fails(['run', '--rm', '-p', '70000:80', 'busybox', 'true'], 125, /invalid|port/i);
    await fails(['run', '--rm', '-p', 'abc', 'busybox', 'true'], 125, /invalid|port/i);
    await fails(['run', '--rm', '--network', name('nosuch'), 'busybox', 'true'], 125, /not found/);
    const api = await sh('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--unix-socket', daemon.socket, '-X', 'DELETE', 'http://x/networks/host']);
    assert.equal(api.stdout, '403');
    await settles(baseline);
  });

  test('a network driver plugin on a socket (the SDK example) serves a network: create, run, rm', async () => {
    const plugin = `hello${tag}`;
    const child = spawn(process.execPath, [join(repoRoot(), 'tools/examples/hello-network-plugin.mjs'), plugin], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    try {
      for (let i = 0; i < 100 && !existsSync(`/run/berth/plugins/${plugin}.sock`); i++) await new Promise((r) => setTimeout(r, 50));
      const n = name('plug');
      await ok(['network', 'create', '-d', plugin, n]);
      assert.match(await ok(['network', 'ls', '--filter', `driver=${plugin}`, '--format', '{{.Name}}']), new RegExp(n));
      const links = await ok(['run', '--rm', '--network', n, 'busybox', 'ip', '-o', 'link', 'show']);
      assert.deepEqual(links.trim().split('\n').map((l) => l.split(':')[1]!.trim()), ['lo']);
      await ok(['network', 'rm', n]);
      for (const call of ['CreateNetwork', 'CreateEndpoint', 'Join', 'Leave', 'DeleteEndpoint', 'DeleteNetwork']) assert.match(log, new RegExp(`${plugin}: ${call} `));
    } finally {
      child.kill('SIGTERM');
    }
  });

  test('a container that died while berthd was down loses its network at the next start', async () => {
    const c = name('crash');
    const port = await freePort();
    await ok(['run', '-d', '--name', c, '-p', `${port}:80`, 'busybox', 'sleep', '300']);
    const pid = Number((await ok(['inspect', '-f', '{{.State.Pid}}', c])).trim());
    assert.notDeepEqual(await kernelState(), baseline);
    await daemon.kill();
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    daemon = await restartDaemon(daemon);
    for (let i = 0; i < 50 && (await ok(['inspect', '-f', '{{.State.Status}}', c])).trim() !== 'exited'; i++) await new Promise((r) => setTimeout(r, 100));
    await settles(baseline);
    await ok(['rm', '-f', c]);
  });
});
