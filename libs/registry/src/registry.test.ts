import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BerthError } from '@berth/errors';
import {
  MediaType,
  RegistryClient,
  decodeRegistryAuth,
  decodeRegistryConfig,
  authForDomain,
  encodeRegistryAuth,
  isInsecureRegistry,
  parseChallenges,
  parseManifest,
  pickPlatform,
  pullImage,
  pushImage,
  registryHost,
  translatePullError,
} from './index.js';

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

async function serve(handler: Handler): Promise<{ server: Server; domain: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    domain: `127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': text.length, ...headers });
  res.end(text);
}

/** A one-layer image served from memory. */
function fixture(opts: { corruptLayer?: boolean } = {}) {
  const tar = Buffer.from('not really a tar, but bytes with a digest\n'.repeat(100));
  const layer = gzipSync(tar);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(tar)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: { mediaType: MediaType.DockerConfig, size: config.length, digest: sha(config) },
      layers: [{ mediaType: MediaType.DockerLayerGzip, size: layer.length, digest: sha(layer) }],
    }),
  );
  const blobs = new Map<string, Buffer>([
    [sha(config), config],
    [sha(layer), opts.corruptLayer === true ? Buffer.concat([layer.subarray(0, layer.length - 1), Buffer.from([layer[layer.length - 1]! ^ 1])]) : layer],
  ]);
  return { tar, layer, config, manifest, blobs };
}

function registryHandler(f: ReturnType<typeof fixture>, check?: (req: IncomingMessage) => boolean): Handler {
  return (req, res) => {
    if (check !== undefined && !check(req)) return;
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/v2/') return json(res, 200, {});
    let m = /^\/v2\/(.+)\/manifests\/(.+)$/.exec(url.pathname);
    if (m !== null) {
      if (m[2] === 'latest' || m[2] === sha(f.manifest)) {
        res.writeHead(200, { 'content-type': MediaType.DockerManifest, 'docker-content-digest': sha(f.manifest) });
        return res.end(f.manifest);
      }
      return json(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: m[2] } }] });
    }
    m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]+)$/.exec(url.pathname);
    const blob = m === null ? undefined : f.blobs.get(m[2]!);
    if (blob !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
      return res.end(req.method === 'HEAD' ? undefined : blob);
    }
    return json(res, 404, { errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] });
  };
}

test('a pull over plain HTTP (loopback is insecure by default) downloads and verifies the layer', async (t) => {
  const f = fixture();
  const srv = await serve(registryHandler(f));
  const tmp = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  t.after(async () => {
    await srv.close();
    await rm(tmp, { recursive: true, force: true });
  });
  const repo = new RegistryClient().repository(srv.domain, 'x/img');
  const events: string[] = [];
  const pulled = await pullImage(repo, { reference: 'latest', tmpDir: tmp, onEvent: (e) => events.push(e.type === 'layer' ? e.state : e.type) });
  assert.equal(pulled.digest, sha(f.manifest));
  assert.equal(pulled.configDigest, sha(f.config));
  assert.deepEqual(pulled.config, f.config);
  assert.equal(pulled.layers.length, 1);
  assert.equal(pulled.layers[0]!.diffId, sha(f.tar));
  assert.deepEqual(await readFile(pulled.layers[0]!.file!), f.layer);
  assert.deepEqual(events.filter((e, i) => events[i - 1] !== e), ['manifest', 'waiting', 'downloading', 'verifying', 'downloaded']);
  assert.equal(repo.baseUrl, `http://${srv.domain}/`);
  await pulled.cleanup();
  assert.deepEqual(await readdir(tmp), []);
});

test('a layer whose bytes do not match its digest fails the pull and leaves no file behind', async (t) => {
  const f = fixture({ corruptLayer: true });
  const srv = await serve(registryHandler(f));
  const tmp = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  t.after(async () => {
    await srv.close();
    await rm(tmp, { recursive: true, force: true });
  });
  const repo = new RegistryClient().repository(srv.domain, 'x/img');
  await assert.rejects(pullImage(repo, { reference: 'latest', tmpDir: tmp }), (err: BerthError) => {
    assert.equal(err.code, 'BERTH_REGISTRY_PROTOCOL');
    assert.equal(err.message, `filesystem layer verification failed for digest ${sha(f.layer)}`);
    return true;
  });
  assert.deepEqual(await readdir(tmp), []);
});

test('a manifest fetched by digest whose bytes do not match is refused', async (t) => {
  const f = fixture();
  const wrong = `sha256:${'1'.repeat(64)}`;
  const srv = await serve((req, res) => {
    if (req.url === '/v2/') return json(res, 200, {});
    res.writeHead(200, { 'content-type': MediaType.DockerManifest });
    res.end(f.manifest);
  });
  t.after(() => srv.close());
  const repo = new RegistryClient().repository(srv.domain, 'x/img');
  await assert.rejects(repo.getManifest(wrong), /manifest verification failed for digest sha256:1111/);
});

test('garbage answers are protocol errors with a clear text', async (t) => {
  const srv = await serve((req, res) => {
    if (req.url === '/v2/') return json(res, 200, {});
    if (req.url?.includes('/manifests/notjson')) {
      res.writeHead(200, { 'content-type': MediaType.DockerManifest });
      return res.end('<html>hello</html>');
    }
    if (req.url?.includes('/manifests/v1')) {
      res.writeHead(200, { 'content-type': MediaType.DockerSchema1Signed });
      return res.end(JSON.stringify({ schemaVersion: 1, name: 'x/img', tag: 'v1', fsLayers: [] }));
    }
    if (req.url?.includes('/manifests/nolayers')) {
      res.writeHead(200, { 'content-type': MediaType.OciManifest });
      return res.end(JSON.stringify({ schemaVersion: 2, config: { digest: 'sha256:zz', size: 1 } }));
    }
    res.writeHead(500);
    res.end('oops');
  });
  t.after(() => srv.close());
  const repo = new RegistryClient().repository(srv.domain, 'x/img');
  await assert.rejects(repo.getManifest('notjson'), { code: 'BERTH_REGISTRY_PROTOCOL', message: `malformed manifest from ${srv.domain}/x/img:notjson: not JSON` });
  await assert.rejects(repo.getManifest('v1'), /schema 1, which is not supported/);
  await assert.rejects(repo.getManifest('nolayers'), /without "layers"/);
  await assert.rejects(repo.getManifest('boom'), { code: 'BERTH_REGISTRY_UNAVAILABLE' });
});

test('404 of a tag and of a repository read as Docker says them', async (t) => {
  const srv = await serve((req, res) => {
    if (req.url === '/v2/') return json(res, 200, {});
    if (req.url?.startsWith('/v2/x/none/')) return json(res, 404, { errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] });
    res.writeHead(404);
    res.end();
  });
  t.after(() => srv.close());
  const client = new RegistryClient();
  const tag = await client.repository(srv.domain, 'x/img').getManifest('nope').catch((e: unknown) => e);
  const e1 = translatePullError(tag, `${srv.domain}/x/img`, `${srv.domain}/x/img:nope`) as BerthError;
  assert.equal(e1.code, 'BERTH_REGISTRY_NOT_FOUND');
  assert.equal(e1.message, `manifest for ${srv.domain}/x/img:nope not found: manifest unknown: manifest unknown`);
  const repo = await client.repository(srv.domain, 'x/none').getManifest('latest').catch((e: unknown) => e);
  const e2 = translatePullError(repo, `${srv.domain}/x/none`, `${srv.domain}/x/none:latest`) as BerthError;
  assert.equal(e2.message, `repository ${srv.domain}/x/none not found: name unknown: repository name not known to registry`);
});

test('Bearer auth: a token for the repository scope, with the caller\'s credentials, then the request', async (t) => {
  const f = fixture();
  const seen: { scope: string[]; auth: string | undefined }[] = [];
  let tokenUrl = '';
  const srv = await serve((req, res, body) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      seen.push({ scope: url.searchParams.getAll('scope'), auth: req.headers.authorization });
      if (req.headers.authorization !== `Basic ${Buffer.from('alice:s3cret').toString('base64')}`)
        return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
      return json(res, 200, { token: 'tok-' + url.searchParams.getAll('scope').join('+') });
    }
    if (req.headers.authorization?.startsWith('Bearer tok-') !== true) {
      res.setHeader('www-authenticate', `Bearer realm="${tokenUrl}",service="fake",scope="repository:x/img:pull"`);
      return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
    }
    registryHandler(f)(req, res, body);
  });
  tokenUrl = `http://${srv.domain}/token`;
  t.after(() => srv.close());
  const client = new RegistryClient();
  const ok = await client.repository(srv.domain, 'x/img', { username: 'alice', password: 's3cret' }).getManifest('latest');
  assert.equal(ok.digest, sha(f.manifest));
  assert.deepEqual(seen.at(-1)!.scope, ['repository:x/img:pull']);
  // Credentials in the CLI's `auth` form, push scope.
  await client.repository(srv.domain, 'x/img', { auth: Buffer.from('alice:s3cret').toString('base64') }, ['pull', 'push']).statBlob(sha(f.config));
  assert.deepEqual(seen.at(-1)!.scope, ['repository:x/img:pull,push']);
  // Wrong password: the token service says no.
  const err = await client.repository(srv.domain, 'x/img', { username: 'alice', password: 'nope' }).getManifest('latest').catch((e: unknown) => e);
  assert.equal((err as BerthError).code, 'BERTH_REGISTRY_UNAUTHORIZED');
  assert.match((err as Error).message, /unauthorized: authentication required/);
  const denied = translatePullError(err, `${srv.domain}/x/img`, `${srv.domain}/x/img:latest`) as Error;
  assert.equal(
    denied.message,
    `pull access denied for ${srv.domain}/x/img, repository does not exist or may require 'docker login': unauthorized: authentication required`,
  );
});

test('Basic auth: credentials sent on each request; none given -> unauthorized', async (t) => {
  const f = fixture();
  const good = `Basic ${Buffer.from('bob:pw').toString('base64')}`;
  const srv = await serve((req, res, body) => {
    if (req.headers.authorization !== good) {
      res.setHeader('www-authenticate', 'Basic realm="fake"');
      return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
    }
    registryHandler(f)(req, res, body);
  });
  t.after(() => srv.close());
  const client = new RegistryClient();
  assert.equal((await client.repository(srv.domain, 'x/img', { username: 'bob', password: 'pw' }).getManifest('latest')).digest, sha(f.manifest));
  await assert.rejects(client.repository(srv.domain, 'x/img').getManifest('latest'), {
    code: 'BERTH_REGISTRY_UNAUTHORIZED',
    message: `Get "http://${srv.domain}/v2/x/img/manifests/latest": no basic auth credentials`,
  });
  await assert.rejects(client.repository(srv.domain, 'x/img', { username: 'bob', password: 'no' }).getManifest('latest'), {
    code: 'BERTH_REGISTRY_UNAUTHORIZED',
    message: 'GET /v2/x/img/manifests/latest: unauthorized: authentication required',
  });
});

test('push: HEAD skips a blob the registry has; monolithic PUT for the others; the manifest last', async (t) => {
  const store = new Map<string, Buffer>();
  const log: string[] = [];
  let manifest: { type: string | undefined; body: Buffer } | undefined;
  const srv = await serve((req, res, body) => {
    const url = new URL(req.url ?? '/', 'http://x');
    log.push(`${req.method} ${url.pathname}`);
    if (url.pathname === '/v2/') return json(res, 200, {});
    const blob = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname);
    if (blob !== null) {
      const b = store.get(blob[1]!);
      res.writeHead(b === undefined ? 404 : 200, b === undefined ? {} : { 'content-length': b.length });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/v2/x/img/blobs/uploads/') {
      res.writeHead(202, { location: '/v2/x/img/blobs/uploads/u1?_state=abc' });
      return res.end();
    }
    if (req.method === 'PUT' && url.pathname === '/v2/x/img/blobs/uploads/u1') {
      assert.equal(url.searchParams.get('_state'), 'abc');
      const d = url.searchParams.get('digest')!;
      if (sha(body) !== d) return json(res, 400, { errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' }] });
      store.set(d, body);
      res.writeHead(201, { 'docker-content-digest': d, location: `/v2/x/img/blobs/${d}` });
      return res.end();
    }
    if (req.method === 'PUT' && url.pathname === '/v2/x/img/manifests/v1') {
      manifest = { type: req.headers['content-type'], body };
      res.writeHead(201, { 'docker-content-digest': sha(body) });
      return res.end();
    }
    res.writeHead(405);
    res.end();
  });
  const tmp = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  t.after(async () => {
    await srv.close();
    await rm(tmp, { recursive: true, force: true });
  });
  const tars = [Buffer.from('layer one'.repeat(1000)), Buffer.from('layer two'.repeat(1000))];
  const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: tars.map((x) => sha(x)) } }));
  // The registry has the first layer's gzip already (same bytes: our gzip is deterministic).
  store.set(sha(gzipSync(tars[0]!, { level: 6 })), gzipSync(tars[0]!, { level: 6 }));
  const { Readable } = await import('node:stream');
  const states: string[] = [];
  const repo = new RegistryClient().repository(srv.domain, 'x/img', {}, ['pull', 'push']);
  const pushed = await pushImage(repo, {
    tag: 'v1',
    config,
    tmpDir: tmp,
    layers: tars.map((x) => ({ diffId: sha(x), open: () => Readable.from([x]) })),
    onEvent: (e) => states.push(`${e.diffId.slice(7, 11)} ${e.state}`),
    concurrency: 1,
  });
  assert.equal(manifest?.type, MediaType.DockerManifest);
  assert.equal(pushed.digest, sha(manifest!.body));
  const m = JSON.parse(manifest!.body.toString()) as { layers: { digest: string }[]; config: { digest: string } };
  assert.equal(m.config.digest, sha(config));
  assert.ok(store.has(sha(config)));
  for (const l of m.layers) assert.ok(store.has(l.digest));
  assert.ok(states.includes(`${sha(tars[0]!).slice(7, 11)} exists`));
  assert.ok(states.includes(`${sha(tars[1]!).slice(7, 11)} pushed`));
  assert.equal(log.filter((l) => l.startsWith('PUT /v2/x/img/blobs/uploads')).length, 2, 'layer two and the config');
  assert.deepEqual(await readdir(tmp), []);
});

test('auth config from X-Registry-Auth, challenges, hosts, manifests and platforms', () => {
  assert.deepEqual(decodeRegistryAuth(undefined), {});
  assert.deepEqual(decodeRegistryAuth(encodeRegistryAuth({ username: 'u', password: 'p', serveraddress: 'r' })), { username: 'u', password: 'p', serveraddress: 'r' });
  assert.deepEqual(decodeRegistryAuth(Buffer.from('{"Username":"U","Password":"P"}').toString('base64')), { username: 'U', password: 'P' });
  assert.throws(() => decodeRegistryAuth('!!!notjson'), { code: 'BERTH_INVALID_ARGUMENT' });
  // X-Registry-Config (build): every registry's entry, keyed as config.json keys them.
  const cfg = decodeRegistryConfig(
    Buffer.from(JSON.stringify({ 'https://index.docker.io/v1/': { username: 'hub', password: 'h' }, 'localhost:5000': { Username: 'loc', Password: 'l' }, 'http://reg.example:8080/v2/': { username: 'ex' }, junk: 'x' })).toString('base64url'),
  );
  assert.deepEqual(Object.keys(cfg), ['https://index.docker.io/v1/', 'localhost:5000', 'http://reg.example:8080/v2/']);
  assert.deepEqual(authForDomain(cfg, 'docker.io'), { username: 'hub', password: 'h' });
  assert.deepEqual(authForDomain(cfg, 'localhost:5000'), { username: 'loc', password: 'l' });
  assert.deepEqual(authForDomain(cfg, 'reg.example:8080'), { username: 'ex' });
  assert.deepEqual(authForDomain(cfg, 'reg.example'), {}, 'another port is another registry');
  assert.deepEqual(decodeRegistryConfig(undefined), {});
  assert.deepEqual(decodeRegistryConfig(Buffer.from('null').toString('base64')), {});
  assert.throws(() => decodeRegistryConfig(Buffer.from('[1]').toString('base64')), { code: 'BERTH_INVALID_ARGUMENT', message: 'invalid X-Registry-Config header: not a JSON object' });

  assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
  assert.deepEqual(parseChallenges(['Basic realm="Registry Realm"']), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);

  assert.equal(registryHost('docker.io'), 'registry-1.docker.io');
  assert.equal(registryHost('127.0.0.1:5000'), '127.0.0.1:5000');
  assert.equal(isInsecureRegistry('127.0.0.1:5000'), true);
  assert.equal(isInsecureRegistry('127.3.4.5'), true);
  assert.equal(isInsecureRegistry('localhost:5000'), true);
  assert.equal(isInsecureRegistry('[::1]:5000'), true);
  assert.equal(isInsecureRegistry('registry.example:5000'), false);
  assert.equal(isInsecureRegistry('registry.example:5000', ['registry.example:5000']), true);
  assert.equal(isInsecureRegistry('10.1.2.3:5000', ['10.0.0.0/8']), true);
  assert.equal(isInsecureRegistry('11.1.2.3:5000', ['10.0.0.0/8']), false);
  assert.equal(isInsecureRegistry('docker.io'), false);

  const d = (n: number): string => `sha256:${String(n).repeat(64)}`;
  const index = parseManifest(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          { mediaType: MediaType.OciManifest, digest: d(1), size: 10, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
          { mediaType: MediaType.OciManifest, digest: d(2), size: 10, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: MediaType.OciManifest, digest: d(3), size: 10, platform: { os: 'windows', architecture: 'amd64' } },
        ],
      }),
    ),
    undefined,
    'test',
  );
  assert.equal(index.kind, 'index');
  if (index.kind !== 'index') return;
  assert.equal(pickPlatform(index.index, { os: 'linux', architecture: 'amd64' }).digest, d(2));
  assert.equal(pickPlatform(index.index, { os: 'linux', architecture: 'arm64', variant: 'v8' }).digest, d(1));
  assert.throws(() => pickPlatform(index.index, { os: 'linux', architecture: 's390x' }), {
    code: 'BERTH_REGISTRY_NOT_FOUND',
    message: 'no matching manifest for linux/s390x in the manifest list entries',
  });
});

test('an unreachable registry is Unavailable with Go-like text', async () => {
  const srv = await serve(() => undefined);
  const domain = srv.domain;
  await srv.close();
  const err = await new RegistryClient().repository(domain, 'x/img').getManifest('latest').catch((e: unknown) => e);
  assert.equal((err as BerthError).code, 'BERTH_REGISTRY_UNAVAILABLE');
  assert.match((err as Error).message, new RegExp(`dial tcp ${domain.replace(/\./g, '\\.')}: connect: connection refused`));
});

test('Bearer: a mount asks a token that also covers pull of the source repository; 201 means mounted', async (t) => {
  const scopes: string[][] = [];
  let tokenUrl = '';
  const digest = sha('blob');
  const srv = await serve((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      scopes.push(url.searchParams.getAll('scope'));
      return json(res, 200, { access_token: 'tok:' + url.searchParams.getAll('scope').join('+') });
    }
    if (req.headers.authorization === undefined) {
      res.setHeader('www-authenticate', `Bearer realm="${tokenUrl}",service="fake"`);
      return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
    }
    if (url.pathname === '/v2/') return json(res, 200, {});
    if (req.method === 'HEAD') {
      res.writeHead(404);
      return res.end();
    }
    if (req.method === 'POST' && url.searchParams.get('mount') === digest) {
      const ok = req.headers.authorization.includes('repository:src/repo:pull');
      res.writeHead(ok ? 201 : 202, ok ? { 'docker-content-digest': digest } : { location: '/v2/dst/repo/blobs/uploads/u' });
      return res.end();
    }
    res.writeHead(500);
    res.end();
  });
  tokenUrl = `http://${srv.domain}/token`;
  t.after(() => srv.close());
  const repo = new RegistryClient().repository(srv.domain, 'dst/repo', {}, ['pull', 'push']);
  const { Readable } = await import('node:stream');
  const r = await repo.pushBlob({ digest, size: 4, open: () => Readable.from([Buffer.from('blob')]) }, { mountFrom: ['src/repo'] });
  assert.deepEqual(r, { result: 'mounted', from: 'src/repo' });
  assert.deepEqual(scopes.at(-1), ['repository:dst/repo:pull,push', 'repository:src/repo:pull']);
});

test('Bearer: a plain-http token realm of a TLS registry is refused; no credentials are sent to it', async () => {
  const { PassThrough } = await import('node:stream');
  const sent: string[] = [];
  const transport = async (req: { method: string; url: URL; headers?: Record<string, string> }) => {
    sent.push(`${req.method} ${req.url.href} ${req.headers?.authorization ?? '-'}`);
    const body = new PassThrough();
    body.end('{}');
    const headers: Record<string, string> = {};
    if (req.url.pathname === '/v2/') headers['www-authenticate'] = 'Bearer realm="http://auth.example.test/token",service="fake"';
    return { status: req.url.pathname === '/v2/' ? 401 : 200, headers, body } as never;
  };
  const repo = new RegistryClient({ transport }).repository('registry.example.test', 'x/img', { username: 'alice', password: 's3cret' });
  await assert.rejects(repo.getManifest('latest'), (err: BerthError) => err.code === 'BERTH_REGISTRY_PROTOCOL' && /refusing the token realm "http:\/\/auth\.example\.test\/token"/.test(err.message));
  assert.deepEqual(sent, ['GET https://registry.example.test/v2/ -']);
});
