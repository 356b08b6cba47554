import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forEachLine } from './lines.js';

test('forEachLine: lines across chunks, a character split between chunks, the unterminated last line', async () => {
  const euro = Buffer.from('€');
  const chunks = [Buffer.from('one\ntw'), Buffer.concat([Buffer.from('o '), euro.subarray(0, 1)]), Buffer.concat([euro.subarray(1), Buffer.from('\n\nlast')])];
  const seen: string[] = [];
  await forEachLine(chunks, (l) => seen.push(l));
  assert.deepEqual(seen, ['one', 'two €', '', 'last']);
  const strings: string[] = [];
  await forEachLine(['a\nb\n'], (l) => strings.push(l));
  assert.deepEqual(strings, ['a', 'b', '']);
});
