/**
 * dockerode (the Node client most tools use) against berthd: create, attach before start,
 * wait, logs, exec, list with filters, image inspect, and its error objects.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createReadStream } from 'node:fs';
import Docker from 'dockerode';
import { busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
let docker: Docker;

function collect(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

const name = (what: string): string => `dockerode-${what}-${process.pid}`;

describe('dockerode against berthd', { timeout: 120_000 }, () => {
  before(async () => {
    daemon = await startDaemon();
    docker = new Docker({ socketPath: daemon.socket });
    const tar = await busyboxImageTar();
    const importImage = docker.importImage.bind(docker) as unknown as (src: NodeJS.ReadableStream, opts: object) => Promise<NodeJS.ReadableStream>;
    const stream = await importImage(createReadStream(tar), { repo: 'busybox', tag: 'latest', changes: ['CMD ["sh"]'] });
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())));
  });
  after(async () => {
    for (const c of await docker.listContainers({ all: true })) await docker.getContainer(c.Id).remove({ force: true });
    await daemon.cleanup();
  });

  test('ping and version', async () => {
    assert.equal(String(await docker.ping()), 'OK');
    const v = await docker.version();
    assert.equal(v.ApiVersion, '1.47');
    assert.equal(v.Os, 'linux');
  });

  test('attach before start gets all output demultiplexed; wait gives the code', async () => {
    const c = await docker.createContainer({ name: name('attach'), Image: 'busybox', Cmd: ['sh', '-c', 'echo one; echo two >&2; exit 5'] });
    const stream = await c.attach({ stream: true, stdout: true, stderr: true });
    const out = collect();
    const err = collect();
    docker.modem.demuxStream(stream, out.stream, err.stream);
    const ended = new Promise((r) => stream.on('end', r));
    const waited = c.wait({ condition: 'next-exit' });
    await c.start();
    const res = await waited;
    await ended;
    assert.equal(res.StatusCode, 5);
    assert.equal(out.text(), 'one\n');
    assert.equal(err.text(), 'two\n');
    const logs = (await c.logs({ stdout: true, stderr: true, timestamps: true })) as unknown as Buffer;
    // Multiplexed frames: stdout frame first, each line with an RFC 3339 nanosecond timestamp.
    assert.equal(logs[0], 1);
    assert.match(logs.subarray(8).toString(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z one\n/);
    await c.remove();
  });

  test('exec in a running container and inspect its exit code', async () => {
    const c = await docker.createContainer({ name: name('exec'), Image: 'busybox', Cmd: ['sleep', '1000'] });
    await c.start();
    const exec = await c.exec({ Cmd: ['sh', '-c', 'echo in-exec; exit 7'], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const out = collect();
    docker.modem.demuxStream(stream, out.stream, new PassThrough());
    await new Promise((r) => stream.on('end', r));
    assert.equal(out.text(), 'in-exec\n');
    const info = await exec.inspect();
    assert.equal(info.ExitCode, 7);
    assert.equal(info.Running, false);
    const list = await docker.listContainers({ filters: { name: [name('exec')] } });
    assert.equal(list.length, 1);
    assert.equal(list[0]!.State, 'running');
    await c.remove({ force: true });
  });

  test('unknown container and image reject with statusCode 404', async () => {
    await assert.rejects(docker.getContainer('no-such-container').inspect(), (err: { statusCode?: number; message: string }) => {
      assert.equal(err.statusCode, 404);
      assert.match(err.message, /No such container: no-such-container/);
      return true;
    });
    await assert.rejects(docker.getImage('no-such-image').inspect(), (err: { statusCode?: number }) => err.statusCode === 404);
    const img = await docker.getImage('busybox').inspect();
    assert.deepEqual(img.Config.Cmd, ['sh']);
  });

  test('a name in use answers 409 naming the holder', async () => {
    const c = await docker.createContainer({ name: name('dup'), Image: 'busybox', Cmd: ['true'] });
    await assert.rejects(docker.createContainer({ name: name('dup'), Image: 'busybox', Cmd: ['true'] }), (err: { statusCode?: number; message: string }) => {
      assert.equal(err.statusCode, 409);
      assert.match(err.message, new RegExp(c.id));
      return true;
    });
    await c.remove();
  });
});
