import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { encodeHeader, readTar, END_OF_ARCHIVE, type TarHeader } from './tar.js';

const header = (over: Partial<TarHeader> = {}): Buffer =>
  encodeHeader({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map(), ...over });

/** Writes `text` into a header field (NUL-filled after it) and recomputes the checksum. */
function setField(h: Buffer, off: number, len: number, text: string): Buffer {
  const b = Buffer.from(h);
  b.fill(0, off, off + len);
  b.write(text, off, len, 'latin1');
  b.fill(32, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

async function first(h: Buffer): Promise<TarHeader> {
  for await (const { header: got } of readTar(Readable.from([Buffer.concat([h, END_OF_ARCHIVE])]))) return got;
  throw new Error('no entry');
}

test('numeric fields: octal digits with blanks around them, up to the first NUL; empty is 0', async () => {
  const cases: [string, number][] = [
    ['0000123\0', 0o123],
    [' 123 \0', 0o123],
    ['\t17\n', 0o17],
    ['123\0 999', 0o123],
    ['', 0],
    ['        ', 0],
    ['7777777', 0o7777777],
  ];
  for (const [text, want] of cases) assert.equal((await first(setField(header(), 108, 8, text))).uid, want, JSON.stringify(text));
  assert.equal((await first(setField(header(), 136, 12, '14000000000 '))).mtime, 0o14000000000);
});

test('numeric fields with a non-octal character are refused, naming the field text', async () => {
  for (const text of ['128', '1 2', '0x10', '-1', '12a'])
    await assert.rejects(first(setField(header(), 108, 8, text)), (err: unknown) => {
      assert.match((err as Error).message, /^bad numeric field /);
      assert.ok((err as Error).message.includes(JSON.stringify(text.trim())), (err as Error).message);
      return true;
    });
});
