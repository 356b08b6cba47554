import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesSize, ellipsis, humanDuration, humanSize, renderFormatted, shortId, tabwrite } from './format.js';

test('tabwriter: minwidth 10, padding 3, last cell unpadded (docker ps layout)', () => {
  const out = tabwrite('CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tweb\n');
  assert.equal(out, 'CONTAINER ID   IMAGE     NAMES\nabc            busybox   web\n');
  assert.equal(tabwrite(' Version:\t1\n API version:\t2\n', 20, 1), ' Version:           1\n API version:       2\n');
});

test('tabwriter column blocks end at a line without that column', () => {
  assert.equal(tabwrite('a\tb\nplain\nlonger-cell\tc\n', 1, 1), 'a b\nplain\nlonger-cell c\n');
});

test('HumanDuration like go-units', () => {
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(1000), '1 second');
  assert.equal(humanDuration(45_000), '45 seconds');
  assert.equal(humanDuration(90_000), 'About a minute');
  assert.equal(humanDuration(5 * 60_000), '5 minutes');
  assert.equal(humanDuration(65 * 60_000), 'About an hour');
  assert.equal(humanDuration(5 * 3_600_000), '5 hours');
  assert.equal(humanDuration(3 * 86_400_000), '3 days');
  assert.equal(humanDuration(20 * 86_400_000), '2 weeks');
  assert.equal(humanDuration(90 * 86_400_000), '3 months');
  assert.equal(humanDuration(800 * 86_400_000), '2 years');
});

test('sizes, short ids, ellipsis', () => {
  assert.equal(humanSize(1_986_000, 3), '1.99MB');
  assert.equal(humanSize(0, 3), '0B');
  assert.equal(humanSize(1000, 3), '1kB');
  assert.equal(bytesSize(25_276_000_000), '23.54GiB');
  assert.equal(shortId('sha256:02bee75d3498aaaa'), '02bee75d3498');
  assert.equal(ellipsis("sh -c 'echo one; echo two'", 20), "sh -c 'echo one; ec…");
  assert.equal(ellipsis('short', 20), 'short');
});

test('renderFormatted: default table with headers, custom non-table format', () => {
  const rows = [{ ID: 'abc', Names: 'web' }];
  const headers = { ID: 'CONTAINER ID', Names: 'NAMES' };
  assert.equal(renderFormatted(rows, '', 'table {{.ID}}\t{{.Names}}', headers), 'CONTAINER ID   NAMES\nabc            web\n');
  assert.equal(renderFormatted(rows, '{{.Names}}', 'table {{.ID}}', headers), 'web\n');
  assert.equal(renderFormatted(rows, 'table {{.Names}}', 'x', headers), 'NAMES\nweb\n');
});
