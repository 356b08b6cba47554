import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
