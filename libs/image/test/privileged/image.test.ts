import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@berth/log';
import type { GraphDriver } from '@berth/plugin-api';
import { ImageStore } from '@berth/image';

const BUSYBOX_TAR = '/var/lib/berth/fixtures/busybox.tar';

/**
 * A plain on-disk driver for this test (the vfs plugin may not be imported by a domain
 * package): full copies with cp -a, layers extracted by GNU tar. Trusted input only.
 */
function dirDriver(home: string): GraphDriver {
  const dir = (id: string): string => path.join(home, id);
  return {
    name: 'testdir',
    async create(id, parent) {
      fs.mkdirSync(dir(id), { recursive: true });
      if (parent !== '') execFileSync('cp', ['-a', '-T', dir(parent), dir(id)]);
    },
    async createReadWrite(id, parent) {
      return this.create(id, parent);
    },
    async remove(id) {
      fs.rmSync(dir(id), { recursive: true, force: true });
    },
    async get(id) {
      if (!fs.existsSync(dir(id))) throw Object.assign(new Error(`no ${id}`), { code: 'BERTH_LAYER_NOT_FOUND' });
      return dir(id);
    },
    async put() {},
    async exists(id) {
      return fs.existsSync(dir(id));
    },
    async status() {
      return [];
    },
    async getMetadata() {
      return {};
    },
    async cleanup() {},
    async diff() {
      throw new Error('unused');
    },
    async changes() {
      return [];
    },
    async applyDiff(id, _parent, diff) {
      const child = spawn('tar', ['-C', dir(id), '--numeric-owner', '-xpf', '-'], { stdio: ['pipe', 'ignore', 'inherit'] });
      diff.pipe(child.stdin);
      await new Promise<void>((res, rej) => child.on('exit', (code) => (code === 0 ? res() : rej(new Error(`tar ${code}`)))));
      return Number(execFileSync('du', ['-sb', dir(id)]).toString().split('\t')[0]);
    },
    async diffSize(id) {
      return fs.existsSync(path.join(dir(id), 'hello')) ? 5 : 0;
    },
    async capabilities() {
      return { reproducesExactDiffs: false };
    },
  };
}

describe('image store round trip (privileged)', { skip: (process.getuid?.() !== 0 && 'needs root') || (!fs.existsSync(BUSYBOX_TAR) && `no ${BUSYBOX_TAR}`) }, () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `berth-image-priv-${process.pid}-`));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('imports busybox, resolves it, makes a container layer, exports it, removes everything', async () => {
    const driverHome = path.join(tmp, 'driver');
    const root = path.join(tmp, 'image');
    const open = (): Promise<ImageStore> => ImageStore.open({ root, driver: dirDriver(driverHome), logger: silentLogger() });
    let store = await open();
    const created = new Date('2024-01-01T00:00:00Z');
    const id = await store.importTar(fs.createReadStream(BUSYBOX_TAR), { repo: 'busybox', tag: '', message: '', changes: ['CMD ["sh"]'], created });
    // deterministic: the same tar and options give the same id
    const again = await store.importTar(fs.createReadStream(BUSYBOX_TAR), { repo: 'busybox', tag: '', message: '', changes: ['CMD ["sh"]'], created });
    assert.equal(again, id);
    assert.equal(fs.readdirSync(driverHome).length, 1, 'the duplicate layer was dropped');

    const diffId = `sha256:${execFileSync('sha256sum', [BUSYBOX_TAR]).toString().split(' ')[0]}`;
    store = await open(); // everything persisted
    const r = await store.resolve('busybox');
    assert.equal(r.id, id);
    assert.equal(r.topLayer, diffId);
    assert.deepEqual(r.config.config?.Cmd, ['sh']);
    assert.deepEqual(r.repoTags, ['busybox:latest']);
    for (const ref of ['busybox:latest', 'docker.io/library/busybox', id, id.slice(7), id.slice(7, 19), `sha256:${id.slice(7, 15)}`])
      assert.equal((await store.resolve(ref)).id, id, ref);
    await assert.rejects(store.resolve('nothere'), { code: 'BERTH_IMAGE_NOT_FOUND', message: 'No such image: nothere:latest' });
    const repos = JSON.parse(fs.readFileSync(path.join(root, 'repositories.json'), 'utf8'));
    assert.deepEqual(repos, { Repositories: { busybox: { 'busybox:latest': id } } });
    assert.equal(fs.readFileSync(path.join(root, 'layerdb/sha256', diffId.slice(7), 'diff'), 'utf8'), diffId);

    await store.createContainerLayer('ctr1', id);
    const rootfs = await store.mountContainerLayer('ctr1');
    fs.writeFileSync(path.join(rootfs, 'hello'), 'world');
    await assert.rejects(store.remove('busybox', { force: false, noprune: false }, () => 'ctr1'), {
      code: 'BERTH_IMAGE_CONFLICT',
      message: `conflict: unable to remove repository reference "busybox" (must force) - container ctr1 is using its referenced image ${id.slice(7, 19)}`,
    });
    await assert.rejects(store.remove(id, { force: false, noprune: false }, () => ({ id: 'ctr1', running: true })), {
      message: `conflict: unable to delete ${id.slice(7, 19)} (cannot be forced) - image is being used by running container ctr1`,
    });

    const tar = await store.exportContainer('ctr1');
    const chunks: Buffer[] = [];
    for await (const c of tar) chunks.push(c as Buffer);
    const listing = execFileSync('tar', ['-tvf', '-'], { input: Buffer.concat(chunks) }).toString();
    assert.match(listing, / bin\/sh -> \/bin\/busybox\n/);
    assert.match(listing, / hello\n/);
    await store.unmountContainerLayer('ctr1');
    await store.removeContainerLayer('ctr1');

    const items = await store.remove('busybox', { force: false, noprune: false }, () => null);
    assert.deepEqual(items, [{ Untagged: 'busybox:latest' }, { Deleted: id }, { Deleted: diffId }]);
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(fs.readdirSync(driverHome), []);
    assert.deepEqual(fs.readdirSync(path.join(root, 'layerdb/sha256')), []);
    assert.deepEqual(fs.readdirSync(path.join(root, 'layerdb/mounts')), []);
    assert.deepEqual(fs.readdirSync(path.join(root, 'imagedb/content/sha256')), []);
  });

  it('an export whose reader goes away early (export | head -c 100) ends quietly and releases the mount', async () => {
    const driverHome = path.join(tmp, 'driver-early');
    const base = dirDriver(driverHome);
    let gets = 0;
    let puts = 0;
    const driver: GraphDriver = {
      ...base,
      get: async (id) => {
        gets++;
        return base.get(id);
      },
      put: async (id) => {
        puts++;
        return base.put(id);
      },
    };
    const store = await ImageStore.open({ root: path.join(tmp, 'image-early'), driver, logger: silentLogger() });
    const id = await store.importTar(fs.createReadStream(BUSYBOX_TAR), { repo: 'busybox', tag: '', message: '', changes: [] });
    await store.createContainerLayer('early', id);
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      // Cut after the first chunk, inside a header, and in the middle of bin/busybox's data.
      for (const cut of [1, 100, 600_000]) {
        const tar = await store.exportContainer('early');
        await new Promise<void>((resolve) => {
          let n = 0;
          tar.on('data', (d: Buffer) => {
            n += d.length;
            if (n >= cut) tar.destroy();
          });
          tar.on('close', () => resolve());
        });
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    assert.deepEqual(uncaught.map((e) => (e as Error).message), []);
    assert.equal(gets, 3);
    assert.equal(puts, 3, 'every export released its mount');
    await store.removeContainerLayer('early');
  });
});
