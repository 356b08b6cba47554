/**
 * berth import from a URL (POST /images/create?fromSrc=http://...): a small HTTP server on
 * 127.0.0.1 serves the busybox rootfs plain and gzip; a 404 and a refused connection are errors
 * in Docker's words with exit 1, and leave no image.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { berthCli, busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';


let daemon: Daemon;

const cli = berthCli(() => daemon.host);
const berth = cli.run;
const ok = cli.ok;

describe('berth import from a URL', { skip: process.getuid?.() !== 0 ? 'needs root (berthd)' : undefined, timeout: 120_000 }, () => {
  let server: Server;
  let base: string;
  let requests: string[];

  before(async () => {
    const tar = await fs.readFile(await busyboxImageTar());
    const files: Record<string, Buffer> = { '/rootfs.tar': tar, '/rootfs.tar.gz': gzipSync(tar) };
    requests = [];
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const body = files[req.url ?? ''];
      if (body === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('no such tarball\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': String(body.length) });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    daemon = await startDaemon();
  });
  after(async () => {
    if (daemon !== undefined) await daemon.cleanup();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('a plain tar and a gzip tar import; the image runs and names its source', async () => {
    const out = await ok(['import', `${base}/rootfs.tar`, 'fromurl/plain:1']);
    const lines = out.trim().split('\n');
    assert.equal(lines[0], `Downloading from ${base}/rootfs.tar`);
    assert.match(lines.at(-1)!, /^sha256:[a-f0-9]{64}$/);
    const id = lines.at(-1)!;
    const gz = (await ok(['import', '-c', 'CMD ["sh"]', `${base}/rootfs.tar.gz`, 'fromurl/gz:1'])).trim().split('\n').at(-1)!;
    assert.deepEqual(requests, ['/rootfs.tar', '/rootfs.tar.gz']);
    // The same rootfs: the same layer, whatever the transfer encoding.
    const layers = async (ref: string): Promise<string> => (await ok(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', ref])).trim();
    assert.equal(await layers(id), await layers(gz));
    assert.equal((await ok(['image', 'inspect', '-f', '{{.Comment}}', 'fromurl/plain:1'])).trim(), `Imported from ${base}/rootfs.tar`);
    assert.equal(await ok(['run', '--rm', 'fromurl/gz:1', 'echo', 'imported over http']), 'imported over http\n');
  });

  test('a URL that answers 404 is an error in docker words, exit 1, no image', async () => {
    const r = await berth(['import', `${base}/missing.tar`, 'fromurl/missing:1']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `Error response from daemon: failed to GET ${base}/missing.tar with status 404 Not Found: no such tarball\n`);
    assert.notEqual((await berth(['image', 'inspect', 'fromurl/missing:1'])).code, 0);
  });

  test('a URL nobody answers is an error, exit 1', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const r = await berth(['import', `http://127.0.0.1:${port}/x.tar`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `Error response from daemon: Get "http://127.0.0.1:${port}/x.tar": dial tcp 127.0.0.1:${port}: connect: connection refused\n`);
  });
});
