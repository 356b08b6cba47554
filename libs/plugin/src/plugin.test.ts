import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { BerthError, kindOf } from '@berth/errors';
import type { GraphDriver, IpamDriver, NetworkDriver } from '@berth/plugin-api';
import {
  PluginRegistry,
  connect,
  discover,
  findPlugin,
  parseAddress,
  scanPlugins,
  serve,
  serveNetworkPlugin,
  withRetry,
  type PluginServer,
} from './index.js';

const tmp = (): Promise<string> => fs.mkdtemp(path.join(os.tmpdir(), `berth-plugin-${process.pid}-`));

/** A network driver that records calls; `fail` makes createNetwork throw. */
function tinyNetwork(calls: string[] = []): NetworkDriver {
  const nets = new Set<string>();
  const rec = (m: string) => calls.push(m);
  return {
    name: 'tiny',
    getCapabilities: async (...args: unknown[]) => (rec(`caps:${args.length === 0 || args[0] === undefined ? 'noarg' : 'arg'}`), { Scope: 'local' }),
    createNetwork: async (r) => {
      rec('createNetwork');
      if (r.NetworkID === 'bad') throw new Error('plain failure');
      if (nets.has(r.NetworkID)) throw new BerthError('BERTH_NETWORK_FORBIDDEN', `only one instance of "tiny" network is allowed`);
      nets.add(r.NetworkID);
    },
    deleteNetwork: async () => {},
    createEndpoint: async (r) => ({ Interface: r.Interface.MacAddress === '' ? { MacAddress: '02:42:ac:11:00:02' } : null }),
    endpointOperInfo: async () => ({ Value: { a: 1 } }),
    deleteEndpoint: async () => {},
    join: async () => ({ InterfaceName: { SrcName: 'veth0', DstPrefix: 'eth' }, Gateway: '172.17.0.1' }),
    leave: async () => {},
    programExternalConnectivity: async () => {},
    revokeExternalConnectivity: async () => {},
    allocateNetwork: async (r) => ({ Options: r.Options }),
    freeNetwork: async () => {},
    discoverNew: async () => {},
    discoverDelete: async () => {},
  };
}

function tinyIpam(): IpamDriver {
  return {
    name: 'tinyipam',
    getCapabilities: async () => ({ RequiresMACAddress: true, RequiresRequestReplay: false }),
    getDefaultAddressSpaces: async () => ({ LocalDefaultAddressSpace: 'L', GlobalDefaultAddressSpace: 'G' }),
    requestPool: async (r) => {
      if (r.Pool === '10.0.0.0/8') throw new BerthError('BERTH_IPAM_POOL_OVERLAP', 'Pool overlaps with other one on this address space');
      return { PoolID: 'p1', Pool: r.Pool || '10.1.0.0/16', Data: {} };
    },
    releasePool: async () => {},
    requestAddress: async () => ({ Address: '10.1.0.2/16', Data: {} }),
    releaseAddress: async () => {},
  };
}

/** A raw HTTP server on a unix socket that records what it got and answers with `answer`. */
async function rawServer(sock: string, answer: (url: string, body: string) => { status: number; body: string }) {
  const seen: { url: string; body: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ url: req.url ?? '', body, headers: req.headers });
      const a = answer(req.url ?? '', body);
      res.writeHead(a.status).end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return { seen, close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }) };
}

test('serve + connect: a network driver over a unix socket behaves like the object', async () => {
  const dir = await tmp();
  const calls: string[] = [];
  const srv = await serve({ network: tinyNetwork(calls) }, path.join(dir, 'tiny.sock'));
  const c = connect(path.join(dir, 'tiny.sock'), 'NetworkDriver');
  try {
    assert.equal(c.name, 'tiny');
    assert.deepEqual(await c.activate(), ['NetworkDriver']);
    assert.deepEqual(await c.getCapabilities(), { Scope: 'local' });
    assert.equal(calls[0], 'caps:noarg');
    assert.equal(await c.createNetwork({ NetworkID: 'n1', Options: {}, IPv4Data: [], IPv6Data: [] }), undefined);
    assert.deepEqual(await c.createEndpoint({ NetworkID: 'n1', EndpointID: 'e1', Interface: { Address: '172.17.0.2/16', AddressIPv6: '', MacAddress: '' }, Options: {} }), { Interface: { MacAddress: '02:42:ac:11:00:02' } });
    assert.deepEqual(await c.join({ NetworkID: 'n1', EndpointID: 'e1', SandboxKey: '/x', Options: {} }), { InterfaceName: { SrcName: 'veth0', DstPrefix: 'eth' }, Gateway: '172.17.0.1' });
    assert.deepEqual(await c.endpointOperInfo({ NetworkID: 'n1', EndpointID: 'e1' }), { Value: { a: 1 } });
    // A Berth error keeps its code and kind across the socket; the message names the call.
    const e1 = await c.createNetwork({ NetworkID: 'n1', Options: {}, IPv4Data: [], IPv6Data: [] }).catch((e: unknown) => e as BerthError);
    assert.equal(e1?.message, 'NetworkDriver.CreateNetwork: only one instance of "tiny" network is allowed');
    assert.equal(e1?.code, 'BERTH_NETWORK_FORBIDDEN');
    assert.equal(kindOf(e1), 'PermissionDenied');
    // A plain error is Internal.
    const e2 = await c.createNetwork({ NetworkID: 'bad', Options: {}, IPv4Data: [], IPv6Data: [] }).catch((e: unknown) => e as BerthError);
    assert.equal(e2?.message, 'NetworkDriver.CreateNetwork: plain failure');
    assert.equal(e2?.code, 'BERTH_PLUGIN');
    assert.equal(kindOf(e2), 'Internal');
  } finally {
    c.close();
    await srv.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
  assert.equal(await fs.stat(path.join(dir, 'tiny.sock')).then(() => true, () => false), false);
});

test('the server answers as the engine expects: empty-body calls, {} for void methods, Error for IPAM, 404 for unknown paths', async () => {
  const dir = await tmp();
  const sock = path.join(dir, 'p.sock');
  const srv = await serve({ network: tinyNetwork(), ipam: tinyIpam() }, sock);
  const post = (p: string, body = ''): Promise<{ status: number; body: string; type: string | undefined }> =>
    new Promise((resolve, reject) => {
      const req = http.request({ socketPath: sock, path: p, method: 'POST', headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), type: res.headers['content-type'] }));
      });
      req.on('error', reject);
      req.end(body);
    });
  try {
    const act = await post('/Plugin.Activate');
    assert.equal(act.status, 200);
    assert.deepEqual(JSON.parse(act.body), { Implements: ['NetworkDriver', 'IpamDriver'] });
    assert.deepEqual(JSON.parse((await post('/NetworkDriver.GetCapabilities')).body), { Scope: 'local' });
    const del = await post('/NetworkDriver.DeleteNetwork', '{"NetworkID":"x"}\n');
    assert.deepEqual([del.status, JSON.parse(del.body)], [200, {}]);
    const ov = await post('/IpamDriver.RequestPool', '{"AddressSpace":"L","Pool":"10.0.0.0/8","SubPool":"","Options":null,"V6":false}\n');
    assert.equal(ov.status, 200);
    assert.deepEqual(JSON.parse(ov.body), { Error: 'Pool overlaps with other one on this address space', BerthCode: 'BERTH_IPAM_POOL_OVERLAP' });
    const nf = await post('/NetworkDriver.GwAllocCheck', '{}');
    assert.equal(nf.status, 404);
    assert.equal((await post('/VolumeDriver.Create', '{}')).status, 404);
    const bad = await post('/NetworkDriver.CreateNetwork', '{not json');
    assert.equal(bad.status, 200);
    assert.match(JSON.parse(bad.body).Err, /not JSON/);
    // Serving a live socket again is refused; the first server keeps it.
    await assert.rejects(serve({ network: tinyNetwork() }, sock), /another process serves it/);
    assert.equal((await post('/Plugin.Activate')).status, 200);
  } finally {
    await srv.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('the client speaks like the engine and understands Go SDK plugins (500 + Err, Error for IPAM, 404 optional)', async () => {
  const dir = await tmp();
  const sock = path.join(dir, 'go.sock');
  const raw = await rawServer(sock, (url) => {
    if (url === '/NetworkDriver.CreateNetwork') return { status: 500, body: '{"Err":"sdk says no"}' };
    if (url === '/NetworkDriver.DeleteNetwork') return { status: 500, body: 'plain text failure\n' };
    if (url === '/NetworkDriver.Leave') return { status: 200, body: '{"Err":"leave failed"}' };
    if (url === '/NetworkDriver.Join') return { status: 200, body: '' };
    if (url === '/IpamDriver.RequestPool') return { status: 200, body: '{"PoolID":"","Pool":"","Data":null,"Error":"ipam says no"}' };
    if (url === '/IpamDriver.ReleasePool') return { status: 200, body: '{"Error":""}' };
    if (url === '/NetworkDriver.GetCapabilities') return { status: 200, body: '{"Scope":"global","Err":""}' };
    return { status: 404, body: '404 page not found\n' };
  });
  const n = connect(`unix://${sock}`, 'NetworkDriver', { name: 'gosdk' });
  const i = connect(`unix://${sock}`, 'IpamDriver');
  try {
    assert.deepEqual(await n.getCapabilities(), { Scope: 'global' });
    await assert.rejects(n.createNetwork({ NetworkID: 'a', Options: {}, IPv4Data: [], IPv6Data: [] }), (e: BerthError) => e.message === 'NetworkDriver.CreateNetwork: sdk says no' && e.code === 'BERTH_PLUGIN');
    await assert.rejects(n.deleteNetwork({ NetworkID: 'a' }), { message: 'NetworkDriver.DeleteNetwork: plain text failure' });
    await assert.rejects(n.leave({ NetworkID: 'a', EndpointID: 'b' }), { message: 'NetworkDriver.Leave: leave failed' });
    await assert.rejects(n.join({ NetworkID: 'a', EndpointID: 'b', SandboxKey: '', Options: {} }), /NetworkDriver\.Join: bad answer/);
    // Optional methods: 404 is "not implemented, fine"; others fail.
    await n.programExternalConnectivity({ NetworkID: 'a', EndpointID: 'b', Options: {} });
    await n.revokeExternalConnectivity({ NetworkID: 'a', EndpointID: 'b' });
    await assert.rejects(n.deleteEndpoint({ NetworkID: 'a', EndpointID: 'b' }), /NetworkDriver\.DeleteEndpoint: 404 page not found/);
    await assert.rejects(i.requestPool({ AddressSpace: 'x', Pool: '', SubPool: '', Options: null, V6: false }), { message: 'IpamDriver.RequestPool: ipam says no' });
    await i.releasePool({ PoolID: 'p' });
    // IPAM GetCapabilities failing (404 here) means the defaults.
    assert.deepEqual(await i.getCapabilities(), { RequiresMACAddress: false, RequiresRequestReplay: false });
    const byUrl = (u: string) => raw.seen.find((s) => s.url === u)!;
    assert.equal(byUrl('/NetworkDriver.GetCapabilities').body, '');
    assert.equal(byUrl('/NetworkDriver.CreateNetwork').body, '{"NetworkID":"a","Options":{},"IPv4Data":[],"IPv6Data":[]}\n');
    assert.equal(byUrl('/NetworkDriver.CreateNetwork').headers.accept, 'application/vnd.docker.plugins.v1.2+json');
    assert.equal(byUrl('/NetworkDriver.CreateNetwork').headers.host, 'plugin.moby.localhost');
    assert.equal(byUrl('/NetworkDriver.CreateNetwork').headers['content-type'], undefined);
  } finally {
    n.close();
    i.close();
    await raw.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('retry schedule: attempts at 0, 1, 3, 7, 15 s, then the error (fake clock)', async () => {
  let clock = 0;
  const at: number[] = [];
  const err = new Error('refused');
  await assert.rejects(
    withRetry({ timeoutMs: 30_000, baseMs: 1000, capMs: 30_000 }, async () => { at.push(clock); throw err; }, () => true, async (ms) => { clock += ms; }, () => clock),
    /refused/,
  );
  assert.deepEqual(at, [0, 1000, 3000, 7000, 15000]);
  // Non-retryable errors surface at once.
  at.length = 0;
  await assert.rejects(withRetry({ timeoutMs: 30_000, baseMs: 1000, capMs: 30_000 }, async () => { at.push(clock); throw err; }, () => false), /refused/);
  assert.equal(at.length, 1);
});

test('a transport failure is retried until the plugin appears; an HTTP error is not retried', async () => {
  const dir = await tmp();
  const sock = path.join(dir, 'late.sock');
  const c = connect(sock, 'NetworkDriver', { retry: { timeoutMs: 3000, baseMs: 50, capMs: 400 } });
  let srv: PluginServer | undefined;
  const later = new Promise<void>((r) => setTimeout(async () => { srv = await serve({ network: tinyNetwork() }, sock); r(); }, 150));
  try {
    const t0 = Date.now();
    assert.deepEqual(await c.getCapabilities(), { Scope: 'local' });
    assert.ok(Date.now() - t0 >= 140);
    await later;
    const quick = connect(path.join(dir, 'never.sock'), 'NetworkDriver', { retry: { timeoutMs: 200, baseMs: 40, capMs: 1000 } });
    const t1 = Date.now();
    await assert.rejects(quick.getCapabilities(), (e: Error) => /ENOENT/.test(e.message));
    assert.ok(Date.now() - t1 < 1000);
  } finally {
    c.close();
    await later;
    await srv?.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('graph driver over the socket: JSON calls, Diff streams a tar, ApplyDiff sends one, errors keep codes', async () => {
  const dir = await tmp();
  const layers = new Map<string, Buffer>();
  const g: GraphDriver = {
    name: 'memg',
    create: async (id, parent) => { if (layers.has(id)) throw new BerthError('BERTH_STORAGE', `layer ${id} exists`); layers.set(id, Buffer.from(parent)); },
    createReadWrite: async (id) => { layers.set(id, Buffer.alloc(0)); },
    remove: async (id) => { if (!layers.delete(id)) throw new BerthError('BERTH_LAYER_NOT_FOUND', `no layer ${id}`); },
    get: async (id, label) => `/layers/${id}${label ? `:${label}` : ''}`,
    put: async () => {},
    exists: async (id) => layers.has(id),
    status: async () => [['Layers', String(layers.size)]],
    getMetadata: async (id) => ({ Dir: `/layers/${id}` }),
    cleanup: async () => {},
    diff: async (id) => { const b = layers.get(id); if (b === undefined) throw new BerthError('BERTH_LAYER_NOT_FOUND', `no layer ${id}`); return Readable.from([b]); },
    changes: async () => [{ path: '/a', kind: 1 }],
    applyDiff: async (id, _p, s) => { const chunks: Buffer[] = []; for await (const c of s) chunks.push(c as Buffer); const b = Buffer.concat(chunks); layers.set(id, b); return b.length; },
    diffSize: async (id) => layers.get(id)?.length ?? 0,
    capabilities: async () => ({ reproducesExactDiffs: true }),
  };
  const srv = await serve({ graph: g }, path.join(dir, 'g.sock'));
  const c = connect(path.join(dir, 'g.sock'), 'GraphDriver', { graphInit: { Home: dir, Opts: null, UIDMaps: null, GIDMaps: null } });
  try {
    await c.create('l1', '', { mountLabel: 'm' });
    await assert.rejects(c.create('l1', ''), (e: BerthError) => e.code === 'BERTH_STORAGE' && e.message === 'GraphDriver.Create: layer l1 exists');
    assert.equal(await c.exists('l1'), true);
    assert.equal(await c.exists('zz'), false);
    assert.equal(await c.get('l1', 'lab'), '/layers/l1:lab');
    assert.deepEqual(await c.status(), [['Layers', '1']]);
    assert.deepEqual(await c.getMetadata('l1'), { Dir: '/layers/l1' });
    assert.deepEqual(await c.changes('l1', ''), [{ path: '/a', kind: 1 }]);
    assert.deepEqual(await c.capabilities(), { reproducesExactDiffs: true });
    const big = Buffer.alloc(3 << 20, 7);
    assert.equal(await c.applyDiff('l2', 'l1', Readable.from([big.subarray(0, 1 << 20), big.subarray(1 << 20)])), big.length);
    const chunks: Buffer[] = [];
    for await (const ch of await c.diff('l2', 'l1')) chunks.push(ch as Buffer);
    assert.ok(Buffer.concat(chunks).equals(big));
    assert.equal(await c.diffSize('l2', 'l1'), big.length);
    await assert.rejects(c.diff('nope', ''), (e: BerthError) => e.code === 'BERTH_LAYER_NOT_FOUND' && kindOf(e) === 'NotFound' && /GraphDriver\.Diff: no layer nope/.test(e.message));
    await c.remove('l2');
    await c.cleanup();
  } finally {
    c.close();
    await srv.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('discovery: sockets, <name>/<name>.sock, .spec and .json in order; not-found and not-implemented errors; activation cached', async () => {
  const root = await tmp();
  const socks = path.join(root, 'run');
  const specs = path.join(root, 'etc');
  await fs.mkdir(path.join(socks, 'nested'), { recursive: true });
  await fs.mkdir(path.join(specs, 'viajson'), { recursive: true });
  const opts = { socketDirs: [socks], specDirs: [specs] };
  const a = await serveNetworkPlugin(tinyNetwork(), { name: 'direct', dirs: [socks] });
  const b = await serve({ ipam: tinyIpam() }, path.join(socks, 'nested', 'nested.sock'));
  await fs.writeFile(path.join(socks, 'fake.sock'), 'not a socket');
  await fs.writeFile(path.join(specs, 'viaspec.spec'), `unix://${path.join(socks, 'direct.sock')}\n`);
  await fs.writeFile(path.join(specs, 'viajson', 'viajson.json'), JSON.stringify({ Name: 'ignored', Addr: `unix://${path.join(socks, 'nested', 'nested.sock')}` }));
  await fs.writeFile(path.join(specs, 'noproto.spec'), 'localhost:8080');
  const reg = new PluginRegistry({ ...opts, retry: { timeoutMs: 150, baseMs: 50, capMs: 50 } });
  try {
    assert.equal((await findPlugin('direct', opts))?.addr, `unix://${path.join(socks, 'direct.sock')}`);
    assert.equal((await findPlugin('nested', opts))?.addr, `unix://${path.join(socks, 'nested', 'nested.sock')}`);
    assert.equal((await findPlugin('viaspec', opts))?.source, path.join(specs, 'viaspec.spec'));
    assert.equal((await findPlugin('viajson', opts))?.addr, `unix://${path.join(socks, 'nested', 'nested.sock')}`);
    assert.equal(await findPlugin('fake', opts), undefined);
    assert.equal(await findPlugin('../etc', opts), undefined);
    await assert.rejects(findPlugin('noproto', opts), /Unknown protocol/);
    const t0 = Date.now();
    await assert.rejects(discover('missing', { ...opts, retry: { timeoutMs: 150, baseMs: 50, capMs: 50 } }), (e: BerthError) => e.code === 'BERTH_PLUGIN_NOT_FOUND' && e.message === 'plugin "missing" not found');
    assert.ok(Date.now() - t0 >= 90);
    assert.deepEqual((await scanPlugins(opts)).map((s) => s.name).sort(), ['direct', 'nested', 'viajson', 'viaspec']);

    const net1 = await reg.network('viaspec');
    assert.deepEqual(await net1.getCapabilities(), { Scope: 'local' });
    assert.equal(net1.name, 'viaspec');
    assert.equal(await reg.network('viaspec'), net1);
    const ipam = await reg.ipam('viajson');
    assert.deepEqual(await ipam.getDefaultAddressSpaces(), { LocalDefaultAddressSpace: 'L', GlobalDefaultAddressSpace: 'G' });
    await assert.rejects(reg.ipam('direct'), (e: BerthError) => e.code === 'BERTH_PLUGIN_NOT_FOUND' && /Plugin does not implement the requested driver/.test(e.message));
    assert.deepEqual((await reg.all('IpamDriver')).map((p) => p.spec.name).sort(), ['nested', 'viajson']);
    // A failed activation is forgotten: the plugin that appears later is found.
    await assert.rejects(reg.network('later'), /not found/);
    const c = await serveNetworkPlugin(tinyNetwork(), { name: 'later', dirs: [socks] });
    assert.deepEqual(await (await reg.network('later')).getCapabilities(), { Scope: 'local' });
    await c.close();
  } finally {
    reg.close();
    await a.close();
    await b.close();
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('addresses: unix, tcp, http(s); the path part is dropped; no scheme is refused', () => {
  assert.deepEqual(parseAddress('unix:///run/x.sock'), { url: 'unix:///run/x.sock', socketPath: '/run/x.sock', https: false });
  assert.deepEqual(parseAddress('tcp://127.0.0.1:8080'), { url: 'tcp://127.0.0.1:8080', host: '127.0.0.1', port: 8080, https: false });
  assert.deepEqual(parseAddress('https://example.com/docker/plugin'), { url: 'https://example.com/docker/plugin', host: 'example.com', port: 443, https: true });
  assert.throws(() => parseAddress('localhost:8080'), /Unknown protocol/);
  assert.throws(() => parseAddress('ftp://x'), /Unknown protocol/);
});

test('a plugin over TCP (tcp:// spec) works the same', async () => {
  const { pluginRequestListener } = await import('./index.js');
  const server = http.createServer(pluginRequestListener({ network: tinyNetwork() }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const c = connect(`tcp://127.0.0.1:${port}`, 'NetworkDriver');
  try {
    assert.deepEqual(await c.activate(), ['NetworkDriver']);
    assert.deepEqual(await c.getCapabilities(), { Scope: 'local' });
  } finally {
    c.close();
    await new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
  }
});

test('a Diff that fails mid-stream is an error for the reader, not a short tar; a failing ApplyDiff body fails the call', async () => {
  const dir = await tmp();
  const g = {
    name: 'failing',
    diff: async () =>
      new Readable({
        read() {
          if (!(this as unknown as { sent?: boolean }).sent) {
            (this as unknown as { sent?: boolean }).sent = true;
            this.push(Buffer.alloc(64 << 10, 1));
          } else setTimeout(() => this.destroy(new Error('disk on fire')), 20);
        },
      }),
    applyDiff: async (_id: string, _p: string, s: Readable) => {
      let n = 0;
      for await (const c of s) n += (c as Buffer).length;
      return n;
    },
  } as unknown as GraphDriver;
  const srv = await serve({ graph: g }, path.join(dir, 'f.sock'));
  const c = connect(path.join(dir, 'f.sock'), 'GraphDriver');
  try {
    const stream = await c.diff('x', '');
    let got = 0;
    await assert.rejects(
      (async () => {
        for await (const ch of stream) got += (ch as Buffer).length;
      })(),
    );
    assert.ok(got >= 64 << 10);
    const bad = new Readable({
      read() {
        this.destroy(new Error('source broke'));
      },
    });
    await assert.rejects(c.applyDiff('y', '', bad));
    // The server is still fine afterwards.
    assert.equal(await c.applyDiff('z', '', Readable.from([Buffer.alloc(10)])), 10);
  } finally {
    c.close();
    await srv.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
