import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Demuxer } from '@berth/api';
import { readLog, type LogSelect } from './logs.js';

const lines = [
  { log: 'one\n', stream: 'stdout', time: '2024-01-01T00:00:01.000000001Z' },
  { log: 'err\n', stream: 'stderr', time: '2024-01-01T00:00:02.5Z' },
  { log: 'two\n', stream: 'stdout', time: '2024-01-01T00:00:03.000000003Z' },
  { log: 'three\n', stream: 'stdout', time: '2024-01-01T00:00:04Z' },
];

function setup(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'engine-logs-'));
  const file = join(dir, 'c-json.log');
  writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return { dir, file };
}

const sel = (over: Partial<LogSelect> = {}): LogSelect => ({ stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tty: false, ...over });

async function collect(r: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function demux(buf: Buffer): [number, string][] {
  const out: [number, string][] = [];
  const d = new Demuxer((t, p) => out.push([t, p.toString()]));
  d.push(buf);
  return out;
}

const noFollow = { follow: false, running: () => false, stopped: Promise.resolve() };

test('all lines framed per stream', async () => {
  const { dir, file } = setup();
  try {
    assert.deepEqual(demux(await collect(readLog(file, sel(), 'all', noFollow))), [[1, 'one\n'], [2, 'err\n'], [1, 'two\n'], [1, 'three\n']]);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('stdout only, tail 2, timestamps with 9 digits, raw for tty', async () => {
  const { dir, file } = setup();
  try {
    const out = await collect(readLog(file, sel({ stderr: false, timestamps: true, tty: true }), 2, noFollow));
    assert.equal(out.toString(), '2024-01-01T00:00:03.000000003Z two\n2024-01-01T00:00:04.000000000Z three\n');
    assert.equal((await collect(readLog(file, sel(), 0, noFollow))).length, 0);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('details: each line after its attributes and a space (none here: a lone space), timestamps first', async () => {
  const { dir, file } = setup();
  try {
    const out = await collect(readLog(file, sel({ stderr: false, details: true, tty: true }), 2, noFollow));
    assert.equal(out.toString(), ' two\n three\n');
    const both = await collect(readLog(file, sel({ stderr: false, details: true, timestamps: true, tty: true }), 1, noFollow));
    assert.equal(both.toString(), '2024-01-01T00:00:04.000000000Z  three\n');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('since and until bound by time', async () => {
  const { dir, file } = setup();
  try {
    const since = Date.parse('2024-01-01T00:00:02Z') / 1000;
    const until = Date.parse('2024-01-01T00:00:03.5Z') / 1000;
    assert.deepEqual(demux(await collect(readLog(file, sel({ since, until }), 'all', noFollow))).map((x) => x[1]), ['err\n', 'two\n']);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('follow reads appended lines until the container stops, then drains and ends', async () => {
  const { dir, file } = setup();
  try {
    let running = true;
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const r = readLog(file, sel({ tty: true }), 1, { follow: true, running: () => running, stopped, pollMs: 10 });
    const got = collect(r);
    await new Promise((res) => setTimeout(res, 30));
    appendFileSync(file, JSON.stringify({ log: 'four\n', stream: 'stdout', time: '2024-01-01T00:00:05Z' }) + '\n');
    await new Promise((res) => setTimeout(res, 30));
    appendFileSync(file, JSON.stringify({ log: 'five\n', stream: 'stdout', time: '2024-01-01T00:00:06Z' }) + '\n');
    running = false;
    stop();
    assert.equal((await got).toString(), 'three\nfour\nfive\n');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

const rec = (i: number): string => JSON.stringify({ log: `l${i}\n`, stream: 'stdout', time: `2024-01-01T00:00:${String(i).padStart(2, '0')}Z` }) + '\n';
const recs = (from: number, to: number): string => Array.from({ length: to - from + 1 }, (_, k) => rec(from + k)).join('');

test('rotated files are read oldest first (<log>.2, <log>.1, <log>); tail and since/until span them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'engine-logs-'));
  const file = join(dir, 'c-json.log');
  try {
    writeFileSync(`${file}.2`, recs(1, 3));
    writeFileSync(`${file}.1`, recs(4, 6));
    writeFileSync(file, recs(7, 8));
    writeFileSync(`${file}.x`, recs(50, 51)); // not a rotated file
    const all = (await collect(readLog(file, sel({ tty: true }), 'all', noFollow))).toString();
    assert.equal(all, 'l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\n');
    assert.equal((await collect(readLog(file, sel({ tty: true }), 4, noFollow))).toString(), 'l5\nl6\nl7\nl8\n');
    const since = Date.parse('2024-01-01T00:00:03Z') / 1000;
    const until = Date.parse('2024-01-01T00:00:05Z') / 1000;
    assert.equal((await collect(readLog(file, sel({ tty: true, since, until }), 'all', noFollow))).toString(), 'l3\nl4\nl5\n');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('follow continues across a rotation (rename + new file) and a truncation, nothing lost or repeated', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'engine-logs-'));
  const file = join(dir, 'c-json.log');
  const tick = (): Promise<void> => new Promise((res) => setTimeout(res, 40));
  try {
    writeFileSync(file, recs(1, 2));
    let running = true;
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const got = collect(readLog(file, sel({ tty: true }), 'all', { follow: true, running: () => running, stopped, pollMs: 10 }));
    await tick();
    appendFileSync(file, rec(3));
    await tick();
    // A rotation right after a write the reader has not seen yet: l4 is in the renamed file.
    appendFileSync(file, rec(4));
    renameSync(file, `${file}.1`);
    writeFileSync(file, rec(5));
    await tick();
    // Two rotations between polls: l6 ends up in <log>.1, l5's file in <log>.2.
    renameSync(`${file}.1`, `${file}.3`);
    renameSync(file, `${file}.2`);
    writeFileSync(`${file}.1`, rec(6));
    writeFileSync(file, rec(7));
    await tick();
    appendFileSync(file, rec(8));
    await tick();
    // max-file 1: truncated in place and written from the start.
    writeFileSync(file, rec(9));
    await tick();
    appendFileSync(file, rec(10));
    running = false;
    stop();
    assert.equal((await got).toString(), 'l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\n');
  } finally {
    rmSync(dir, { recursive: true });
  }
});
