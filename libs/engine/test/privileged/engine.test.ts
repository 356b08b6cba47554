/**
 * The engine on the real kernel: a temp data root and exec root, the busybox fixture image,
 * berth-shim and berth-init. Each test checks what it leaves behind.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createServer, createConnection, type Socket } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Demuxer } from '@berth/api';
import { silentLogger } from '@berth/log';
import type { GraphDriver } from '@berth/plugin-api';
import { createEngine, type Engine } from '@berth/engine';
import { tarDirDriver } from '@berth/image/testing';
import { BUSYBOX_TAR, privilegedSkip, readAll } from './support.js';

const skip = privilegedSkip;

let tmp: string;
let dataRoot: string;
let execRoot: string;
let driver: GraphDriver;
let engine: Engine;
const servers: import('node:net').Server[] = [];

async function open(): Promise<Engine> {
  return createEngine({ dataRoot, execRoot, logger: silentLogger(), graphDriver: driver });
}

/** A connected socket pair: the engine gets one end, the test the other. */
async function socketPair(): Promise<{ server: Socket; client: Socket; close(): void }> {
  const sock = path.join(tmp, `p${Math.random().toString(16).slice(2, 8)}.sock`);
  const srv = createServer({ allowHalfOpen: true });
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  await new Promise<void>((r) => srv.listen(sock, r));
  const client = createConnection({ path: sock, allowHalfOpen: true });
  const server = await accepted;
  servers.push(srv);
  return {
    server,
    client,
    close: () => {
      client.destroy();
      srv.close();
    },
  };
}

function demux(buf: Buffer): { stdout: string; stderr: string } {
  const out = { stdout: '', stderr: '' };
  new Demuxer((t, p) => {
    if (t === 1) out.stdout += p.toString();
    else if (t === 2) out.stderr += p.toString();
  }).push(buf);
  return out;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** What a container may leave on the host: mounts, cgroup dirs, runtime state, shim sockets, processes. */
function leftovers(id: string): string[] {
  const out: string[] = [];
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  if (mounts.includes(id)) out.push('mount');
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const p = path.join('/sys/fs/cgroup', h, 'berth', id);
    if (fs.existsSync(p)) out.push(`cgroup ${p}`);
  }
  if (fs.existsSync(path.join(execRoot, 'runtime', id))) out.push('runtime state');
  if (fs.existsSync(path.join(execRoot, 's', `${id.slice(0, 32)}.sock`))) out.push('shim socket');
  const ps = execFileSync('ps', ['-eo', 'args']).toString();
  if (ps.includes(id)) out.push('process');
  return out;
}

async function create(body: Record<string, unknown>, name?: string): Promise<string> {
  return (await engine.createContainer(name, { Image: 'busybox', ...body })).Id;
}

describe('engine (privileged)', { skip, concurrency: false }, () => {
  before(async () => {
    tmp = fs.mkdtempSync(`/tmp/be${process.pid % 1000}`);
    dataRoot = path.join(tmp, 'd');
    execRoot = path.join(tmp, 'x');
    driver = tarDirDriver(path.join(tmp, 'layers'), { keepOwners: true });
    engine = await open();
    const id = await engine.importImage(fs.createReadStream(BUSYBOX_TAR), { repo: 'busybox', tag: 'latest', message: '', changes: ['CMD ["sh"]'] }, () => undefined);
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
  });

  after(async () => {
    for (const c of await engine.listContainers({ all: true, limit: 0, size: false, filters: new Map() }))
      await engine.removeContainer(c.Id, { force: true, volumes: false }).catch(() => undefined);
    await engine.close();
    for (const s of servers) s.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('create -> attach -> start: output per stream, exit code, logs, inspect, events', async () => {
    const since = Date.now() / 1000;
    await assert.rejects(create({ Image: 'nothere' }), { message: 'No such image: nothere:latest' });
    const id = await create({ Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'], AttachStdout: true, AttachStderr: true, Labels: { tier: 'x' } }, 'first');
    await assert.rejects(create({}, 'first'), { message: `Conflict. The container name "/first" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.` });
    const pair = await socketPair();
    const session = await engine.attachContainer('first', { stdin: false, stdout: true, stderr: true, stream: true, logs: false });
    assert.equal(session.tty, false);
    const piped = session.pipe(pair.server);
    const output = readAll(pair.client);
    const wait = await engine.waitContainer(id, 'next-exit');
    assert.equal(await engine.startContainer(id.slice(0, 10)), 'started');
    assert.deepEqual(await wait.result, { StatusCode: 3 });
    await piped;
    assert.deepEqual(demux(await output), { stdout: 'out\n', stderr: 'err\n' });
    pair.close();

    const ins = await engine.inspectContainer('/first');
    assert.equal(ins.State.Status, 'exited');
    assert.equal(ins.State.ExitCode, 3);
    assert.match(ins.State.FinishedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.equal(ins.Name, '/first');
    assert.deepEqual(ins.Config.Cmd, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.ok(fs.existsSync(path.join(dataRoot, 'containers', id, 'config.v2.json')));
    assert.ok(fs.existsSync(path.join(dataRoot, 'containers', id, 'hostconfig.json')));
    assert.deepEqual(leftovers(id), []);

    const logs = await engine.containerLogs(id, { follow: false, stdout: true, stderr: false, since: 0, until: 0, timestamps: true, tail: 'all' });
    const text = demux(await readAll(logs.body)).stdout;
    assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z out\n$/);

    const replay = await socketPair();
    const replayed = readAll(replay.client);
    await (await engine.attachContainer(id, { stdin: false, stdout: true, stderr: true, stream: false, logs: true })).pipe(replay.server);
    assert.deepEqual(demux(await replayed), { stdout: 'out\n', stderr: 'err\n' });
    replay.close();

    const [ps] = await engine.listContainers({ all: true, limit: 0, size: false, filters: new Map([['label', new Set(['tier=x'])]]) });
    assert.equal(ps!.Id, id);
    assert.match(ps!.Status, /^Exited \(3\) (Less than a second|\d+ seconds?) ago$/);
    assert.equal(ps!.Command, "sh -c 'echo out; echo err >&2; exit 3'");
    assert.equal((await engine.listContainers({ all: false, limit: 0, size: false, filters: new Map() })).length, 0);

    const ac = new AbortController();
    const actions: string[] = [];
    for await (const e of engine.events({ since, until: Date.now() / 1000 + 0.01, filters: new Map([['container', new Set(['first'])]]) }, ac.signal)) actions.push(e.Action);
    assert.deepEqual(actions, ['create', 'attach', 'start', 'die', 'attach']);
    await engine.removeContainer(id, { force: false, volumes: false });
    assert.ok(!fs.existsSync(path.join(dataRoot, 'containers', id)));
    await assert.rejects(engine.inspectContainer(id), { message: `No such container: ${id}` });
  });

  it('wait conditions: not-running at once for a created container, next-exit, removed', async () => {
    const id = await create({ Cmd: ['sh', '-c', 'exit 4'] });
    const nr = await engine.waitContainer(id, 'not-running');
    assert.deepEqual(await nr.result, { StatusCode: 0 });
    const next = await engine.waitContainer(id, 'next-exit');
    const removed = await engine.waitContainer(id, 'removed');
    let removedDone = false;
    void removed.result.then(() => (removedDone = true));
    await engine.startContainer(id);
    assert.deepEqual(await next.result, { StatusCode: 4 });
    assert.equal(removedDone, false);
    await engine.removeContainer(id, { force: false, volumes: false });
    assert.deepEqual(await removed.result, { StatusCode: 4 });

    // An attach waiting for a start that never comes ends when the container goes.
    const id2 = await create({ Cmd: ['true'] });
    const pair = await socketPair();
    const session = await engine.attachContainer(id2, { stdin: false, stdout: true, stderr: true, stream: true, logs: false });
    const piped = session.pipe(pair.server);
    await engine.removeContainer(id2, { force: false, volumes: false });
    await piped;
    pair.close();
  });

  it('stop: SIGTERM ignored by PID 1, SIGKILL after the timeout; 304 when stopped; kill 409 text', async () => {
    const id = await create({ Cmd: ['sleep', '100'] }, 'stopper');
    await engine.startContainer(id);
    assert.equal(await engine.startContainer(id), 'not-modified');
    const t0 = Date.now();
    assert.equal(await engine.stopContainer(id, { timeout: 1 }), 'stopped');
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 8000, `stop took ${took} ms`);
    const ins = await engine.inspectContainer(id);
    assert.equal(ins.State.ExitCode, 137);
    assert.equal(await engine.stopContainer(id, {}), 'not-modified');
    await assert.rejects(engine.killContainer('stopper'), { message: `cannot kill container: stopper: container ${id} is not running` });
    assert.deepEqual(leftovers(id), []);
    await engine.removeContainer(id, { force: false, volumes: false });
  });

  it('kill with a signal; rm without force is refused; rm -f leaves nothing', async () => {
    const id = await create({ Cmd: ['sh', '-c', 'trap "exit 42" USR1; while true; do sleep 0.1; done'] }, 'killme');
    await engine.startContainer(id);
    await new Promise((r) => setTimeout(r, 300));
    const w = await engine.waitContainer(id, 'next-exit');
    await engine.killContainer(id, 'USR1');
    assert.deepEqual(await w.result, { StatusCode: 42 });

    const id2 = await create({ Cmd: ['sleep', '100'] }, 'forceme');
    await engine.startContainer(id2);
    const pid = (await engine.inspectContainer(id2)).State.Pid;
    assert.ok(pid > 0 && fs.existsSync(`/proc/${pid}`));
    await assert.rejects(engine.removeContainer(id2, { force: false, volumes: false }), {
      message: 'cannot remove container "/forceme": container is running: stop the container before removing or force remove',
    });
    await engine.removeContainer(id2, { force: true, volumes: false });
    assert.deepEqual(leftovers(id2), []);
    assert.ok(!fs.existsSync(`/proc/${pid}`) || !fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sleep'));
    assert.ok(!fs.existsSync(path.join(dataRoot, 'containers', id2)));
    assert.ok(!fs.existsSync(path.join(execRoot, 'containers', id2)));
    await engine.removeContainer(id, { force: false, volumes: false });
  });

  it('--rm: the container is removed after exit and removed-waiters resolve', async () => {
    const id = await create({ Cmd: ['sh', '-c', 'exit 2'], HostConfig: { AutoRemove: true } });
    const w = await engine.waitContainer(id, 'removed');
    await engine.startContainer(id);
    assert.deepEqual(await w.result, { StatusCode: 2 });
    await assert.rejects(engine.inspectContainer(id), /No such container/);
    assert.deepEqual(leftovers(id), []);
  });

  it('restart policy on-failure:2 restarts twice, counting RestartCount', async () => {
    const id = await create({ Cmd: ['sh', '-c', 'exit 1'], HostConfig: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 } } });
    await engine.startContainer(id);
    const ins = await until('two restarts and a final exit', async () => {
      const i = await engine.inspectContainer(id);
      return i.RestartCount === 2 && i.State.Status === 'exited' ? i : undefined;
    });
    assert.equal(ins.State.ExitCode, 1);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await engine.inspectContainer(id)).RestartCount, 2);
    await engine.removeContainer(id, { force: true, volumes: false });
  });

  it('exec: output, exit code in inspectExec, ExecIDs, missing command or cwd 126 in-band in dockerd\'s words', async () => {
    const id = await create({ Cmd: ['sleep', '100'] });
    await engine.startContainer(id);
    const { Id: ex } = await engine.createExec(id, { Cmd: ['sh', '-c', 'echo hi; echo oops >&2; exit 5'], AttachStdout: true, AttachStderr: true });
    const session = await engine.startExec(ex, {});
    assert.ok(session);
    const pair = await socketPair();
    const out = readAll(pair.client);
    await session.pipe(pair.server);
    assert.deepEqual(demux(await out), { stdout: 'hi\n', stderr: 'oops\n' });
    pair.close();
    // docker exec inspects right after the stream ends: the exit code must be known by then.
    const ei = await engine.inspectExec(ex);
    assert.equal(ei.Running, false);
    assert.equal(ei.ExitCode, 5);
    assert.deepEqual((await engine.inspectContainer(id)).ExecIDs, [ex]);

    // docker exec -i: client stdin EOF closes the process's stdin.
    const { Id: cat } = await engine.createExec(id, { Cmd: ['cat'], AttachStdin: true, AttachStdout: true, AttachStderr: true });
    const s3 = await engine.startExec(cat, {});
    const pair3 = await socketPair();
    pair3.server.pause(); // berthd pauses the socket after reading the request body off it
    const out3 = readAll(pair3.client);
    const piped3 = s3!.pipe(pair3.server);
    pair3.client.end('piped\n');
    await piped3;
    assert.deepEqual(demux(await out3), { stdout: 'piped\n', stderr: '' });
    assert.equal((await engine.inspectExec(cat)).ExitCode, 0);
    pair3.close();

    const { Id: bad } = await engine.createExec(id, { Cmd: ['nosuchcmd'], AttachStdout: true, AttachStderr: true });
    const s2 = await engine.startExec(bad, {});
    const pair2 = await socketPair();
    const out2 = readAll(pair2.client);
    await s2!.pipe(pair2.server);
    assert.equal(demux(await out2).stderr, 'OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuchcmd": executable file not found in $PATH: unknown\r\n');
    pair2.close();
    assert.equal((await engine.inspectExec(bad)).ExitCode, 126, 'dockerd: 126 for any exec that cannot start (a run\'s missing command is 127)');
    const { Id: nocwd } = await engine.createExec(id, { Cmd: ['pwd'], WorkingDir: '/nonexist', AttachStdout: true, AttachStderr: true });
    const s4 = await engine.startExec(nocwd, {});
    const pair4 = await socketPair();
    const out4 = readAll(pair4.client);
    await s4!.pipe(pair4.server);
    assert.equal(demux(await out4).stderr, 'OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ("/nonexist") set in config.json failed: no such file or directory: unknown\r\n');
    pair4.close();
    assert.equal((await engine.inspectExec(nocwd)).ExitCode, 126);
    await assert.rejects(engine.createExec(id, { Cmd: [] }), { message: 'No exec command specified' });
    await assert.rejects(engine.inspectExec('nope'), { message: 'No such exec instance: nope' });
    await engine.removeContainer(id, { force: true, volumes: false });
    assert.deepEqual(leftovers(id), []);
  });

  it('exec: a running exec ends with its container: Running false, an exit code, exec_die, no shim socket', async () => {
    const since = Date.now() / 1000;
    const id = await create({ Cmd: ['sleep', '1000'] });
    await engine.startContainer(id);
    const { Id: ex } = await engine.createExec(id, { Cmd: ['sleep', '1000'] });
    assert.equal(await engine.startExec(ex, { Detach: true }), null);
    assert.equal((await engine.inspectExec(ex)).Running, true);
    const wait = await engine.waitContainer(id, 'next-exit');
    await engine.killContainer(id, 'KILL');
    await wait.result;
    const ei = await until('the exec to end', async () => {
      const i = await engine.inspectExec(ex);
      return !i.Running && i;
    });
    assert.equal(typeof ei.ExitCode, 'number');
    assert.ok(!fs.existsSync(path.join(execRoot, 's', `${ex.slice(0, 32)}.sock`)));
    const ac = new AbortController();
    const died: string[] = [];
    for await (const e of engine.events({ since, until: Date.now() / 1000 + 0.01, filters: new Map([['container', new Set([id])]]) }, ac.signal))
      if (e.Action === 'exec_die') died.push(e.Actor.Attributes['execID']!);
    assert.deepEqual(died, [ex]);
    await engine.removeContainer(id, { force: true, volumes: false });
    assert.deepEqual(leftovers(id), []);
  });

  it('start failure for a missing command: 127, stays created with Error, nothing leaked', async () => {
    const id = await create({ Cmd: ['/nonexistent'] });
    await assert.rejects(engine.startContainer(id), /executable file not found|no such file/i);
    const ins = await engine.inspectContainer(id);
    assert.equal(ins.State.Status, 'created');
    assert.equal(ins.State.ExitCode, 127);
    assert.match(ins.State.Error, /nonexistent/);
    assert.deepEqual(leftovers(id), []);
    await engine.removeContainer(id, { force: false, volumes: false });
  });

  it('top, pause/unpause, rename', async () => {
    const id = await create({ Cmd: ['sleep', '100'] }, 'topme');
    await engine.startContainer(id);
    const top = await engine.topContainer(id, '');
    assert.ok(top.Titles.includes('PID'));
    assert.equal(top.Processes.length, 1);
    assert.match(top.Processes[0]!.at(-1)!, /sleep 100/);
    await engine.pauseContainer(id);
    assert.equal((await engine.inspectContainer(id)).State.Status, 'paused');
    const [ps] = await engine.listContainers({ all: false, limit: 0, size: false, filters: new Map([['name', new Set(['topme'])]]) });
    assert.match(ps!.Status, /\(Paused\)$/);
    await engine.unpauseContainer(id);
    await engine.renameContainer(id, 'renamed');
    assert.equal((await engine.inspectContainer('renamed')).Name, '/renamed');
    await engine.removeContainer(id, { force: true, volumes: false });
    assert.deepEqual(leftovers(id), []);
  });

  it('a second engine (berthd restart) re-adopts a running container and collects its exit code', async () => {
    const id = await create({ Cmd: ['sh', '-c', 'sleep 1.5; echo bye; exit 7'] });
    await engine.startContainer(id);
    await engine.close();
    engine = await open();
    const ins = await engine.inspectContainer(id);
    assert.equal(ins.State.Status, 'running');
    const w = await engine.waitContainer(id, 'next-exit');
    assert.deepEqual(await w.result, { StatusCode: 7 });
    const logs = await engine.containerLogs(id, { follow: false, stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: 'all' });
    assert.equal(demux(await readAll(logs.body)).stdout, 'bye\n');
    assert.deepEqual(leftovers(id), []);
    await engine.removeContainer(id, { force: false, volumes: false });
  });

  it('attach with stdin (docker run -i): client half-close is stdin EOF; output framed; exit 0', async () => {
    const id = await create({ Cmd: ['cat'], OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true });
    const pair = await socketPair();
    const session = await engine.attachContainer(id, { stdin: true, stdout: true, stderr: true, stream: true, logs: false });
    const piped = session.pipe(pair.server);
    const out = readAll(pair.client);
    const w = await engine.waitContainer(id, 'next-exit');
    await engine.startContainer(id);
    pair.client.end('abc\ndef\n');
    assert.deepEqual(await w.result, { StatusCode: 0 });
    await piped;
    assert.deepEqual(demux(await out), { stdout: 'abc\ndef\n', stderr: '' });
    pair.close();
    await engine.removeContainer(id, { force: false, volumes: false });
  });

  it('attach with a tty (docker run -it): echo through the pty, detach keys end the session, the container goes on', async () => {
    const id = await create({ Cmd: ['cat'], Tty: true, OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true });
    const pair = await socketPair();
    const session = await engine.attachContainer(id, { stdin: true, stdout: true, stderr: true, stream: true, logs: false, detachKeys: 'ctrl-x' });
    assert.equal(session.tty, true);
    const piped = session.pipe(pair.server);
    let text = '';
    pair.client.on('data', (d: Buffer) => (text += d.toString()));
    await engine.startContainer(id);
    await engine.resizeContainer(id, 40, 100);
    pair.client.write('hello\n');
    await until('the echo', () => (text.match(/hello/g) ?? []).length >= 2);
    pair.client.write(Buffer.from([0x18]));
    await piped;
    pair.close();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await engine.inspectContainer(id)).State.Running, true, 'detaching leaves the container and its stdin alone');
    // Attach again: stdin is still open and the pty still echoes.
    const again = await socketPair();
    const s2 = await engine.attachContainer(id, { stdin: true, stdout: true, stderr: true, stream: true, logs: false });
    const piped2 = s2.pipe(again.server);
    let text2 = '';
    again.client.on('data', (d: Buffer) => (text2 += d.toString()));
    again.client.write('again\n');
    await until('the second echo', () => (text2.match(/again/g) ?? []).length >= 2);
    again.client.end(); // stdin EOF with a tty ends the session only
    await piped2;
    again.close();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await engine.inspectContainer(id)).State.Running, true);
    await engine.removeContainer(id, { force: true, volumes: false });
    assert.deepEqual(leftovers(id), []);
  });

  it('restart policy always applies at daemon start to a container that exited while berthd was down', async () => {
    const id = await create({ Cmd: ['sh', '-c', 'sleep 0.5; exit 1'], HostConfig: { RestartPolicy: { Name: 'always', MaximumRetryCount: 0 } } });
    await engine.startContainer(id);
    const firstStart = (await engine.inspectContainer(id)).State.StartedAt;
    await engine.close();
    await until('the exit while down', () => fs.existsSync(path.join(execRoot, 'runtime', id, 'exit')));
    engine = await open();
    const ins = await until('a restart at daemon start', async () => {
      const i = await engine.inspectContainer(id);
      return i.State.Running && i.State.StartedAt !== firstStart ? i : undefined;
    });
    assert.ok(ins.State.Pid > 0);
    assert.equal(await engine.stopContainer(id, { timeout: 0 }), 'stopped');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await engine.inspectContainer(id)).State.Running, false, 'a stopped container is not restarted');
    await engine.removeContainer(id, { force: false, volumes: false });
    assert.deepEqual(leftovers(id), []);
  });

  it('spec features: binds (ro, missing source made), tmpfs, read-only root, user, env, workdir, hostname, --init, caps', async () => {
    const src = path.join(tmp, 'bindsrc');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'from-host');
    const missing = path.join(tmp, 'made-by-start');
    const script = [
      'cat /b/f; echo', 'echo x > /b/g 2>/dev/null || echo ro-bind', 'touch /root/x 2>/dev/null || echo ro-root', 'echo t > /t/x && cat /t/x',
      'id -u', 'id -g', 'echo $FOO', 'pwd', 'hostname', 'cat /proc/1/cmdline | tr "\\0" " "; echo', 'grep CapEff /proc/self/status', 'ls -d /m',
    ].join('; ');
    const id = await create({
      Cmd: ['sh', '-c', script], User: 'user', Env: ['FOO=bar'], WorkingDir: '/tmp', Hostname: 'myhost',
      HostConfig: { Binds: [`${src}:/b:ro`, `${missing}:/m`], Tmpfs: { '/t': 'size=1m' }, ReadonlyRootfs: true, Init: true, CapDrop: ['ALL'] },
    });
    const w = await engine.waitContainer(id, 'next-exit');
    await engine.startContainer(id);
    assert.deepEqual(await w.result, { StatusCode: 0 });
    const logs = await engine.containerLogs(id, { follow: false, stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: 'all' });
    const lines = demux(await readAll(logs.body)).stdout.split('\n');
    assert.deepEqual(lines.slice(0, 9), ['from-host', 'ro-bind', 'ro-root', 't', '1000', '1000', 'bar', '/tmp', 'myhost']);
    assert.notEqual(lines[9]!.trim(), 'sh -c ' + script, 'PID 1 is the reaper, not the command');
    assert.equal(lines[10], 'CapEff:\t0000000000000000');
    assert.equal(lines[11], '/m');
    assert.ok(fs.statSync(missing).isDirectory());
    await engine.removeContainer(id, { force: false, volumes: false });
  });

  it('a failed create leaves nothing; a --rm container whose start fails is removed', async () => {
    const before = fs.readdirSync(path.join(dataRoot, 'containers')).length;
    await assert.rejects(create({ HostConfig: { Memory: 1 } }), /Minimum memory limit/);
    await assert.rejects(create({ HostConfig: { CapAdd: ['NOPE'] } }), /invalid CapAdd: unknown capability: "CAP_NOPE"/);
    await assert.rejects(create({ HostConfig: { NetworkMode: 'container:ghost' } }), /No such container: ghost/);
    await assert.rejects(engine.createContainer('x', { Image: 'busybox' }), /Invalid container name/);
    assert.equal(fs.readdirSync(path.join(dataRoot, 'containers')).length, before);
    const id = await create({ Cmd: ['/nope'], HostConfig: { AutoRemove: true } });
    await assert.rejects(engine.startContainer(id), /nope/);
    await assert.rejects(engine.inspectContainer(id), /No such container/);
    assert.deepEqual(leftovers(id), []);
  });

  it('network modes: none has only lo, host shares the host netns, container: joins a running one', async () => {
    const a = await create({ Cmd: ['sleep', '100'], HostConfig: { NetworkMode: 'none' } }, 'netnone');
    await engine.startContainer(a);
    const pidA = (await engine.inspectContainer(a)).State.Pid;
    assert.notEqual(fs.readlinkSync(`/proc/${pidA}/ns/net`), fs.readlinkSync('/proc/self/ns/net'));
    const b = await create({ Cmd: ['sh', '-c', 'ls /sys/class/net'], HostConfig: { NetworkMode: 'container:netnone' } });
    const c = await create({ Cmd: ['sleep', '100'], HostConfig: { NetworkMode: 'host' } });
    const wb = await engine.waitContainer(b, 'next-exit');
    await engine.startContainer(b);
    assert.deepEqual(await wb.result, { StatusCode: 0 });
    const logs = await engine.containerLogs(b, { follow: false, stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: 'all' });
    assert.equal(demux(await readAll(logs.body)).stdout.trim(), 'lo');
    await engine.startContainer(c);
    const pidC = (await engine.inspectContainer(c)).State.Pid;
    assert.equal(fs.readlinkSync(`/proc/${pidC}/ns/net`), fs.readlinkSync('/proc/self/ns/net'));
    const ins = await engine.inspectContainer(a);
    assert.deepEqual(Object.keys(ins.NetworkSettings.Networks), ['none']);
    await engine.stopContainer(a, { timeout: 0 });
    await assert.rejects(engine.startContainer(b), /non running container/);
    for (const id of [a, b, c]) await engine.removeContainer(id, { force: true, volumes: false });
  });

  it('--ipc shareable / container:<ref>: the joiner shares the donor /dev/shm; a private donor is refused; nothing stays mounted', async () => {
    const donor = await create({ Cmd: ['sh', '-c', 'echo from-donor > /dev/shm/x; sleep 100'], HostConfig: { IpcMode: 'shareable', ShmSize: 8 << 20, NetworkMode: 'none' } }, 'ipcdonor');
    await engine.startContainer(donor);
    const shm = path.join(dataRoot, 'containers', donor, 'mounts', 'shm');
    await until('the donor wrote to /dev/shm', () => fs.existsSync(path.join(shm, 'x')));
    const joiner = await create({ Cmd: ['sh', '-c', 'cat /dev/shm/x; echo from-joiner > /dev/shm/y; ipcs -m >/dev/null; grep " /dev/shm " /proc/mounts'], HostConfig: { IpcMode: 'container:ipcdonor', NetworkMode: 'none' } });
    const wj = await engine.waitContainer(joiner, 'next-exit');
    await engine.startContainer(joiner);
    assert.deepEqual(await wj.result, { StatusCode: 0 });
    const out = demux(await readAll((await engine.containerLogs(joiner, { follow: false, stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: 'all' })).body)).stdout;
    assert.match(out, /^from-donor\n/);
    assert.match(out, /size=8192k/);
    assert.equal(fs.readFileSync(path.join(shm, 'y'), 'utf8'), 'from-joiner\n');
    const donorPid = (await engine.inspectContainer(donor)).State.Pid;
    const joinerIns = await engine.inspectContainer(joiner);
    assert.equal(joinerIns.State.ExitCode, 0);

    const priv = await create({ Cmd: ['sleep', '100'], HostConfig: { NetworkMode: 'none' } }, 'ipcprivate');
    await engine.startContainer(priv);
    const refused = await create({ Cmd: ['true'], HostConfig: { IpcMode: 'container:ipcprivate', NetworkMode: 'none' } });
    await assert.rejects(engine.startContainer(refused), { message: `can't join IPC of container ${priv}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)` });
    assert.deepEqual(leftovers(refused), []);
    assert.ok(donorPid > 0);
    await engine.stopContainer(donor, { timeout: 0 });
    assert.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(shm), false, "the donor's shm is unmounted when its run ends");
    for (const id of [donor, joiner, priv, refused]) await engine.removeContainer(id, { force: true, volumes: false });
    assert.deepEqual(leftovers(donor), []);
  });

  it('--privileged: every capability the daemon has, no seccomp, devices visible', async () => {
    const id = await create({ Cmd: ['sh', '-c', 'grep -E "CapEff|Seccomp:" /proc/self/status; ls /dev/loop-control >/dev/null && echo devs'], HostConfig: { Privileged: true } });
    const w = await engine.waitContainer(id, 'next-exit');
    await engine.startContainer(id);
    assert.deepEqual(await w.result, { StatusCode: 0 });
    const logs = await engine.containerLogs(id, { follow: false, stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: 'all' });
    const out = demux(await readAll(logs.body));
    const own = /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
    assert.equal(out.stdout, `CapEff:\t${own}\nSeccomp:\t0\ndevs\n`);
    await engine.removeContainer(id, { force: false, volumes: false });
  });

  it('a memory limit is enforced: OOMKilled, exit 137, an oom event', async () => {
    const since = Date.now() / 1000;
    const id = await create({ Cmd: ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'], HostConfig: { Memory: 8 << 20, MemorySwap: 8 << 20 } });
    const w = await engine.waitContainer(id, 'next-exit');
    await engine.startContainer(id);
    assert.deepEqual(await w.result, { StatusCode: 137 });
    const ins = await engine.inspectContainer(id);
    assert.equal(ins.State.OOMKilled, true);
    assert.equal(ins.HostConfig.Memory, 8 << 20);
    const actions: string[] = [];
    // Event times come from a monotonic clock based on the wall clock at load, Date.now() is
    // whole milliseconds: an `until` of now may fall a fraction of a millisecond before the die
    // event the wait just reported. A little later catches it.
    const until = Date.now() / 1000 + 0.01;
    for await (const e of engine.events({ since, until, filters: new Map([['container', new Set([id])]]) }, new AbortController().signal)) actions.push(e.Action);
    assert.deepEqual(actions.slice(-2), ['oom', 'die']);
    await engine.removeContainer(id, { force: false, volumes: false });
    assert.deepEqual(leftovers(id), []);
  });

  it('logs --follow ends when the container stops', async () => {
    const id = await create({ Cmd: ['sh', '-c', 'for i in 1 2 3; do echo $i; sleep 0.2; done'], Tty: true });
    await engine.startContainer(id);
    const logs = await engine.containerLogs(id, { follow: true, stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: 'all' });
    assert.equal(logs.tty, true);
    const text = (await readAll(logs.body)).toString();
    assert.equal(text.replace(/\r/g, ''), '1\n2\n3\n');
    await engine.removeContainer(id, { force: true, volumes: false });
  });
});
