import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostConfig } from '@berth/api';
import type { PortRun, SandboxView } from '@berth/network';
import { Ctr } from './container.js';
import type { EngineContext } from './context.js';
import { compressSummary, summaryList, summaryRunsOf } from './network.js';
import type { ContainerRecord } from './store.js';
import { inspectContainer, inspectContainerJson, listContainers, listContainersJson } from './views.js';

const UDP = 17;
const TCP = 6;

function run(Proto: number, Port: number, Count: number, HostPort: number, HostIP = ''): PortRun {
  return { Proto, IP: '', Port, HostIP, HostPort, HostPortEnd: HostPort === 0 ? 0 : HostPort + Count - 1, Count };
}

function expose(runs: PortRun[], extra: Array<[number, number]> = []): SandboxView['exposed'] {
  const out = new Map<string, { Proto: number; Port: number }>();
  for (const r of runs) for (let i = 0; i < r.Count; i++) out.set(`${r.Proto}/${r.Port + i}`, { Proto: r.Proto, Port: r.Port + i });
  for (const [Proto, Port] of extra) out.set(`${Proto}/${Port}`, { Proto, Port });
  return [...out.values()].sort((a, b) => a.Proto - b.Proto || a.Port - b.Port);
}

function container(id: string, name: string, ports: Record<string, Array<{ HostIp: string; HostPort: string }>>, running = true): Ctr {
  const exposed: Record<string, Record<string, never>> = {};
  for (const k of Object.keys(ports)) exposed[k] = {};
  const rec = {
    Id: id, Created: '2026-11-28T20:00:00.000000000Z', Path: 'sleep', Args: ['600'], Image: 'sha256:' + 'b'.repeat(64), Name: `/${name}`,
    RestartCount: 0, Driver: 'overlay2', Platform: 'linux', ResolvConfPath: '', HostnamePath: '', HostsPath: '', LogPath: '', MountPoints: [],
    HasBeenStartedBefore: true, HasBeenManuallyStopped: false,
    Config: { Image: 'busybox', Labels: {}, ExposedPorts: Object.keys(exposed).length ? exposed : undefined },
    State: { Status: running ? 'running' : 'exited', Running: running, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: running ? 42 : 0, ExitCode: 0, Error: '', StartedAt: '', FinishedAt: '' },
  } as unknown as ContainerRecord;
  return new Ctr(rec, { NetworkMode: 'bridge', PortBindings: ports, PublishAllPorts: false } as unknown as HostConfig);
}

function fakeContext(entries: Array<[Ctr, SandboxView | undefined]>): EngineContext {
  const containers = new Map(entries.map(([c]) => [c.id, c]));
  const sandboxes = new Map(entries.map(([c, sb]) => [c.id, sb]));
  return {
    containers,
    get: (ref: string) => [...containers.values()].find((c) => c.id === ref || c.name === ref) ?? assert.fail(`no ${ref}`),
    images: { containerGraphDriver: async () => ({ Name: 'overlay2', Data: null }), resolve: async () => ({ id: 'x' }), size: async () => 0, inspect: async () => ({ Size: 0 }) },
    network: { sandbox: (id: string) => sandboxes.get(id), network: () => ({ Id: 'n'.repeat(64) }) },
  } as unknown as EngineContext;
}

function sandbox(runs: PortRun[], extra: Array<[number, number]> = []): SandboxView {
  return { id: 's', key: '/run/netns/s', endpoints: [], ports: runs, exposed: expose(runs, extra) } as unknown as SandboxView;
}

test('ps port runs made from the sandbox runs equal the compressed one-per-port list', () => {
  const c = container('c'.repeat(64), 'c', {});
  const cases: SandboxView[] = [
    sandbox([]),
    sandbox([run(UDP, 41000, 10_000, 41000)]),
    sandbox([run(UDP, 41000, 300, 51000, '127.0.0.1')], [[UDP, 41300], [UDP, 41301], [TCP, 80]]),
    sandbox([run(TCP, 80, 1, 0), run(TCP, 81, 5, 0), run(TCP, 90, 3, 90), run(TCP, 93, 3, 93)]),
    sandbox([run(TCP, 80, 10, 8080), run(TCP, 90, 10, 8090), run(UDP, 80, 10, 8080)], [[TCP, 100], [TCP, 101], [TCP, 103]]),
    sandbox([run(TCP, 5000, 20, 5000, '::'), run(TCP, 5000, 20, 5000, '0.0.0.0')]),
  ];
  for (const sb of cases) assert.deepEqual(summaryRunsOf(c, sb), compressSummary(summaryList(c, sb)), JSON.stringify(sb.ports));
  assert.deepEqual(summaryRunsOf(c, cases[1]), [{ IP: '0.0.0.0', PrivatePort: 41000, PublicPort: 41000, Type: 'udp', Count: 10_000 }]);
});

test('inspect and ps as JSON bytes are the JSON of the objects, for a 10,000-port container and a small one (Docker shapes)', async () => {
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (let p = 41000; p < 51000; p++) bindings[`${p}/udp`] = [{ HostIp: '', HostPort: String(p) }];
  const big = container('a'.repeat(64), 'range', bindings);
  const small = container('b'.repeat(64), 'small', { '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
  const stopped = container('d'.repeat(64), 'stopped', bindings, false);
  const ctx = fakeContext([
    [big, sandbox([run(UDP, 41000, 10_000, 41000)])],
    [small, sandbox([run(TCP, 80, 1, 8080)])],
    [stopped, undefined],
  ]);
  for (let round = 0; round < 2; round++) {
    // the second round answers from the cache
    for (const ref of ['range', 'small', 'stopped']) {
      const bytes = await inspectContainerJson(ctx, ref);
      assert.equal(bytes.toString(), `${JSON.stringify(await inspectContainer(ctx, ref))}\n`, ref);
    }
    const opts = { all: true, limit: 0, size: false, filters: new Map() };
    assert.equal((await listContainersJson(ctx, opts)).toString(), `${JSON.stringify(await listContainers(ctx, opts))}\n`);
  }
  const inspected = JSON.parse((await inspectContainerJson(ctx, 'range')).toString());
  assert.equal(Object.keys(inspected.NetworkSettings.Ports).length, 10_000);
  assert.deepEqual(inspected.NetworkSettings.Ports['50999/udp'], [{ HostIp: '0.0.0.0', HostPort: '50999' }]);
  assert.equal(Object.keys(inspected.HostConfig.PortBindings).length, 10_000);
  assert.equal(Object.keys(inspected.Config.ExposedPorts).length, 10_000);
  const listed = JSON.parse((await listContainersJson(ctx, { all: true, limit: 0, size: false, filters: new Map() })).toString());
  const range = listed.find((x: { Names: string[] }) => x.Names[0] === '/range');
  assert.equal(range.Ports.length, 10_000);
  assert.deepEqual(range.Ports[0], { IP: '0.0.0.0', PrivatePort: 41000, PublicPort: 41000, Type: 'udp' });
  const runs = JSON.parse((await listContainersJson(ctx, { all: true, limit: 0, size: false, filters: new Map(), portRuns: true })).toString());
  assert.deepEqual(runs.find((x: { Names: string[] }) => x.Names[0] === '/range').Ports, [{ IP: '0.0.0.0', PrivatePort: 41000, PublicPort: 41000, Type: 'udp', Count: 10_000 }]);
  assert.deepEqual(runs.find((x: { Names: string[] }) => x.Names[0] === '/small').Ports, [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }]);
});

test('the cached port views follow a state change of the container (stop: no Ports in inspect)', async () => {
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (let p = 41000; p < 41500; p++) bindings[`${p}/udp`] = [{ HostIp: '', HostPort: String(p) }];
  const c = container('e'.repeat(64), 'flip', bindings);
  const entries: Array<[Ctr, SandboxView | undefined]> = [[c, sandbox([run(UDP, 41000, 500, 41000)])]];
  const ctx = fakeContext(entries);
  assert.equal(Object.keys(JSON.parse((await inspectContainerJson(ctx, 'flip')).toString()).NetworkSettings.Ports).length, 500);
  c.rec.State.Running = false;
  entries[0]![1] = undefined;
  const ctx2 = fakeContext(entries);
  assert.deepEqual(JSON.parse((await inspectContainerJson(ctx2, 'flip')).toString()).NetworkSettings.Ports, {});
  assert.equal((await inspectContainerJson(ctx2, 'flip')).toString(), `${JSON.stringify(await inspectContainer(ctx2, 'flip'))}\n`);
});

test('inspect Ports and ps Ports JSON made from runs equal the JSON of the objects; undefined where they could differ', async () => {
  const { portsJsonOf, summaryJsonOf } = await import('./network.js');
  const c = container('f'.repeat(64), 'j', {});
  const cases: SandboxView[] = [
    sandbox([]),
    sandbox([run(UDP, 41000, 2000, 41000)]),
    sandbox([run(UDP, 41000, 300, 51000, '127.0.0.1')], [[UDP, 41300], [TCP, 80]]),
    sandbox([run(TCP, 80, 1, 0), run(TCP, 81, 5, 0), run(TCP, 90, 3, 90)]),
    sandbox([run(TCP, 80, 10, 8080), run(TCP, 80, 10, 9080, '127.0.0.1'), run(UDP, 80, 10, 8080)], [[TCP, 100]]),
  ];
  for (const sb of cases) {
    const m = portsJsonOf(c, sb);
    assert.ok(m);
    assert.equal(m.toString(), JSON.stringify(JSON.parse(JSON.stringify(await portsObject(c, sb)))));
    assert.equal(summaryJsonOf(c, sb)!.toString(), JSON.stringify(summaryList(c, sb)));
  }
  // a published port that is not exposed: the object way
  assert.equal(portsJsonOf(c, { ...sandbox([run(TCP, 80, 2, 80)]), exposed: [{ Proto: TCP, Port: 80 }] } as SandboxView), undefined);
});

async function portsObject(c: Ctr, sb: SandboxView): Promise<unknown> {
  const { portsView, expandBindings } = await import('@berth/network');
  return portsView(sb.exposed, expandBindings(sb.ports));
}

test('a container whose port views were cached is not kept alive by the cache (its 60 s timer), once removed or simply dropped', async () => {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const { dropPortViews } = await import('./network.js');
  const big: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (let p = 21000; p < 22000; p++) big[`${p}/udp`] = [{ HostIp: '', HostPort: String(p) }];
  const refs: WeakRef<Ctr>[] = [];
  for (const removed of [true, false]) {
    let c: Ctr | undefined = container((removed ? 'd' : 'e').repeat(64), removed ? 'dropped' : 'forgotten', big);
    let ctx: EngineContext | undefined = fakeContext([[c, sandbox([run(UDP, 21000, 1000, 21000)])]]);
    // inspect and ps fill the cache (a timer per entry)
    await inspectContainerJson(ctx, c.id);
    await listContainersJson(ctx, { all: true, limit: 0, size: false, filters: new Map() });
    if (removed) dropPortViews(c);
    refs.push(new WeakRef(c));
    c = undefined;
    ctx = undefined;
  }
  for (let i = 0; i < 5 && refs.some((r) => r.deref()); i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  assert.deepEqual(refs.map((r) => r.deref() === undefined), [true, true], 'both containers were collected');
});
