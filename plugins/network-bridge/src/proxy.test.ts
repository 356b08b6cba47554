import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo } from 'node:net';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { startProxy } from './proxy.js';

const silent = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, child() { return silent; } };

async function freePorts(n: number): Promise<number> {
  // a base port with n free consecutive TCP and UDP ports on 127.0.0.1 (probed, retried)
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const held: { close(): void }[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const s = createServer();
        s.listen(base + i, '127.0.0.1');
        await once(s, 'listening');
        held.push(s);
        const u = createSocket('udp4');
        u.bind(base + i, '127.0.0.1');
        await once(u, 'listening');
        held.push(u);
      }
      return base;
    } catch {
      // taken: try another base
    } finally {
      for (const h of held) h.close();
    }
  }
  throw new Error('no free ports');
}

test('tcp: every port of the range relays to its container port, close stops listening', async () => {
  const servers = await Promise.all(
    [0, 1].map(async (i) => {
      const s = createServer((c) => c.end(`port ${i}`));
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
      return s;
    }),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  const hp = await freePorts(1);
  // two proxies asking for the same host port: the first wins, the second is 409
  const ok = await startProxy({ proto: 'tcp', hostIp: '127.0.0.1', hostPort: hp, hostPortEnd: hp, containerIp: '127.0.0.1', containerPort: ports[0]!, containerPortEnd: ports[0]! }, silent);
  const clash = await startProxy({ proto: 'tcp', hostIp: '127.0.0.1', hostPort: hp, hostPortEnd: hp, containerIp: '127.0.0.1', containerPort: ports[1]!, containerPortEnd: ports[1]! }, silent).catch((e: Error) => e);
  assert.ok(clash instanceof Error && (clash as Error & { code?: string }).code === 'BERTH_PORT_ALLOCATED', 'a second proxy on the same port is 409');
  const got = await new Promise<string>((resolve, reject) => {
    let b = '';
    const c = connect(hp, '127.0.0.1');
    c.on('data', (d) => (b += d));
    c.on('end', () => resolve(b));
    c.on('error', reject);
  });
  assert.equal(got, 'port 0');
  await ok.close();
  await assert.rejects(
    new Promise((resolve, reject) => {
      const c = connect(hp, '127.0.0.1');
      c.on('connect', resolve);
      c.on('error', reject);
    }),
    /ECONNREFUSED/,
  );
  for (const s of servers) s.close();
});

test('udp: a range relays each port and answers go back to the client', async () => {
  // the container side is a consecutive range: three echo servers on consecutive ports
  const cbase = await freePorts(3);
  const echo = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const u = createSocket('udp4');
      u.on('message', (m, r) => u.send(`echo ${i} ${m}`, r.port, r.address));
      u.bind(cbase + i, '127.0.0.1');
      await once(u, 'listening');
      return u;
    }),
  );
  const hbase = await freePorts(3);
  const p = await startProxy({ proto: 'udp', hostIp: '127.0.0.1', hostPort: hbase, hostPortEnd: hbase + 2, containerIp: '127.0.0.1', containerPort: cbase, containerPortEnd: cbase + 2 }, silent);
  const client = createSocket('udp4');
  client.bind(0, '127.0.0.1');
  await once(client, 'listening');
  client.send('hi', hbase + 2, '127.0.0.1');
  const [msg] = (await once(client, 'message')) as [Buffer];
  assert.equal(String(msg), 'echo 2 hi');
  client.close();
  await p.close();
  for (const u of echo) u.close();
});
