import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@berth/log';
import { createServer } from '../../server.js';
import { TestEngine } from '../../test-engine.js';
import { imagesForVersion } from './index.js';

const tagged = { Id: 'sha256:a', RepoTags: ['busybox:latest'], RepoDigests: [], Size: 7 };
const untagged = { Id: 'sha256:b', RepoTags: [], RepoDigests: [], Size: 9 };

test('image list by API version: VirtualSize before 1.44, <none> names for untagged images before 1.43', () => {
  assert.deepEqual(imagesForVersion([tagged, untagged], '1.47'), [tagged, untagged]);
  assert.deepEqual(imagesForVersion([tagged, untagged], '1.44'), [tagged, untagged]);
  assert.deepEqual(imagesForVersion([tagged, untagged], '1.43'), [{ ...tagged, VirtualSize: 7 }, { ...untagged, VirtualSize: 9 }]);
  assert.deepEqual(imagesForVersion([tagged, untagged], '1.41'), [{ ...tagged, VirtualSize: 7 }, { ...untagged, RepoTags: ['<none>:<none>'], RepoDigests: ['<none>@<none>'], VirtualSize: 9 }]);
});

test('GET /images/json and /images/{name}/json carry VirtualSize for a client below API 1.44 only', async () => {
  const engine = new TestEngine();
  engine.images.set('busybox:latest', 'sha256:' + 'a'.repeat(64));
  const app = createServer({ engine, logger: silentLogger() });
  const list = async (v: string) => (await app.inject({ method: 'GET', url: `/v${v}/images/json` })).json() as Array<Record<string, unknown>>;
  assert.equal((await list('1.41'))[0]!.VirtualSize, 1);
  assert.equal('VirtualSize' in (await list('1.44'))[0]!, false);
  const one = async (v: string) => (await app.inject({ method: 'GET', url: `/v${v}/images/busybox/json` })).json() as Record<string, unknown>;
  assert.ok('VirtualSize' in (await one('1.43')));
  assert.equal('VirtualSize' in (await one('1.47')), false);
});
