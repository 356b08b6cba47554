import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyTar, packDir, entryComponents, type ArchiveFs } from './archive.js';
import { encodeHeader, END_OF_ARCHIVE, paddingFor, parsePax, readTar, type TarHeader } from './tar.js';

const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;

/** A recording fake of the kernel calls (no root needed). */
function fakeFs(): ArchiveFs & { xattrs: Map<string, Buffer>; nodes: string[] } {
  const xattrs = new Map<string, Buffer>();
  const nodes: string[] = [];
  return {
    xattrs,
    nodes,
    mknod(p, mode, major, minor) {
      nodes.push(`${p} ${mode.toString(8)} ${major}:${minor}`);
      fs.writeFileSync(p, '');
    },
    lsetxattr(p, name, value) {
      xattrs.set(`${p}#${name}`, value);
    },
    lgetxattr(p, name) {
      return xattrs.get(`${p}#${name}`) ?? null;
    },
  };
}

type E = Partial<TarHeader> & { name: string; data?: string };
function tarOf(entries: E[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const h: TarHeader = {
      type: 'file',
      mode: 0o644,
      uid,
      gid,
      mtime: 1_700_000_000,
      linkname: '',
      devmajor: 0,
      devminor: 0,
      xattrs: new Map(),
      ...e,
      size: data.length,
    };
    parts.push(encodeHeader(h), data, paddingFor(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), `berth-vfs-archive-${process.pid}-`));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});
let n = 0;
function freshLayer(): { layer: string; outside: string } {
  const base = path.join(tmp, String(n++));
  const layer = path.join(base, 'layer');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(layer, { recursive: true });
  fs.mkdirSync(outside, { recursive: true });
  return { layer, outside };
}

describe('entryComponents', () => {
  it('drops ./ and a leading slash, refuses ..', () => {
    assert.deepEqual(entryComponents('./bin/sh'), ['bin', 'sh']);
    assert.deepEqual(entryComponents('/etc//passwd'), ['etc', 'passwd']);
    assert.deepEqual(entryComponents('./'), []);
    assert.throws(() => entryComponents('../x'), { code: 'BERTH_ARCHIVE_INVALID' });
    assert.throws(() => entryComponents('a/../../x'), { code: 'BERTH_ARCHIVE_INVALID' });
  });
});

describe('applyTar', () => {
  it('extracts files, dirs, symlinks (absolute target verbatim), hard links, modes, times and xattrs', async () => {
    const { layer } = freshLayer();
    const afs = fakeFs();
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x00, 0x80, 0x61]);
    const size = await applyTar(
      layer,
      Readable.from([
        tarOf([
          { name: './', type: 'dir', mode: 0o755 },
          { name: './etc/', type: 'dir', mode: 0o750 },
          { name: './etc/hosts', data: 'hello\n', mode: 0o640 },
          { name: './etc/localtime', type: 'symlink', linkname: '/usr/share/zoneinfo/UTC' },
          { name: './etc/hosts2', type: 'link', linkname: './etc/hosts' },
          { name: './bin/ping', data: 'elf', mode: 0o4755, xattrs: new Map([['security.capability', cap]]) },
          { name: './dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
        ]),
      ]),
      { fs: afs, devices: 'create' },
    );
    assert.equal(size, 9);
    assert.equal(fs.readFileSync(path.join(layer, 'etc/hosts'), 'utf8'), 'hello\n');
    assert.equal(fs.statSync(path.join(layer, 'etc/hosts')).mode & 0o7777, 0o640);
    assert.equal(fs.statSync(path.join(layer, 'etc')).mode & 0o7777, 0o750);
    assert.equal(fs.statSync(path.join(layer, 'etc/hosts')).mtimeMs, 1_700_000_000_000);
    assert.equal(fs.statSync(path.join(layer, 'etc')).mtimeMs, 1_700_000_000_000);
    assert.equal(fs.readlinkSync(path.join(layer, 'etc/localtime')), '/usr/share/zoneinfo/UTC');
    assert.equal(fs.statSync(path.join(layer, 'etc/hosts2')).ino, fs.statSync(path.join(layer, 'etc/hosts')).ino);
    assert.equal(fs.statSync(path.join(layer, 'bin/ping')).mode & 0o7777, 0o4755);
    assert.deepEqual(afs.xattrs.get(`${path.join(layer, 'bin/ping')}#security.capability`), cap);
    assert.deepEqual(afs.nodes, [`${path.join(layer, 'dev/null')} 20666 1:3`]);
  });

  it('refuses ../x and writes nothing outside', async () => {
    const { layer, outside } = freshLayer();
    await assert.rejects(applyTar(layer, Readable.from([tarOf([{ name: '../outside/x', data: 'pwned' }])]), { fs: fakeFs() }), {
      code: 'BERTH_ARCHIVE_INVALID',
    });
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it('keeps an absolute member name inside the layer', async () => {
    const { layer, outside } = freshLayer();
    await applyTar(layer, Readable.from([tarOf([{ name: `${outside}/abs`, data: 'x' }])]), { fs: fakeFs() });
    assert.deepEqual(fs.readdirSync(outside), []);
    assert.equal(fs.readFileSync(path.join(layer, outside, 'abs'), 'utf8'), 'x');
  });

  it('refuses to write through a symlink (symlink-then-write)', async () => {
    const { layer, outside } = freshLayer();
    const tar = tarOf([
      { name: 'lnk', type: 'symlink', linkname: outside },
      { name: 'lnk/pwned', data: 'pwned' },
    ]);
    await assert.rejects(applyTar(layer, Readable.from([tar]), { fs: fakeFs() }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'BERTH_ARCHIVE_INVALID');
      assert.match(err.message, /symlink lnk/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it('refuses a relative symlink-then-write too', async () => {
    const { layer, outside } = freshLayer();
    const tar = tarOf([
      { name: 'up', type: 'symlink', linkname: '../outside' },
      { name: 'up/pwned', data: 'pwned' },
    ]);
    await assert.rejects(applyTar(layer, Readable.from([tar]), { fs: fakeFs() }), { code: 'BERTH_ARCHIVE_INVALID' });
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it('replaces a symlink by a file instead of following it', async () => {
    const { layer, outside } = freshLayer();
    fs.writeFileSync(path.join(outside, 'victim'), 'keep');
    const tar = tarOf([
      { name: 'f', type: 'symlink', linkname: path.join(outside, 'victim') },
      { name: 'f', data: 'new' },
    ]);
    await applyTar(layer, Readable.from([tar]), { fs: fakeFs() });
    assert.equal(fs.readFileSync(path.join(outside, 'victim'), 'utf8'), 'keep');
    assert.equal(fs.lstatSync(path.join(layer, 'f')).isFile(), true);
  });

  it('entries in directories it made: repeats, late directory entries and replacements still work without lstat', async () => {
    const { layer, outside } = freshLayer();
    fs.writeFileSync(path.join(outside, 'victim'), 'keep');
    const tar = tarOf([
      { name: 'x/', type: 'dir', mode: 0o755 },
      { name: 'x/a/b', data: 'b1' },
      { name: 'x/a/', type: 'dir', mode: 0o700 },
      { name: 'x/f', data: 'first' },
      { name: 'x/f', data: 'second' },
      { name: 'x/l', type: 'symlink', linkname: path.join(outside, 'victim') },
      { name: 'x/l', data: 'not through the link' },
      { name: 'y/z/f', data: 'z' },
      { name: 'y/z', data: 'a file now' },
    ]);
    await applyTar(layer, Readable.from([tar]), { fs: fakeFs() });
    assert.equal(fs.readFileSync(path.join(layer, 'x/a/b'), 'utf8'), 'b1');
    assert.equal(fs.statSync(path.join(layer, 'x/a')).mode & 0o777, 0o700);
    assert.equal(fs.readFileSync(path.join(layer, 'x/f'), 'utf8'), 'second');
    assert.equal(fs.lstatSync(path.join(layer, 'x/l')).isFile(), true);
    assert.equal(fs.readFileSync(path.join(outside, 'victim'), 'utf8'), 'keep');
    assert.equal(fs.readFileSync(path.join(layer, 'y/z'), 'utf8'), 'a file now');
  });

  it('refuses hard links that leave the layer', async () => {
    const { layer, outside } = freshLayer();
    fs.writeFileSync(path.join(outside, 'secret'), 's');
    for (const linkname of ['../outside/secret', '../../../../../../etc/passwd']) {
      await assert.rejects(applyTar(layer, Readable.from([tarOf([{ name: 'h', type: 'link', linkname }])]), { fs: fakeFs() }), {
        code: 'BERTH_ARCHIVE_INVALID',
      });
    }
    // through a symlink inside the layer
    const tar = tarOf([
      { name: 'lnk', type: 'symlink', linkname: outside },
      { name: 'h', type: 'link', linkname: 'lnk/secret' },
    ]);
    await assert.rejects(applyTar(layer, Readable.from([tar]), { fs: fakeFs() }), { code: 'BERTH_ARCHIVE_INVALID' });
    // an absolute link name means the layer's own file, which does not exist here
    await assert.rejects(
      applyTar(layer, Readable.from([tarOf([{ name: 'h2', type: 'link', linkname: path.join(outside, 'secret') }])]), { fs: fakeFs() }),
      { code: 'BERTH_ARCHIVE_INVALID' },
    );
    assert.equal(fs.statSync(path.join(outside, 'secret')).nlink, 1);
    assert.equal(fs.existsSync(path.join(layer, 'h')), false);
  });

  it('applies whiteouts and opaque directories to lower content only', async () => {
    const { layer } = freshLayer();
    for (const f of ['a/x', 'a/y', 'b/inner', 'c', 'keep']) {
      fs.mkdirSync(path.dirname(path.join(layer, f)), { recursive: true });
      fs.writeFileSync(path.join(layer, f), 'lower');
    }
    const tar = tarOf([
      { name: 'a/', type: 'dir', mode: 0o755 },
      { name: 'a/.wh..wh..opq' },
      { name: 'a/z', data: 'upper' },
      { name: '.wh.b' },
      { name: 'c', data: 'same layer' },
      { name: '.wh.c' },
      { name: 'nodir/.wh.ghost' },
    ]);
    await applyTar(layer, Readable.from([tar]), { fs: fakeFs() });
    assert.deepEqual(fs.readdirSync(path.join(layer, 'a')), ['z']);
    assert.equal(fs.existsSync(path.join(layer, 'b')), false);
    assert.equal(fs.readFileSync(path.join(layer, 'c'), 'utf8'), 'same layer');
    assert.equal(fs.existsSync(path.join(layer, 'keep')), true);
    assert.equal(fs.existsSync(path.join(layer, 'nodir')), false);
    assert.equal(fs.existsSync(path.join(layer, '.wh.b')), false);
  });

  it('rejects a corrupt header', async () => {
    const { layer } = freshLayer();
    const tar = tarOf([{ name: 'f', data: 'x' }]);
    tar[10] = tar[10]! ^ 0xff;
    await assert.rejects(applyTar(layer, Readable.from([tar]), { fs: fakeFs() }), { code: 'BERTH_ARCHIVE_INVALID' });
  });
});

describe('tar format', () => {
  it('keeps binary pax values as bytes', () => {
    const v = Buffer.from([0xff, 0x00, 0x80, 0x61, 0x62, 0x63]);
    const rec = Buffer.concat([Buffer.from('32 SCHILY.xattr.user.bin='), v, Buffer.from('\n')]);
    assert.equal(rec.length, 32);
    assert.deepEqual(parsePax(rec).get('SCHILY.xattr.user.bin'), v);
  });

  it('round-trips a binary xattr through encodeHeader and readTar', async () => {
    const v = Buffer.from([0xff, 0x00, 0x80, 0x61, 0x62, 0x63]);
    const tar = tarOf([{ name: 'f', data: 'x', xattrs: new Map([['security.capability', v]]) }]);
    const got: Buffer[] = [];
    for await (const e of readTar(Readable.from([tar]))) got.push(e.header.xattrs.get('security.capability')!);
    assert.deepEqual(got, [v]);
  });

  it('reads what GNU tar writes (long names, symlinks, hard links) and GNU tar reads what packDir writes', async () => {
    const { layer: src } = freshLayer();
    const long = `${'d'.repeat(120)}/${'f'.repeat(130)}`;
    fs.mkdirSync(path.join(src, 'd'.repeat(120)));
    fs.writeFileSync(path.join(src, long), 'long');
    fs.symlinkSync(`/${'t'.repeat(150)}`, path.join(src, 'sl'));
    fs.writeFileSync(path.join(src, 'h1'), 'hard');
    fs.linkSync(path.join(src, 'h1'), path.join(src, 'h2'));
    const gnu = execFileSync('tar', ['-C', src, '--sort=name', '-cf', '-', '.']);
    const names: string[] = [];
    for await (const e of readTar(Readable.from([gnu]))) names.push(`${e.header.type} ${e.header.name} ${e.header.linkname}`);
    assert.ok(names.includes(`file ./${long} `));
    assert.ok(names.includes(`symlink ./sl /${'t'.repeat(150)}`));
    assert.ok(names.includes('link ./h2 ./h1'));

    const chunks: Buffer[] = [];
    for await (const c of packDir(src, fakeFs())) chunks.push(c as Buffer);
    const { layer: dst } = freshLayer();
    execFileSync('tar', ['-C', dst, '-xf', '-'], { input: Buffer.concat(chunks) });
    assert.equal(fs.readFileSync(path.join(dst, long), 'utf8'), 'long');
    assert.equal(fs.readlinkSync(path.join(dst, 'sl')), `/${'t'.repeat(150)}`);
    assert.equal(fs.statSync(path.join(dst, 'h2')).ino, fs.statSync(path.join(dst, 'h1')).ino);
    const listing = execFileSync('tar', ['-tf', '-'], { input: Buffer.concat(chunks) }).toString().split('\n');
    assert.equal(listing[0], `${'d'.repeat(120)}/`);
  });
});

describe('applyTar with overlay whiteouts', () => {
  it('makes .wh.x a 0/0 char device x and .wh..wh..opq the opaque xattr, creating missing parents', async () => {
    const { layer } = freshLayer();
    const afs = fakeFs();
    await applyTar(
      layer,
      Readable.from([
        tarOf([
          { name: 'a/', type: 'dir', mode: 0o755 },
          { name: 'a/.wh.gone', mode: 0o600 },
          { name: 'b/', type: 'dir', mode: 0o700 },
          { name: 'b/.wh..wh..opq', mode: 0o700 },
          { name: 'b/new', data: 'n' },
          { name: 'deep/er/.wh.x' },
          { name: 'c/.wh..wh.plnk' },
        ]),
      ]),
      { fs: afs, whiteoutFormat: 'overlay' },
    );
    assert.deepEqual(afs.nodes, [`${path.join(layer, 'a/gone')} 20000 0:0`, `${path.join(layer, 'deep/er/x')} 20000 0:0`]);
    assert.deepEqual(afs.xattrs.get(`${path.join(layer, 'b')}#trusted.overlay.opaque`), Buffer.from('y'));
    assert.equal(fs.readFileSync(path.join(layer, 'b/new'), 'utf8'), 'n');
    assert.equal(fs.existsSync(path.join(layer, 'a/.wh.gone')), false);
    assert.equal(fs.existsSync(path.join(layer, 'b/.wh..wh..opq')), false);
    // other .wh..wh. metadata is dropped, its directory still made
    assert.deepEqual(fs.readdirSync(path.join(layer, 'c')), []);
  });
});
