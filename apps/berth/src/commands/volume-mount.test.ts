import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { absoluteBindSource, parseMountFlags } from './volume-mount.js';

test('--mount: docker CLI fields, defaults and aliases', () => {
  assert.deepEqual(parseMountFlags(['target=/m']), [{ Type: 'volume', Target: '/m' }]);
  assert.deepEqual(parseMountFlags(['type=volume,src=data,dst=/d,ro,volume-nocopy,volume-opt=type=tmpfs,volume-opt=o=size=1m,volume-label=a=b,volume-driver=local']), [
    { Type: 'volume', Source: 'data', Target: '/d', ReadOnly: true, VolumeOptions: { NoCopy: true, DriverConfig: { Options: { type: 'tmpfs', o: 'size=1m' }, Name: 'local' }, Labels: { a: 'b' } } },
  ]);
  assert.deepEqual(parseMountFlags(['type=bind,source=/tmp,destination=/t,readonly=false,bind-propagation=rshared']), [
    { Type: 'bind', Source: '/tmp', Target: '/t', ReadOnly: false, BindOptions: { Propagation: 'rshared' } },
  ]);
  assert.deepEqual(parseMountFlags(['type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770']), [{ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1770 } }]);
  assert.deepEqual(parseMountFlags(['type=volume,"volume-opt=o=size=1m,uid=5",target=/v'])[0]!.VolumeOptions, { DriverConfig: { Options: { o: 'size=1m,uid=5' } } }, 'a quoted field holds its commas');
  assert.equal(parseMountFlags(['type=bind,src=rel,target=/t'])[0]!.Source, resolve('rel'));
});

test('--mount errors are the docker CLI\'s, exit 125', () => {
  const err = (v: string, msg: string) =>
    assert.throws(() => parseMountFlags([v]), (e: Error & { exitCode?: number; code?: number }) => e.message === `invalid argument "${v}" for "--mount" flag: ${msg}`);
  err('src=x', 'target is required');
  err('type=volume,target=/m,foo=bar', "unexpected key 'foo' in 'foo=bar'");
  err('type=volume,target=/m,readonly=maybe', 'invalid value for readonly: maybe');
  err('type=tmpfs,target=/m,volume-nocopy', "cannot mix 'volume-*' options with mount type 'tmpfs'");
  err('type=volume,target=/m,bind-propagation=shared', "cannot mix 'bind-*' options with mount type 'volume'");
  err('type=bind,src=/a,target=/m,tmpfs-size=1', "cannot mix 'tmpfs-*' options with mount type 'bind'");
  err('type=volume,target=/m,bogus', "invalid field 'bogus' must be a key=value pair");
});

test('-v: a host part . or ./x is made absolute as the docker CLI does; other relative parts name volumes', () => {
  assert.equal(absoluteBindSource('.:/x'), `${resolve('.')}:/x`);
  assert.equal(absoluteBindSource('./d:/x:ro'), `${resolve('./d')}:/x:ro`);
  assert.equal(absoluteBindSource('data:/x'), 'data:/x');
  assert.equal(absoluteBindSource('../d:/x'), '../d:/x');
  assert.equal(absoluteBindSource('/abs:/x'), '/abs:/x');
});
