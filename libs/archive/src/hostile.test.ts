/**
 * Hostile layer tarballs, built by hand: every case asserts that nothing outside the layer
 * changed (a canary tree beside the layer is snapshotted before and compared after), and that
 * the archive is refused with BERTH_ARCHIVE_INVALID or its trick neutralised inside the layer.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyTar, type ArchiveFs, type WhiteoutFormat } from './archive.js';
import { encodeHeader, END_OF_ARCHIVE, MAX_EXTENDED_HEADER, paddingFor, type TarHeader } from './tar.js';

const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;

function fakeFs(): ArchiveFs & { nodes: string[] } {
  const nodes: string[] = [];
  return {
    nodes,
    mknod(p, mode, major, minor) {
      nodes.push(`${p} ${mode.toString(8)} ${major}:${minor}`);
      fs.writeFileSync(p, '');
    },
    lsetxattr() {},
    lgetxattr() {
      return null;
    },
  };
}

type E = Partial<TarHeader> & { name: string; data?: string };
function entry(e: E): Buffer {
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
  return Buffer.concat([encodeHeader(h), data, paddingFor(data.length)]);
}
const tarOf = (entries: E[]): Buffer => Buffer.concat([...entries.map(entry), END_OF_ARCHIVE]);

/** A raw ustar header block with any flag and any size field (octal, or base-256 when given a bigint). */
function rawHeader(name: string, flag: string, size: number | bigint): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  b.write('0000644\0', 100, 'ascii');
  b.write('0000000\0', 108, 'ascii');
  b.write('0000000\0', 116, 'ascii');
  if (typeof size === 'bigint') {
    let v = size;
    for (let i = 11; i >= 1; i--) {
      b[124 + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    b[124] = 0x80 | Number(v & 0x7fn);
  } else b.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  b.write('14543260000\0', 136, 'ascii');
  b.write(flag, 156, 'latin1');
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  b.fill(32, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return b;
}
function paxData(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.from(`${len}${body}`);
}
function paxEntry(records: Buffer): Buffer {
  return Buffer.concat([rawHeader('PaxHeaders/x', 'x', records.length), records, paddingFor(records.length)]);
}

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), `berth-hostile-${process.pid}-`));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
/** A fresh layer dir and, beside it, `outside/` holding the canaries. */
function fresh(): { layer: string; outside: string; snapshot: () => string } {
  const base = path.join(tmp, String(n++));
  const layer = path.join(base, 'layer');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(layer, { recursive: true });
  fs.mkdirSync(path.join(outside, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'canary'), 'canary\n', { mode: 0o644 });
  fs.writeFileSync(path.join(outside, 'sub/canary'), 'inner canary\n', { mode: 0o600 });
  const snapshot = (): string => {
    const lines: string[] = [];
    const walk = (d: string): void => {
      for (const name of fs.readdirSync(d).sort()) {
        const p = path.join(d, name);
        const st = fs.lstatSync(p);
        const what = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : fs.readFileSync(p, 'utf8');
        lines.push(`${path.relative(outside, p)} ${st.mode.toString(8)} ${st.uid}:${st.gid} nlink=${st.nlink} ${st.mtimeMs} ${JSON.stringify(what)}`);
        if (st.isDirectory()) walk(p);
      }
    };
    const st = fs.lstatSync(outside);
    lines.push(`. ${st.mode.toString(8)} ${st.mtimeMs}`);
    walk(outside);
    return lines.join('\n');
  };
  return { layer, outside, snapshot };
}

/** Applies `tar`, expects BERTH_ARCHIVE_INVALID (message matching `why` if given) and an untouched outside. */
async function refused(
  tar: Buffer | AsyncIterable<Buffer>,
  why?: RegExp,
  opts: { whiteoutFormat?: WhiteoutFormat; devices?: 'create' | 'skip' | 'refuse' } = {},
): Promise<string> {
  const { layer, snapshot } = fresh();
  const before = snapshot();
  const src = Buffer.isBuffer(tar) ? Readable.from([tar]) : tar;
  await assert.rejects(applyTar(layer, src, { fs: fakeFs(), ...opts }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'BERTH_ARCHIVE_INVALID', err.message);
    if (why !== undefined) assert.match(err.message, why);
    return true;
  });
  assert.equal(snapshot(), before, 'nothing outside the layer changed');
  return layer;
}

describe('hostile layer tarballs: names', () => {
  it('refuses .. in plain, ustar-prefix, pax and GNU long names', async () => {
    await refused(tarOf([{ name: '../outside/canary', data: 'pwned' }]), /\.\./);
    await refused(tarOf([{ name: 'a/b/../../../outside/canary', data: 'pwned' }]), /\.\./);
    // pax path (the long-name form encodeHeader writes)
    await refused(tarOf([{ name: `${'d/'.repeat(60)}${'../'.repeat(61)}outside/canary`, data: 'pwned' }]), /\.\./);
    const gnuName = Buffer.from('../outside/canary\0');
    await refused(
      Buffer.concat([rawHeader('././@LongLink', 'L', gnuName.length), gnuName, paddingFor(gnuName.length), entry({ name: 'short', data: 'pwned' }), END_OF_ARCHIVE]),
      /\.\./,
    );
    // a .. hidden in the link name of a symlink is fine (symlinks are stored verbatim), but not in a hard link's
    await refused(tarOf([{ name: 'h', type: 'link', linkname: '../outside/canary' }]), /\.\./);
  });

  it('neutralises absolute names: they land inside the layer', async () => {
    const { layer, outside, snapshot } = fresh();
    const before = snapshot();
    await applyTar(layer, Readable.from([tarOf([{ name: path.join(outside, 'canary'), data: 'pwned' }, { name: '/etc/evil', data: 'x' }])]), {
      fs: fakeFs(),
    });
    assert.equal(snapshot(), before);
    assert.equal(fs.readFileSync(path.join(layer, outside, 'canary'), 'utf8'), 'pwned');
    assert.equal(fs.readFileSync(path.join(layer, 'etc/evil'), 'utf8'), 'x');
  });

  it('refuses names no filesystem takes (component over 255 bytes, path over PATH_MAX) as the archive\'s fault', async () => {
    await refused(tarOf([{ name: 'x'.repeat(300), data: 'long' }]), /name too long/);
    await refused(tarOf([{ name: `${'d'.repeat(200)}/`.repeat(30) + 'f', data: 'deep' }]), /name too long/);
  });

  it('refuses a NUL byte smuggled into a pax path', async () => {
    await refused(Buffer.concat([paxEntry(paxData('path', 'ok\0/../../outside/canary')), entry({ name: 'x', data: 'pwned' }), END_OF_ARCHIVE]), /NUL/);
  });
});

describe('hostile layer tarballs: symlinks and hard links', () => {
  it('refuses writes through a symlink made earlier in the same archive (absolute and relative targets)', async () => {
    const { outside } = fresh();
    for (const target of [outside, '../outside', '../../../../../../../../' + outside.slice(1)]) {
      await refused(tarOf([{ name: 'lnk', type: 'symlink', linkname: target }, { name: 'lnk/canary', data: 'pwned' }]), /symlink lnk/);
      await refused(tarOf([{ name: 'lnk', type: 'symlink', linkname: target }, { name: 'lnk/sub/', type: 'dir', mode: 0o777 }]), /symlink lnk/);
      await refused(tarOf([{ name: 'lnk', type: 'symlink', linkname: target }, { name: 'lnk/sub/canary', data: 'pwned' }]), /symlink lnk/);
    }
  });

  it('refuses writes through a symlinked directory deeper in the path', async () => {
    await refused(
      tarOf([
        { name: 'a/', type: 'dir', mode: 0o755 },
        { name: 'a/b', type: 'symlink', linkname: '../../outside' },
        { name: 'a/b/canary', data: 'pwned' },
      ]),
      /symlink a\/b/,
    );
  });

  it('refuses a symlink loop (a -> b, b -> a, then a/x) without following it', async () => {
    const layer = await refused(
      tarOf([
        { name: 'a', type: 'symlink', linkname: 'b' },
        { name: 'b', type: 'symlink', linkname: 'a' },
        { name: 'a/x', data: 'pwned' },
      ]),
      /symlink a/,
    );
    assert.deepEqual(fs.readdirSync(layer).sort(), ['a', 'b']);
    // a self-loop too
    await refused(tarOf([{ name: 's', type: 'symlink', linkname: 's' }, { name: 's/x', data: 'pwned' }]), /symlink s/);
  });

  it('replaces a symlink (or a dir entry over one) instead of following it', async () => {
    const { layer, outside, snapshot } = fresh();
    const before = snapshot();
    await applyTar(
      layer,
      Readable.from([
        tarOf([
          { name: 'f', type: 'symlink', linkname: path.join(outside, 'canary') },
          { name: 'f', data: 'new', mode: 0o777 },
          { name: 'd', type: 'symlink', linkname: outside },
          { name: 'd/', type: 'dir', mode: 0o777 },
          { name: 'd/canary', data: 'inside' },
        ]),
      ]),
      { fs: fakeFs() },
    );
    assert.equal(snapshot(), before);
    assert.equal(fs.lstatSync(path.join(layer, 'f')).isFile(), true);
    assert.equal(fs.lstatSync(path.join(layer, 'd')).isDirectory(), true);
    assert.equal(fs.readFileSync(path.join(layer, 'd/canary'), 'utf8'), 'inside');
  });

  it('refuses hard links out of the layer: .., through a symlink, absolute to a host path, to a missing member', async () => {
    const { outside } = fresh();
    await refused(tarOf([{ name: 'h', type: 'link', linkname: '../../outside/canary' }]));
    await refused(tarOf([{ name: 'lnk', type: 'symlink', linkname: '../outside' }, { name: 'h', type: 'link', linkname: 'lnk/canary' }]), /symlink lnk/);
    await refused(tarOf([{ name: 'lnk', type: 'symlink', linkname: outside }, { name: 'h', type: 'link', linkname: 'lnk/sub/canary' }]), /symlink lnk/);
    await refused(tarOf([{ name: 'h', type: 'link', linkname: path.join(outside, 'canary') }]), /(not|does not exist) in the layer/);
  });

  it('a hard link to a symlink links the symlink itself; a later file of that name does not write through it', async () => {
    const { layer, outside, snapshot } = fresh();
    const before = snapshot();
    await applyTar(
      layer,
      Readable.from([
        tarOf([
          { name: 's', type: 'symlink', linkname: path.join(outside, 'canary') },
          { name: 'h', type: 'link', linkname: 's' },
          { name: 'h', data: 'pwned' },
        ]),
      ]),
      { fs: fakeFs() },
    );
    assert.equal(snapshot(), before);
    assert.equal(fs.readFileSync(path.join(layer, 'h'), 'utf8'), 'pwned');
    assert.equal(fs.lstatSync(path.join(layer, 's')).isSymbolicLink(), true);
  });

  it('whiteouts never reach through a symlink (apply and overlay formats)', async () => {
    for (const format of ['apply', 'overlay'] as const) {
      await refused(tarOf([{ name: 'lnk', type: 'symlink', linkname: '../outside' }, { name: 'lnk/.wh.canary' }]), /symlink lnk/, { whiteoutFormat: format });
      await refused(tarOf([{ name: 'lnk', type: 'symlink', linkname: '../outside' }, { name: 'lnk/.wh..wh..opq' }]), /symlink lnk/, { whiteoutFormat: format });
      await refused(tarOf([{ name: 'lnk', type: 'symlink', linkname: '../outside' }, { name: 'lnk/sub/.wh.canary' }]), /symlink lnk/, { whiteoutFormat: format });
    }
  });
});

describe('hostile layer tarballs: sizes, truncation, checksums', () => {
  /** A stream of `head` then endless zero chunks, counting what was pulled from it. */
  function endless(head: Buffer): { stream: Readable; pulled: () => number } {
    let pulled = 0;
    const zeros = Buffer.alloc(64 * 1024);
    const gen = (async function* () {
      pulled += head.length;
      yield head;
      for (;;) {
        pulled += zeros.length;
        yield zeros;
      }
    })();
    return { stream: Readable.from(gen), pulled: () => pulled };
  }

  for (const flag of ['x', 'g', 'L', 'K']) {
    it(`refuses a ${flag} extended header declaring 1 GiB before reading it`, async () => {
      const { stream, pulled } = endless(rawHeader('././@LongLink', flag, 1 << 30));
      const rssBefore = process.memoryUsage().rss;
      await refused(stream, /extended header of 1073741824 bytes/);
      assert.ok(pulled() < 1 << 20, `read ${pulled()} bytes of the stream`);
      assert.ok(process.memoryUsage().rss - rssBefore < 256 << 20);
    });
  }

  it(`accepts an extended header up to ${MAX_EXTENDED_HEADER} bytes, refuses one byte more`, async () => {
    const ok = paxData('comment', 'c'.repeat(MAX_EXTENDED_HEADER - 20));
    const padded = Buffer.concat([ok, paxData('comment', 'x'.repeat(Math.max(0, MAX_EXTENDED_HEADER - ok.length - 20)))]);
    const exact = padded.length <= MAX_EXTENDED_HEADER ? padded : ok;
    const { layer } = fresh();
    await applyTar(layer, Readable.from([Buffer.concat([paxEntry(exact), entry({ name: 'f', data: 'ok' }), END_OF_ARCHIVE])]), { fs: fakeFs() });
    assert.equal(fs.readFileSync(path.join(layer, 'f'), 'utf8'), 'ok');
    const big = paxData('comment', 'c'.repeat(MAX_EXTENDED_HEADER));
    await refused(Buffer.concat([paxEntry(big), entry({ name: 'f', data: 'ok' }), END_OF_ARCHIVE]), /extended header/);
  });

  it('refuses many extended headers that add up beyond the limit (no unbounded pax accumulation)', async () => {
    const rec = paxEntry(paxData('comment', 'c'.repeat(300 << 10)));
    const keyed = (i: number): Buffer => paxEntry(paxData(`BERTH.k${i}`, 'v'.repeat(300 << 10)));
    await refused(Buffer.concat([keyed(1), keyed(2), keyed(3), keyed(4), entry({ name: 'f', data: 'x' }), END_OF_ARCHIVE]), /add up to more than/);
    const globalHeader = (i: number): Buffer => {
      const data = paxData(`BERTH.g${i}`, 'v'.repeat(300 << 10));
      return Buffer.concat([rawHeader('PaxHeaders/g', 'g', data.length), data, paddingFor(data.length)]);
    };
    const entries = [1, 2, 3, 4].map((i) => Buffer.concat([globalHeader(i), entry({ name: `f${i}`, data: 'x' })]));
    await refused(Buffer.concat([...entries, END_OF_ARCHIVE]), /add up to more than/);
    // ...but headers for separate entries each get the full allowance
    const { layer } = fresh();
    await applyTar(layer, Readable.from([Buffer.concat([rec, entry({ name: 'a', data: '1' }), rec, entry({ name: 'b', data: '2' }), rec, entry({ name: 'c', data: '3' }), rec, entry({ name: 'd', data: '4' }), END_OF_ARCHIVE])]), { fs: fakeFs() });
    assert.deepEqual(fs.readdirSync(layer).sort(), ['a', 'b', 'c', 'd']);
  });

  it('refuses a size field beyond the rest of the stream (file cut short)', async () => {
    const head = rawHeader('f', '0', 10 << 20);
    await refused(Buffer.concat([head, Buffer.alloc(1024, 0x61)]), /unexpected end of archive/);
  });

  it('refuses absurd sizes: base-256 beyond 2^53, a pax size that is not a number', async () => {
    await refused(Buffer.concat([rawHeader('f', '0', 1n << 80n), END_OF_ARCHIVE]), /bad size field/);
    for (const v of ['-1', 'NaN', '1e9', '99999999999999999999', '']) {
      await refused(Buffer.concat([paxEntry(paxData('size', v)), entry({ name: 'f', data: 'x' }), END_OF_ARCHIVE]), /bad pax size/);
    }
    await refused(Buffer.concat([paxEntry(paxData('uid', '-5')), entry({ name: 'f', data: 'x' }), END_OF_ARCHIVE]), /bad pax uid/);
  });

  it('refuses truncated archives: mid-header, mid-extended-header, mid-entry', async () => {
    const whole = tarOf([{ name: 'a', data: 'x'.repeat(3000) }, { name: 'b', data: 'y' }]);
    await refused(whole.subarray(0, 300), /truncated header/);
    await refused(whole.subarray(0, 512 + 1000), /unexpected end/);
    const pax = Buffer.concat([paxEntry(paxData('path', 'long/'.repeat(40))), entry({ name: 'f', data: 'x' })]);
    await refused(pax.subarray(0, 600), /truncated extended header/);
  });

  it('refuses bad checksums (header byte flipped, checksum field blank)', async () => {
    const t = tarOf([{ name: 'f', data: 'x' }]);
    t[0] = 0x67;
    await refused(t, /checksum/);
    const u = tarOf([{ name: 'f', data: 'x' }]);
    u.fill(0x20, 148, 156);
    await refused(u, /checksum/);
  });
});

describe('hostile layer tarballs: device nodes', () => {
  const devs: E[] = [
    { name: 'dev/', type: 'dir', mode: 0o755 },
    { name: 'dev/sda', type: 'block', mode: 0o666, devmajor: 8, devminor: 0 },
    { name: 'dev/mem', type: 'char', mode: 0o666, devmajor: 1, devminor: 1 },
    { name: 'dev/fifo', type: 'fifo', mode: 0o600 },
  ];
  it('refuses device nodes when the caller says so', async () => {
    await refused(tarOf(devs), /block device nodes are not allowed/, { devices: 'refuse' });
  });

  it('skips device nodes (rootless) but still makes fifos; creates them when allowed', async () => {
    const { layer } = fresh();
    const afs = fakeFs();
    await applyTar(layer, Readable.from([tarOf(devs)]), { fs: afs, devices: 'skip' });
    assert.deepEqual(fs.readdirSync(path.join(layer, 'dev')), ['fifo']);
    assert.deepEqual(afs.nodes, [`${path.join(layer, 'dev/fifo')} 10600 0:0`]);
    const b = fresh();
    const bfs = fakeFs();
    await applyTar(b.layer, Readable.from([tarOf(devs)]), { fs: bfs, devices: 'create' });
    assert.equal(bfs.nodes.length, 3);
  });
});

describe('hostile layer tarballs: whiteouts naming . or ..', () => {
  for (const format of ['apply', 'overlay'] as const) {
    it(`refuses .wh.. and .wh... (${format}): they would remove the layer or everything beside it`, async () => {
      for (const name of ['.wh...', '.wh..', 'sub/.wh...', 'sub/.wh..']) {
        const layer = await refused(tarOf([{ name: 'sub/', type: 'dir' }, { name, data: '' }]), /invalid whiteout/, { whiteoutFormat: format });
        assert.ok(fs.existsSync(layer), `the layer root survives ${name}`);
      }
    });
  }
});
