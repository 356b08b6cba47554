import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isZstd, zstdDecompress } from './zstd.js';

const have = (() => {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = have ? false : 'the zstd executable (Debian package zstd) is not installed';

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return Buffer.concat(out);
}
function chunks(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

describe('zstd', () => {
  it('detects the frame magic', () => {
    assert.equal(isZstd(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), true);
    assert.equal(isZstd(Buffer.from([0x1f, 0x8b, 8, 0])), false);
    assert.equal(isZstd(Buffer.from([0x28, 0xb5])), false);
  });

  it('decompresses a multi-MiB stream through the executable, byte-identical', { skip }, async () => {
    const plain = Buffer.concat([randomBytes(3 << 20), Buffer.alloc(5 << 20, 0x61)]);
    const z = execFileSync('zstd', ['-c', '-q', '-3'], { input: plain, maxBuffer: 64 << 20 });
    assert.equal(isZstd(z), true);
    const out = await collect(zstdDecompress(Readable.from(chunks(z, 100_000)), 'layer 1'));
    assert.equal(out.length, plain.length);
    assert.ok(out.equals(plain));
  });

  it('says corrupt zstd data as BERTH_ARCHIVE_INVALID', { skip }, async () => {
    const z = execFileSync('zstd', ['-c', '-q'], { input: randomBytes(200_000) });
    z[z.length >> 1] ^= 0xff;
    z[(z.length >> 1) + 1] ^= 0xff;
    const bad = Buffer.concat([z.subarray(0, 4), randomBytes(5000)]);
    await assert.rejects(collect(zstdDecompress(Readable.from([bad]), 'layer 2')), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'BERTH_ARCHIVE_INVALID');
      assert.match(err.message, /^layer 2: corrupt zstd data/);
      return true;
    });
    // cut short
    await assert.rejects(collect(zstdDecompress(Readable.from([z.subarray(0, 1000)]), 'layer 3')), { code: 'BERTH_ARCHIVE_INVALID' });
  });

  it('names the missing executable', async () => {
    await assert.rejects(collect(zstdDecompress(Readable.from([Buffer.from([0x28, 0xb5, 0x2f, 0xfd])]), 'layer 4', { bin: '/nonexistent/zstd' })), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'BERTH_NATIVE_UNAVAILABLE');
      assert.match(err.message, /zstd executable \(Debian package zstd\)/);
      return true;
    });
  });

  it("passes the source's own error through and kills the child", { skip }, async () => {
    const z = execFileSync('zstd', ['-c', '-q'], { input: randomBytes(1 << 20), maxBuffer: 64 << 20 });
    const src = (async function* () {
      yield z.subarray(0, 4096);
      throw new Error('digest mismatch at the end');
    })();
    await assert.rejects(collect(zstdDecompress(src, 'layer 5')), /digest mismatch at the end/);
  });

  it('stopping early kills the child (no process left)', { skip }, async () => {
    const z = execFileSync('zstd', ['-c', '-q'], { input: Buffer.alloc(32 << 20), maxBuffer: 64 << 20 });
    const before = execFileSync('sh', ['-c', `pgrep -P ${process.pid} -x zstd || true`]).toString().trim();
    for await (const c of zstdDecompress(Readable.from(chunks(z, 1000)), 'layer 6')) {
      assert.ok(c.length > 0);
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
    const after = execFileSync('sh', ['-c', `pgrep -P ${process.pid} -x zstd || true`]).toString().trim();
    assert.equal(after, before);
  });
});
