/**
 * A container publishing a 10,000-port UDP range (issue 5): berthd answers ps and inspect in
 * Docker's shapes (a Ports entry per port in /containers/json, 10,000 keys in inspect's Ports,
 * PortBindings and ExposedPorts), `berth ps` prints the range compressed as docker's CLI does,
 * `berth inspect` prints the daemon's JSON indented the docker way, and berthPortRuns=1 (Berth's
 * own parameter, sent by berth ps) answers the range as one entry with a Count.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { berthCli, berthCliPath, busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
const cli = berthCli(() => daemon.host, { timeoutMs: 60_000 });
const ok = cli.ok;

const PORTS = 10_000;
const tag = `${process.pid}${Math.random().toString(16).slice(2, 6)}`;
const name = `range-${tag}`;
const small = `small-${tag}`;
let lo = 0;

/** GET on the daemon's socket: status, content type and body. */
function get(path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: daemon.socket, path: `/v1.41${path}`, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** berth with an output larger than execFile's default 1 MiB (inspect of the range: 3.9 MB). */
function berthBig(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(berthCliPath(), args, { env: { ...process.env, BERTH_HOST: daemon.host }, maxBuffer: 64 << 20, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`berth ${args.join(' ')}: ${err.message} ${stderr}`)) : resolve(stdout),
    );
  });
}

const byName = (n: string): string => `/containers/json?filters=${encodeURIComponent(JSON.stringify({ name: [n] }))}`;

describe('a 10,000-port range: ps and inspect in Docker shapes, compressed in berth ps', { timeout: 180_000 }, () => {
  before(async () => {
    daemon = await startDaemon();
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
    // Below the host's ephemeral ports (32768 on), so no client socket holds one of them; a
    // random base keeps concurrent runs apart, and a port held anyway gets one more try.
    for (let attempt = 0; attempt < 3 && !lo; attempt++) {
      const base = 20000 + Math.floor(Math.random() * (32768 - 20000 - PORTS));
      const r = await cli.run(['run', '-d', '--name', name, '-p', `${base}-${base + PORTS - 1}:${base}-${base + PORTS - 1}/udp`, 'busybox', 'sleep', '600']);
      if (r.code === 0) lo = base;
      else await cli.run(['rm', '-f', name]);
    }
    assert.ok(lo, 'the range container runs');
    await ok(['run', '-d', '--name', small, 'busybox', 'sleep', '600']);
  });
  after(async () => {
    await daemon?.cleanup();
  });

  test('GET /containers/json: a Ports entry per port, Docker shape', async () => {
    const r = await get(byName(name));
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    const [c] = JSON.parse(r.body) as Array<{ Ports: Array<Record<string, unknown>> }>;
    assert.equal(c!.Ports.length, PORTS);
    c!.Ports.forEach((p, i) => assert.deepEqual(p, { IP: '0.0.0.0', PrivatePort: lo + i, PublicPort: lo + i, Type: 'udp' }));
    // the same again (from berthd's cache), and with the other container
    assert.equal((await get(byName(name))).body, r.body);
    const all = JSON.parse((await get('/containers/json')).body) as Array<{ Names: string[]; Ports: unknown[] }>;
    assert.deepEqual(all.map((x) => [x.Names[0], x.Ports.length]).sort(), [[`/${name}`, PORTS], [`/${small}`, 0]].sort());
  });

  test('GET /containers/{id}/json: 10,000 keys in NetworkSettings.Ports, HostConfig.PortBindings and Config.ExposedPorts', async () => {
    const r = await get(`/containers/${name}/json`);
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    const c = JSON.parse(r.body) as {
      NetworkSettings: { Ports: Record<string, unknown> };
      HostConfig: { PortBindings: Record<string, unknown> };
      Config: { ExposedPorts: Record<string, unknown> };
    };
    const keys = Array.from({ length: PORTS }, (_, i) => `${lo + i}/udp`);
    assert.deepEqual(Object.keys(c.NetworkSettings.Ports), keys);
    for (const k of keys) assert.deepEqual(c.NetworkSettings.Ports[k], [{ HostIp: '0.0.0.0', HostPort: k.split('/')[0] }]);
    assert.deepEqual(Object.keys(c.HostConfig.PortBindings).sort(), [...keys].sort());
    assert.deepEqual(c.HostConfig.PortBindings[`${lo}/udp`], [{ HostIp: '', HostPort: String(lo) }]);
    assert.deepEqual(Object.keys(c.Config.ExposedPorts).sort(), [...keys].sort());
    assert.equal((await get(`/containers/${name}/json`)).body, r.body, 'a second answer (cached) is the same');
  });

  test('berthPortRuns=1 (Berth only): the range as one Port with a Count', async () => {
    const [c] = JSON.parse((await get(`${byName(name)}&berthPortRuns=1`)).body) as Array<{ Ports: unknown[] }>;
    assert.deepEqual(c!.Ports, [{ IP: '0.0.0.0', PrivatePort: lo, PublicPort: lo, Type: 'udp', Count: PORTS }]);
  });

  test('berth ps prints the range compressed, as docker ps does', async () => {
    const want = `0.0.0.0:${lo}-${lo + PORTS - 1}->${lo}-${lo + PORTS - 1}/udp`;
    assert.equal((await ok(['ps', '--filter', `name=${name}`, '--format', '{{.Ports}}'])).trim(), want);
    const table = await ok(['ps']);
    const line = table.split('\n').find((l) => l.endsWith(name));
    assert.ok(line?.includes(`   ${want}   `), table);
  });

  test('berth inspect prints the daemon JSON indented by 4, as docker inspect; --format sees every port', async () => {
    const api = JSON.parse((await get(`/containers/${name}/json`)).body) as unknown;
    const out = await berthBig(['inspect', name]);
    assert.equal(out, `${JSON.stringify([api], null, 4)}\n`);
    const both = await berthBig(['inspect', name, small]);
    assert.equal(both, `${JSON.stringify([api, JSON.parse((await get(`/containers/${small}/json`)).body)], null, 4)}\n`);
    assert.equal((await ok(['inspect', '-f', '{{len .NetworkSettings.Ports}} {{len .HostConfig.PortBindings}}', name])).trim(), `${PORTS} ${PORTS}`);
  });
});
