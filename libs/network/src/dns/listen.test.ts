import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { listenInNetns, literalLookup } from './listen.js';

const sockets = (): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;

test('literalLookup answers IP literals in the caller\'s stack and refuses names', () => {
  let got: unknown[] | undefined;
  literalLookup('127.0.0.11', 4, (...args) => { got = args; });
  assert.deepEqual(got, [null, '127.0.0.11', 4]);
  literalLookup('::1', { all: true }, (...args) => { got = args; });
  assert.deepEqual(got, [null, [{ address: '::1', family: 6 }]]);
  literalLookup('localhost', (...args: unknown[]) => { got = args; });
  assert.equal((got![0] as unknown as NodeJS.ErrnoException).code, 'EINVAL');
});

test('both sockets are created and bound inside `enter` (synchronously), which is what puts them in the netns', async () => {
  const stock = (createRequire(import.meta.url)('node:dns') as { lookup: unknown }).lookup;
  let madeInside = -1;
  const { udp, tcp } = await listenInNetns('/unused', '127.0.0.1', 0, (_path, fn) => {
    const before = sockets();
    const r = fn();
    madeInside = sockets() - before;
    return r;
  });
  try {
    assert.equal(madeInside, 2, 'the UDP and the TCP socket exist when enter returns');
    assert.equal((createRequire(import.meta.url)('node:dns') as { lookup: unknown }).lookup, stock, 'dns.lookup restored');
    assert.equal(udp.address().address, '127.0.0.1');
    assert.equal(tcp.listening, true);
  } finally {
    udp.close();
    await new Promise((r) => tcp.close(r));
  }
});

test('a failed enter or bind leaves nothing open', async () => {
  const before = sockets();
  await assert.rejects(listenInNetns('/unused', '127.0.0.1', 0, () => { throw new Error('setns failed'); }), /setns failed/);
  await assert.rejects(listenInNetns('/unused', '::1', 53), { code: 'BERTH_INVALID_ARGUMENT' });
  // 192.0.2.1 is not an address of this host: EADDRNOTAVAIL on the UDP bind.
  await assert.rejects(listenInNetns('/unused', '192.0.2.1', 0, (_p, fn) => fn()), (err: Error & { code?: string }) => err.code === 'BERTH_NETWORK' && /EADDRNOTAVAIL/.test(err.message));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sockets(), before);
});
