import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readlinkSync, statSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { inNetns } from '../../src/index.js';
import { notRoot, uniqueName } from './helpers.js';

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
const netnsList = (): string[] => ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
const nsInode = (link: string): number => Number(/\[(\d+)\]/.exec(link)![1]);

test('inNetns runs fn in the namespace, creates sockets there, and returns', { skip: notRoot }, async (t) => {
  const name = uniqueName('berth-t');
  const leftover = netnsList().filter((n) => n.startsWith(`berth-t-${process.pid}-`));
  ip('netns', 'add', name);
  t.after(() => {
    if (netnsList().includes(name)) ip('netns', 'delete', name);
  });
  const nsPath = `/run/netns/${name}`;
  const outside = readlinkSync('/proc/thread-self/ns/net');

  let server: Server | undefined;
  const inside = inNetns(nsPath, () => {
    // listen() without a host binds synchronously, so the socket belongs to this namespace.
    server = createServer().listen(0);
    return readlinkSync('/proc/thread-self/ns/net');
  });
  try {
    assert.notEqual(inside, outside);
    assert.equal(nsInode(inside), statSync(nsPath).ino, 'inside fn the thread is in the ns file\'s namespace');
    assert.equal(readlinkSync('/proc/thread-self/ns/net'), outside, 'back afterwards');

    await new Promise((resolve) => server!.once('listening', resolve));
    const port = (server!.address() as AddressInfo).port;
    const listeningIn = ip('netns', 'exec', name, 'ss', '-Htln', `sport = :${port}`);
    assert.match(listeningIn, new RegExp(`:${port}\\b`), 'listening inside the namespace');
    const listeningOut = execFileSync('ss', ['-Htln', `sport = :${port}`], { encoding: 'utf8' });
    assert.equal(listeningOut.trim(), '', 'not listening in the host namespace');
  } finally {
    await new Promise((resolve) => server?.close(resolve));
  }

  // fn throwing still brings the thread back.
  assert.throws(() => inNetns(nsPath, () => { throw new Error('inside'); }), /inside/);
  assert.equal(readlinkSync('/proc/thread-self/ns/net'), outside);

  // Not a network namespace: setns refuses it, the path is named, the thread never left.
  assert.throws(() => inNetns('/proc/self/ns/uts', () => 1), { code: 'EINVAL', syscall: 'setns', path: '/proc/self/ns/uts' });
  assert.equal(readlinkSync('/proc/thread-self/ns/net'), outside);

  ip('netns', 'delete', name);
  assert.deepEqual(netnsList().filter((n) => n.startsWith(`berth-t-${process.pid}-`)), leftover);
});
