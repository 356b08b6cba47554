/**
 * Nothing accumulates over many container lives: after a warm-up, a few dozen runs (--rm, -d
 * then rm -f, a published port, an exec) leave berthd with the same file descriptors, and the
 * host with the same mounts, cgroups, processes, network namespaces, veths and iptables rules.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { assertNoLeaksEventually, berthCli, busyboxImageTar, snapshotLeaks, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
const berth = berthCli(() => daemon.host, { timeoutMs: 30_000 }).run;

function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      { socketPath: daemon.socket, path: `/v1.47${path}`, method, agent: false, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {}, timeout: 30_000 },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function ok(method: string, path: string, body?: unknown): Promise<string> {
  const r = await api(method, path, body);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.body}`);
  return r.body;
}

/** berthd's open files by kind: a path, or the kind of a socket, pipe or anonymous inode. */
function daemonFds(): string[] {
  const dir = `/proc/${daemon.process.pid}/fd`;
  const out: string[] = [];
  for (const fd of readdirSync(dir)) {
    try {
      out.push(readlinkSync(`${dir}/${fd}`).replace(/:\[\d+\]$/, ''));
    } catch {
      // closed meanwhile
    }
  }
  return out.sort();
}

function countFds(): Map<string, number> {
  const m = new Map<string, number>();
  for (const f of daemonFds()) m.set(f, (m.get(f) ?? 0) + 1);
  return m;
}

/** berthd's open files once two looks 200 ms apart agree (the last client connections closed). */
async function settledFds(): Promise<Map<string, number>> {
  let last = JSON.stringify(daemonFds());
  for (let i = 0; i < 25; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = JSON.stringify(daemonFds());
    if (now === last) break;
    last = now;
  }
  return countFds();
}

/** The host's kernel objects of this daemon's networks: veths on its bridge, its iptables rules. */
function netObjects(): string[] {
  const bridge = daemon.net!.bridge;
  const veths = execFileSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).split('\n').filter(Boolean).map((l) => `veth ${l.split(':')[1]!.trim()}`);
  const rules: string[] = [];
  for (const table of ['nat', 'filter']) {
    for (const line of execFileSync('iptables', ['-w', '-t', table, '-S'], { encoding: 'utf8' }).split('\n')) {
      if (line.includes(daemon.net!.chainPrefix) || line.includes(bridge)) rules.push(`${table} ${line}`);
    }
  }
  return [...veths, ...rules].sort();
}

async function runRm(extra: Record<string, unknown> = {}): Promise<void> {
  const { Id } = JSON.parse(await ok('POST', '/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { AutoRemove: true }, ...extra })) as { Id: string };
  const removed = api('POST', `/containers/${Id}/wait?condition=removed`);
  await ok('POST', `/containers/${Id}/start`);
  const w = await removed;
  assert.equal(w.status, 200, w.body);
  assert.equal((JSON.parse(w.body) as { StatusCode: number }).StatusCode, 0);
}

async function runDetachedThenRemove(i: number): Promise<void> {
  const published = i % 2 === 0;
  const { Id } = JSON.parse(
    await ok('POST', '/containers/create', {
      Image: 'busybox', Cmd: ['sleep', '60'], ExposedPorts: published ? { '80/tcp': {} } : undefined,
      HostConfig: published ? { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } } : {},
    }),
  ) as { Id: string };
  await ok('POST', `/containers/${Id}/start`);
  const ex = JSON.parse(await ok('POST', `/containers/${Id}/exec`, { Cmd: ['true'], AttachStdout: true, AttachStderr: true })) as { Id: string };
  await ok('POST', `/exec/${ex.Id}/start`, { Detach: false, Tty: false });
  await ok('DELETE', `/containers/${Id}?force=1`);
}

async function cycle(i: number): Promise<void> {
  await runRm();
  await runRm({ HostConfig: { AutoRemove: true, NetworkMode: 'none' } });
  await runDetachedThenRemove(i);
}

describe('soak: many container lives leave nothing behind', { timeout: 180_000 }, () => {
  before(async () => {
    daemon = await startDaemon();
    const r = await berth(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    await daemon.cleanup();
  });

  test('20 cycles of run --rm (bridge and none), run -d with a published port, exec, rm -f', async () => {
    for (let i = 0; i < 3; i++) await cycle(i); // warm-up: lazily opened files, the first bridge user
    const mine = (mp: string): boolean => mp.startsWith(daemon.dataRoot) || mp.startsWith(daemon.execRoot);
    const leaks = await snapshotLeaks({ processMarkers: [`${daemon.execRoot}/runtime/`], mountFilter: mine, cgroupPrefix: 'berth', netnsDirs: [`${daemon.execRoot}/netns`] });
    const fds = await settledFds();
    const net = netObjects();
    for (let i = 0; i < 20; i++) await cycle(i);
    await assertNoLeaksEventually(leaks, 'after 20 cycles', 5000);
    // A leak is growth: no kind of open file may outnumber what berthd had before (a client's
    // connection may still have been closing then).
    const grown = (now: Map<string, number>): string[] => [...now].filter(([k, n]) => n > (fds.get(k) ?? 0)).map(([k, n]) => `${k}: ${fds.get(k) ?? 0} -> ${n}`);
    const deadline = Date.now() + 5000;
    let growth = grown(countFds());
    while (growth.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      growth = grown(countFds());
    }
    assert.deepEqual(growth, [], "berthd's open files did not grow");
    assert.deepEqual(netObjects(), net, 'veths on the bridge and iptables rules are what they were');
    assert.equal((await berth(['ps', '-aq'])).stdout.trim(), '', 'no container left');
  });
});
