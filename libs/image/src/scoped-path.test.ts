import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { archiveContainerPath, extractToContainer, statContainerPath } from './container-archive.js';
import { pinDir, resolveInRoot } from './scoped-path.js';

const noFs = {
  mknod: () => assert.fail('mknod'),
  lsetxattr: () => undefined,
  lgetxattr: () => null,
};

/** A tar with one regular file. */
function oneFileTar(name: string, content: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(content.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\x0000', 257, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const body = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  body.write(content);
  return Buffer.concat([h, body, Buffer.alloc(1024)]);
}

describe('paths resolved inside a container root', () => {
  let top: string;
  let root: string;
  let outside: string;
  before(async () => {
    top = await fs.mkdtemp(path.join(tmpdir(), `berth-scoped-${process.pid}-`));
    root = path.join(top, 'rootfs');
    outside = path.join(top, 'host-etc');
    await fs.mkdir(path.join(root, 'etc'), { recursive: true });
    await fs.mkdir(path.join(root, 'tmp'), { recursive: true });
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, 'shadow'), 'host secret');
    await fs.writeFile(path.join(root, 'etc', 'shadow'), 'container shadow');
    await fs.symlink('/etc/shadow', path.join(root, 'tmp', 'abs-link'));
    await fs.symlink('/', path.join(root, 'tmp', 'to-root'));
    await fs.symlink('../../../../../../..', path.join(root, 'tmp', 'up'));
    await fs.symlink(outside, path.join(root, 'tmp', 'host-dir'));
    await fs.symlink('loop2', path.join(root, 'tmp', 'loop1'));
    await fs.symlink('loop1', path.join(root, 'tmp', 'loop2'));
  });
  after(async () => {
    await fs.rm(top, { recursive: true, force: true });
  });

  it('stops `..` at the root', async () => {
    assert.equal(await resolveInRoot(root, '../../etc'), path.join(root, 'etc'));
    assert.equal(await resolveInRoot(root, '/tmp/../../../../etc/shadow'), path.join(root, 'etc', 'shadow'));
  });

  it('re-roots absolute symlink targets, relative ones climbing past the root', async () => {
    assert.equal(await resolveInRoot(root, '/tmp/abs-link', { followFinal: true }), path.join(root, 'etc', 'shadow'));
    assert.equal(await resolveInRoot(root, '/tmp/to-root/etc'), path.join(root, 'etc'));
    assert.equal(await resolveInRoot(root, '/tmp/up/etc/shadow'), path.join(root, 'etc', 'shadow'));
    // A link to a host path names that path inside the container.
    assert.equal(await resolveInRoot(root, '/tmp/host-dir/shadow'), path.join(root, outside, 'shadow'));
  });

  it('keeps the last component unless followed or ended by / or /.', async () => {
    assert.equal(await resolveInRoot(root, '/tmp/abs-link'), path.join(root, 'tmp', 'abs-link'));
    assert.equal(await resolveInRoot(root, '/tmp/to-root/'), root);
    assert.equal(await resolveInRoot(root, '/tmp/to-root/.'), root);
  });

  it('refuses symlink loops', async () => {
    await assert.rejects(resolveInRoot(root, '/tmp/loop1/x'), /too many levels of symbolic links/);
  });

  it('stat of a symlink gives its target inside the container', async () => {
    const { stat } = await statContainerPath(root, '/tmp/abs-link', 'c1');
    assert.equal(stat.name, 'abs-link');
    assert.equal(stat.linkTarget, '/etc/shadow');
    await assert.rejects(statContainerPath(root, '/nope', 'c1'), /Could not find the file \/nope in container c1/);
  });

  it('reads the container file, never the host one, through an absolute symlink dir', async () => {
    const { tar } = await archiveContainerPath(root, '/tmp/to-root/etc/shadow', 'c1', async () => undefined);
    const bytes = Buffer.concat(await tar.toArray());
    assert.match(bytes.toString('latin1'), /container shadow/);
    assert.doesNotMatch(bytes.toString('latin1'), /host secret/);
  });

  it('writes through a symlinked destination dir land inside the root', async () => {
    await extractToContainer(root, '/tmp/to-root/etc', 'c1', Readable.from([oneFileTar('new.txt', 'hello')]), { fs: noFs, noOverwriteDirNonDir: true });
    assert.equal(await fs.readFile(path.join(root, 'etc', 'new.txt'), 'utf8'), 'hello');
    // A destination naming the host dir through a link is that path inside the root: missing there.
    await assert.rejects(
      extractToContainer(root, '/tmp/host-dir', 'c1', Readable.from([oneFileTar('shadow', 'pwned')]), { fs: noFs, noOverwriteDirNonDir: true }),
      /Could not find the file/,
    );
    assert.equal(await fs.readFile(path.join(outside, 'shadow'), 'utf8'), 'host secret');
  });

  it('a member named like a symlink to a host file replaces the link, never writes the target', async () => {
    await fs.symlink(path.join(outside, 'shadow'), path.join(root, 'tmp', 'evil'));
    await extractToContainer(root, '/tmp', 'c1', Readable.from([oneFileTar('evil', 'pwned')]), { fs: noFs, noOverwriteDirNonDir: true });
    assert.equal(await fs.readFile(path.join(outside, 'shadow'), 'utf8'), 'host secret');
    assert.equal(await fs.readFile(path.join(root, 'tmp', 'evil'), 'utf8'), 'pwned');
  });

  it('noOverwriteDirNonDir refuses a file over a directory', async () => {
    await assert.rejects(
      extractToContainer(root, '/', 'c1', Readable.from([oneFileTar('etc', 'x')]), { fs: noFs, noOverwriteDirNonDir: true }),
      /cannot overwrite directory/,
    );
    assert.ok((await fs.lstat(path.join(root, 'etc'))).isDirectory());
  });

  it('a directory swapped for a symlink after resolution is caught when pinned', async () => {
    const victim = path.join(root, 'swap');
    await fs.mkdir(victim);
    const resolved = await resolveInRoot(root, '/swap/', { followFinal: true });
    // The swap: between the check and the use, the directory becomes a link out of the root.
    await fs.rm(victim, { recursive: true });
    await fs.symlink(outside, victim);
    await assert.rejects(pinDir(root, resolved), /not a directory/);
    // An intermediate component swapped: the opened directory lies outside the root.
    await fs.rm(victim);
    await fs.mkdir(path.join(victim, 'sub'), { recursive: true });
    const deep = await resolveInRoot(root, '/swap/sub/', { followFinal: true });
    await fs.rm(victim, { recursive: true });
    await fs.mkdir(path.join(outside, 'sub'), { recursive: true });
    await fs.symlink(outside, victim);
    await assert.rejects(pinDir(root, deep), /escaped the container's root/);
  });
});
