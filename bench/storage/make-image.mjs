#!/usr/bin/env node
// A deterministic ~200 MB rootfs tar for bench/storage: the busybox fixture's members, then
// pseudo-random files from a fixed seed (AES-256-CTR keystream over zeros: the same bytes on
// every run and machine). Mixes sizes as images do: a few large files and many small ones.
//
//   node bench/storage/make-image.mjs <busybox.tar> <out.tar>
// Prints "<out.tar>" when done; an existing <out.tar> of the expected size is reused.
import { createCipheriv } from 'node:crypto';
import * as fs from 'node:fs';

const [busybox, out] = process.argv.slice(2);
if (!busybox || !out) {
  console.error('usage: make-image.mjs <busybox.tar> <out.tar>');
  process.exit(2);
}
const BLOCK = 512;
const LARGE = { count: 20, size: 8 << 20 }; // 160 MiB
const SMALL = { count: 4096, size: 10 * 1024 }; // 40 MiB
const MTIME = 1700000000;

function header(name, size, type) {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8');
  const oct = (v, off, len) => b.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'ascii');
  oct(type === '5' ? 0o755 : 0o644, 100, 8);
  oct(0, 108, 8);
  oct(0, 116, 8);
  oct(size, 124, 12);
  oct(MTIME, 136, 12);
  b.write(type, 156, 1, 'latin1');
  b.write('ustar\0', 257, 6, 'latin1');
  b.write('00', 263, 2, 'latin1');
  b.fill(32, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return b;
}

// The busybox tar without its end-of-archive blocks.
const bb = fs.readFileSync(busybox);
let end = 0;
for (let off = 0; off + BLOCK <= bb.length; ) {
  const h = bb.subarray(off, off + BLOCK);
  if (h.every((x) => x === 0)) break;
  const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
  off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  end = off;
}
const total = end + BLOCK * 3 + LARGE.count * (BLOCK + LARGE.size) + SMALL.count * (BLOCK + SMALL.size) + 2 * BLOCK;
if (fs.existsSync(out) && fs.statSync(out).size === total) {
  console.log(out);
  process.exit(0);
}
const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), Buffer.alloc(16, 0));
const random = (n) => cipher.update(Buffer.alloc(n));
const fd = fs.openSync(`${out}.tmp`, 'w');
fs.writeSync(fd, bb.subarray(0, end));
fs.writeSync(fd, header('data/', 0, '5'));
fs.writeSync(fd, header('data/large/', 0, '5'));
for (let i = 0; i < LARGE.count; i++) {
  fs.writeSync(fd, header(`data/large/blob${String(i).padStart(3, '0')}.bin`, LARGE.size, '0'));
  for (let left = LARGE.size; left > 0; left -= 1 << 20) fs.writeSync(fd, random(Math.min(left, 1 << 20)));
}
fs.writeSync(fd, header('data/small/', 0, '5'));
for (let i = 0; i < SMALL.count; i++) {
  fs.writeSync(fd, header(`data/small/f${String(i).padStart(5, '0')}.dat`, SMALL.size, '0'));
  fs.writeSync(fd, random(SMALL.size)); // a multiple of 512: no padding
}
fs.writeSync(fd, Buffer.alloc(2 * BLOCK));
fs.closeSync(fd);
fs.renameSync(`${out}.tmp`, out);
console.log(out);
